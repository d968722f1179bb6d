"""Accounts, credit terms, invoices, payments, subscriptions, bills and activities (a later issue)."""
