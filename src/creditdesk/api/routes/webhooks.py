"""Outbound webhooks (issue 16): endpoints (masters only), the delivery log, replays. Signed by the Standard
Webhooks scheme (README "Outbound webhooks")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from creditdesk.api.deps import (Cursor, Limit, WriteContext, get_actor, read_session, status_query, statuses,
                                 write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.webhooks import schemas as s
from creditdesk.webhooks import service

router = APIRouter()

DELIVERY_STATUSES = ("pending", "delivered", "failed")
EndpointId = Annotated[str, Path(description="The id of the webhook endpoint, as its `id` field gives it.")]
DeliveryId = Annotated[str, Path(description="The id of the delivery, as its `id` field gives it.")]


def _without_secret(created: dict) -> dict:
    # The secret is shown once: a replay of the request answers without it.
    return {**created, "secret": None}


@router.post("/webhook-endpoints", status_code=201, response_model=s.EndpointWithSecret, tags=["webhooks"])
def create_endpoint(body: s.EndpointCreate, ctx: WriteContext = Depends(write_context)):
    """Masters. Where to send which events. The signing `secret` is in this answer only (a replay under
    the same Idempotency-Key answers `secret: null`). 422 webhook_url_refused (not http(s), or a loopback,
    private or link-local address)."""
    return ctx.run(lambda db, actor: service.endpoint_with_secret(*service.create_endpoint(db, body, actor=actor)),
                   status_code=201, redact=_without_secret)


@router.get("/webhook-endpoints", response_model=ListOf[s.EndpointOut], tags=["webhooks"])
def list_endpoints(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Masters. The workspace's endpoints, oldest first (never their secrets)."""
    return list_of(service.list_endpoints(session, actor=actor), None, service.endpoint_out)


@router.get("/webhook-endpoints/{endpoint_id}", response_model=s.EndpointOut, tags=["webhooks"])
def get_endpoint(endpoint_id: EndpointId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    service.require_master(actor, "read webhook endpoints")
    return service.endpoint_out(service.get_endpoint(session, actor.workspace_id, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=s.EndpointOut, tags=["webhooks"])
def update_endpoint(endpoint_id: EndpointId, body: s.EndpointUpdate, ctx: WriteContext = Depends(write_context)):
    """Masters. `enabled: true` starts an endpoint again that was disabled after a day of failures."""
    return ctx.run(lambda db, actor: service.endpoint_out(service.update_endpoint(db, endpoint_id, body, actor=actor)))


@router.delete("/webhook-endpoints/{endpoint_id}", response_model=s.EndpointOut, tags=["webhooks"])
def delete_endpoint(endpoint_id: EndpointId, ctx: WriteContext = Depends(write_context)):
    """Masters. No more events; pending deliveries are given up; the delivery log is kept."""
    return ctx.run(lambda db, actor: service.endpoint_out(service.delete_endpoint(db, endpoint_id, actor=actor)))


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=s.EndpointWithSecret,
             tags=["webhooks"])
def rotate_secret(endpoint_id: EndpointId, ctx: WriteContext = Depends(write_context)):
    """Masters. A new signing secret, in this answer only; the old one signs nothing more."""
    return ctx.run(lambda db, actor: service.endpoint_with_secret(*service.rotate_secret(db, endpoint_id,
                                                                                          actor=actor)),
                   redact=_without_secret)


@router.get("/webhook-deliveries", response_model=ListOf[s.DeliveryOut], tags=["webhooks"])
def list_deliveries(endpoint_id: str | None = Query(default=None, max_length=40, description=(
                        "Only the deliveries to this endpoint (its id).")),
                    status: list[str] | None = status_query(DELIVERY_STATUSES, what="deliveries"),
                    event_type: str | None = Query(default=None, max_length=60, description=(
                        "Only the deliveries of this event type, exactly: "
                        + ", ".join(f"`{event}`" for event in s.EVENT_TYPES) + ".")),
                    limit: int | None = Limit, cursor: str | None = Cursor, actor: Actor = Depends(get_actor),
                    session: Session = Depends(read_session)):
    """Masters. The delivery log, newest first: one delivery per event and endpoint, with the last attempt's
    status code, latency and error."""
    page = service.list_deliveries(session, actor=actor, endpoint_id=endpoint_id,
                                   status=statuses(status, DELIVERY_STATUSES),
                                   event_type=event_type, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, service.delivery_out)


@router.get("/webhook-deliveries/{delivery_id}", response_model=s.DeliveryDetail, tags=["webhooks"])
def get_delivery(delivery_id: DeliveryId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Masters. The delivery with the event as sent and every attempt (status code, latency, the first KiB of
    the response)."""
    service.require_master(actor, "read webhook deliveries")
    return service.delivery_detail(session, service.get_delivery(session, actor.workspace_id, delivery_id))


@router.post("/webhook-deliveries/{delivery_id}/replay", response_model=s.DeliveryOut, tags=["webhooks"])
def replay_delivery(delivery_id: DeliveryId, ctx: WriteContext = Depends(write_context)):
    """Masters. Send the event again now (same event id and body), with a new day of retries. 409
    webhook_endpoint_disabled."""
    return ctx.run(lambda db, actor: service.delivery_out(service.replay(db, delivery_id, actor=actor)))
