"""Billing: customer addresses, workspace billing settings and conversion rates, customer accounts (each on
its own ledger account), postings to accounts, accounting periods and their closing balances.

Invoices and payments post through `billing.postings.post_account_entry`; nothing else here writes
ledger rows."""
