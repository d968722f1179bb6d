"""Outbound webhooks (issue 16): endpoints, the outbox of deliveries, and the log of attempts.

- `webhook_endpoints`: where a workspace wants its events (URL, event types, enabled), and the secret
  that signs them (Standard Webhooks: `whsec_` + base64 of 32 random bytes). The secret is kept as is:
  signing needs it, so it cannot be hashed like an API key; it is shown once, on create and on rotate,
  and never again. `failing_since` is the first failure of the current run of failures (cleared by a
  success); a day of failures disables the endpoint (`disabled_reason`). Deleting an endpoint keeps the
  row (`deleted_at`) so that its delivery log still names it.
- `webhook_deliveries`: the outbox. One row per event and subscribed endpoint, written in the
  transaction of the change (`webhooks.emit`), so a change that rolls back sends nothing and one that
  commits loses nothing. `event_id` is the event's one id (the `webhook-id` header; the same on every
  retry and for every endpoint of that event); `body` is the exact JSON signed and sent, every time.
  `next_attempt_at` is the external call's due column (creditdesk.external_calls): set while the
  delivery is still to be made, as the lease of whoever makes it and then as the time of the next retry;
  cleared once it succeeded or was given up.
- `webhook_attempts`: one row per HTTP attempt: status code, latency, the first KiB of the response.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(String(100))
    event_types: Mapped[list] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# emit's one read per transaction: the enabled endpoints of a workspace.
Index("ix_webhook_endpoints_workspace", WebhookEndpoint.workspace_id, WebhookEndpoint.enabled)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_latency_ms: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Retries go on for a day from here: the event's creation, or the last manual replay.
    retry_from: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_webhook_deliveries_due", WebhookDelivery.next_attempt_at)
Index("ix_webhook_deliveries_endpoint", WebhookDelivery.endpoint_id, WebhookDelivery.id)
Index("ix_webhook_deliveries_workspace", WebhookDelivery.workspace_id, WebhookDelivery.id)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    url: Mapped[str] = mapped_column(String(2000))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str] = mapped_column(String(1100), default="")
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_webhook_attempts_delivery", WebhookAttempt.delivery_id, WebhookAttempt.id)


class PackExpiringEvent(Base):
    """One row per pack whose `pack.expiring` event was emitted (webhooks.expiring): inserted with the event, in
    its transaction, and its primary key is what makes the event go out once per pack."""

    __tablename__ = "pack_expiring_events"

    pack_id: Mapped[str] = mapped_column(ForeignKey("packs.id"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    event_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
