"""Integrations: packs from CRM deals (HubSpot webhooks, and a CSV/JSON deal import through the same code)."""
