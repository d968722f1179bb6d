"""Email notifications: expiry emails for packs (settings, sandboxed templates, SMTP, the send log)."""
