"""Request and answer bodies of outbound webhooks (creditdesk.webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from creditdesk.parties.schemas import Input

# Every event type an endpoint may subscribe to (pack.expiring: webhooks.expiring; balance.low:
# credits.low_balance).
EVENT_TYPES = ("pack.created", "pack.depleted", "pack.expired", "pack.voided", "pack.expiring",
               "consumption.created", "consumption.reversed", "transfer.created", "balance.low",
               "invoice.posted", "invoice.paid")
EventType = Literal["pack.created", "pack.depleted", "pack.expired", "pack.voided", "pack.expiring",
                    "consumption.created", "consumption.reversed", "transfer.created", "balance.low",
                    "invoice.posted", "invoice.paid"]


class EndpointCreate(Input):
    url: str = Field(min_length=8, max_length=2000, description=(
        "http:// or https://. Loopback, private and link-local addresses are refused (the host is resolved) "
        "unless the installation sets CREDITDESK_WEBHOOKS_ALLOW_PRIVATE=1."))
    event_types: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    description: str = Field(default="", max_length=200)
    enabled: bool = True


class EndpointUpdate(Input):
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = Field(default=None, description="true re-enables an endpoint disabled after failing.")


class EndpointOut(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    failing_since: datetime | None
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str | None = Field(description=(
        "whsec_...: the signing secret, in this answer only. A replay of the request under the same "
        "Idempotency-Key answers with null."))


class AttemptOut(BaseModel):
    id: str
    object: Literal["webhook_attempt"] = "webhook_attempt"
    status_code: int | None
    latency_ms: int | None
    response_excerpt: str
    error: str | None
    created_at: datetime


class DeliveryOut(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str
    event_id: str = Field(description="The webhook-id header: the same on every retry and replay.")
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryDetail(DeliveryOut):
    payload: dict
    attempt_log: list[AttemptOut]
