"""creditdesk: prepaid credits and account billing on a double-entry credit ledger."""

__version__ = "0.1.0"
