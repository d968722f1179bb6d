"""Email templates over SMTP and outbound webhooks (a later issue)."""
