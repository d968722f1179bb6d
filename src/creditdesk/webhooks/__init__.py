"""Outbound webhooks (issue 16). Services call `webhooks.emit(session, workspace_id, event_type, data)`."""

from creditdesk.webhooks.service import emit, invoice_data, pack_data

__all__ = ["emit", "invoice_data", "pack_data"]
