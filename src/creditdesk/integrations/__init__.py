"""CRM deal webhooks and payment gateways (a later issue)."""
