"""Outbound webhooks (issue 16): endpoints managed by masters, `emit` for the services that change things,
the delivery log and replays. Delivery itself is webhooks.delivery.

`emit(session, workspace_id, event_type, data)` is the one way an event goes out. It writes one outbox
row per enabled endpoint subscribed to the type, in the caller's transaction (nothing is sent for a change
that rolls back, nothing is lost for one that commits), and queues the deliveries for after the commit.
It is on the hottest path (every consumption), so it costs one query per transaction and workspace (the
workspace's enabled endpoints, kept in `session.info`) and writes nothing when no endpoint wants the event.
The event body is built once per event: every endpoint and every retry gets the same bytes and event id.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, external_calls, rawsql
from creditdesk.audit import Actor, snapshot
from creditdesk.errors import Conflict, NotFound, NotPermitted
from creditdesk.ids import new_id
from creditdesk.pagination import Page, paginate
from creditdesk.repository import get_in_workspace, one_of
from creditdesk.webhooks import delivery
from creditdesk.webhooks import schemas as s
from creditdesk.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

_CACHE = "webhook_endpoints"  # session.info: workspace id -> [(endpoint id, its event types)]


def require_master(actor: Actor, what: str) -> None:
    if not actor.is_master:
        raise NotPermitted(f"Only master users may {what}.")


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


# --- emit --------------------------------------------------------------------------------------------

def _subscriptions(session: Session, workspace_id: str) -> list[tuple[str, frozenset]]:
    cache = session.info.setdefault(_CACHE, {})
    found = cache.get(workspace_id)
    if found is None:
        found = cache[workspace_id] = [
            (endpoint_id, frozenset(types or ())) for endpoint_id, types in session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
                    WebhookEndpoint.workspace_id == workspace_id, WebhookEndpoint.enabled.is_(True),
                    WebhookEndpoint.deleted_at.is_(None)).order_by(WebhookEndpoint.id))]
    return found


def _forget_subscriptions(session: Session) -> None:
    session.info.pop(_CACHE, None)


def _json_default(value):
    if isinstance(value, datetime):
        return clock.aware(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def emit(session: Session, workspace_id: str, event_type: str, data: dict | Callable[[], dict]) -> str | None:
    """Send `event_type` with `data` to the workspace's endpoints that want it, once this transaction
    commits (see the module). Returns the event id, or None when no endpoint wants it. `data` may be a
    function making the dict: it is called only when an endpoint wants the event (the hot paths pass one,
    so that without endpoints nothing is rendered)."""
    if event_type not in s.EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = [endpoint_id for endpoint_id, types in _subscriptions(session, workspace_id) if event_type in types]
    if not endpoints:
        return None
    if callable(data):
        data = data()
    now = clock.now()
    event_id = new_id("whevt")
    body = json.dumps({"id": event_id, "type": event_type, "timestamp": now, "workspace_id": workspace_id,
                       "data": data}, default=_json_default, separators=(",", ":"))
    due = now + external_calls.call_lease(1)  # the lease of the after-commit delivery
    rows = [{"id": new_id("whd"), "workspace_id": workspace_id, "endpoint_id": endpoint_id, "event_id": event_id,
             "event_type": event_type, "body": body, "status": "pending", "attempts": 1, "next_attempt_at": due,
             "last_status_code": None, "last_latency_ms": None, "last_error": None, "delivered_at": None,
             "retry_from": now, "created_at": now, "updated_at": now} for endpoint_id in endpoints]
    rawsql.insert_many(session, WebhookDelivery.__table__, rows)
    for row in rows:
        external_calls.run_after_commit(session, WebhookDelivery(id=row["id"]), _hand_over)
    return event_id


def _hand_over(db, delivery_id: str) -> None:
    delivery.dispatch(db, delivery_id)
    return None  # the caller's answer does not wait for the receiver


# --- what events say ---------------------------------------------------------------------------------

def pack_data(pack) -> dict:
    return {"id": pack.id, "holder": {"kind": pack.holder_kind, "id": pack.holder_id}, "credit_type": pack.unit,
            "quantity": pack.quantity, "name": pack.name, "source": pack.source, "external_ref": pack.external_ref,
            "is_paid": pack.is_paid, "price_paid": pack.price_paid, "currency": pack.currency,
            "starts_at": pack.starts_at, "expires_at": pack.expires_at, "status": pack.status}


_INVOICE_FIELDS = ("id", "number", "account_id", "customer_id", "currency", "total", "amount_due", "status",
                   "issue_date", "due_date", "subscription_id")


def invoice_data(invoice) -> dict:
    """An invoice (or an invoice row as a dict, from the set-wise billing run) as its events show it."""
    if isinstance(invoice, dict):
        return {name: invoice[name] for name in _INVOICE_FIELDS}
    return {name: getattr(invoice, name) for name in _INVOICE_FIELDS}


# --- endpoints -----------------------------------------------------------------------------------------

def _view(endpoint: WebhookEndpoint) -> dict:
    """The endpoint as the audit log keeps it: never its secret."""
    data = snapshot(endpoint)
    data.pop("secret", None)
    return data


def get_endpoint(session: Session, workspace_id: str, endpoint_id: str, *, for_update: bool = False
                 ) -> WebhookEndpoint:
    endpoint = get_in_workspace(session, WebhookEndpoint, workspace_id, endpoint_id, label="webhook endpoint",
                                for_update=for_update)
    if endpoint.deleted_at is not None:  # the answer for an id that never existed
        raise NotFound(f"No webhook endpoint with id {endpoint_id!r} in this workspace.", object_id=endpoint_id)
    return endpoint


def list_endpoints(session: Session, *, actor: Actor) -> list[WebhookEndpoint]:
    require_master(actor, "read webhook endpoints")
    return list(session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.workspace_id == actor.workspace_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id)))


def _types(types: list[str]) -> list[str]:
    return [t for t in s.EVENT_TYPES if t in set(types)]  # declared order, no repeats


def create_endpoint(session: Session, data: s.EndpointCreate, *, actor: Actor) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (shown once: keep it from this answer)."""
    require_master(actor, "manage webhook endpoints")
    url = delivery.check_url(data.url)
    now = clock.now()
    secret = new_secret()
    endpoint = WebhookEndpoint(id=new_id("whep"), workspace_id=actor.workspace_id, url=url,
                               description=data.description, secret=secret, event_types=_types(data.event_types),
                               enabled=data.enabled, created_at=now, updated_at=now)
    session.add(endpoint)
    session.flush([endpoint])
    _forget_subscriptions(session)
    audit.record(session, actor=actor, action="webhook_endpoint.create", object_type="webhook_endpoint",
                 object_id=endpoint.id, after=_view(endpoint))
    return endpoint, secret


def update_endpoint(session: Session, endpoint_id: str, data: s.EndpointUpdate, *, actor: Actor) -> WebhookEndpoint:
    """Change the URL, types, description; enabled false stops it, true starts it again (a disabled one
    forgets its failures: its missed deliveries can then be replayed)."""
    require_master(actor, "manage webhook endpoints")
    endpoint = get_endpoint(session, actor.workspace_id, endpoint_id, for_update=True)
    before = _view(endpoint)
    fields = data.model_fields_set
    if "url" in fields and data.url is not None:
        endpoint.url = delivery.check_url(data.url)
    if "event_types" in fields and data.event_types is not None:
        endpoint.event_types = _types(data.event_types)
    if "description" in fields and data.description is not None:
        endpoint.description = data.description
    if "enabled" in fields and data.enabled is not None and data.enabled != endpoint.enabled:
        endpoint.enabled = data.enabled
        if data.enabled:
            endpoint.failing_since = endpoint.disabled_reason = endpoint.disabled_at = None
        else:
            endpoint.disabled_at, endpoint.disabled_reason = clock.now(), None
    endpoint.updated_at = clock.now()
    _forget_subscriptions(session)
    audit.record(session, actor=actor, action="webhook_endpoint.update", object_type="webhook_endpoint",
                 object_id=endpoint.id, before=before, after=_view(endpoint))
    return endpoint


def rotate_secret(session: Session, endpoint_id: str, *, actor: Actor) -> tuple[WebhookEndpoint, str]:
    """A new secret, used from the next attempt on (retries of earlier events included)."""
    require_master(actor, "manage webhook endpoints")
    endpoint = get_endpoint(session, actor.workspace_id, endpoint_id, for_update=True)
    endpoint.secret = new_secret()
    endpoint.updated_at = clock.now()
    audit.record(session, actor=actor, action="webhook_endpoint.rotate_secret", object_type="webhook_endpoint",
                 object_id=endpoint.id, after={"rotated_at": endpoint.updated_at})
    return endpoint, endpoint.secret


def delete_endpoint(session: Session, endpoint_id: str, *, actor: Actor) -> WebhookEndpoint:
    """No more events; its deliveries still pending are given up. Its log stays (the row is kept)."""
    require_master(actor, "manage webhook endpoints")
    endpoint = get_endpoint(session, actor.workspace_id, endpoint_id, for_update=True)
    before = _view(endpoint)
    now = clock.now()
    endpoint.enabled, endpoint.deleted_at, endpoint.updated_at = False, now, now
    for row in session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id,
                                                             WebhookDelivery.status == "pending")):
        row.status, row.next_attempt_at, row.last_error, row.updated_at = "failed", None, "Endpoint deleted.", now
    _forget_subscriptions(session)
    audit.record(session, actor=actor, action="webhook_endpoint.delete", object_type="webhook_endpoint",
                 object_id=endpoint.id, before=before, after=_view(endpoint))
    return endpoint


def endpoint_out(endpoint: WebhookEndpoint) -> s.EndpointOut:
    return s.EndpointOut(id=endpoint.id, url=endpoint.url, description=endpoint.description,
                         event_types=list(endpoint.event_types or []), enabled=endpoint.enabled,
                         failing_since=clock.aware(endpoint.failing_since), disabled_reason=endpoint.disabled_reason,
                         disabled_at=clock.aware(endpoint.disabled_at), created_at=clock.aware(endpoint.created_at),
                         updated_at=clock.aware(endpoint.updated_at))


def endpoint_with_secret(endpoint: WebhookEndpoint, secret: str) -> s.EndpointWithSecret:
    return s.EndpointWithSecret(**endpoint_out(endpoint).model_dump(), secret=secret)


# --- deliveries ------------------------------------------------------------------------------------------

def get_delivery(session: Session, workspace_id: str, delivery_id: str, *, for_update: bool = False
                 ) -> WebhookDelivery:
    return get_in_workspace(session, WebhookDelivery, workspace_id, delivery_id, label="webhook delivery",
                            for_update=for_update)


def endpoint_of(session: Session, row: WebhookDelivery) -> WebhookEndpoint:
    """The delivery's endpoint, deleted or not (the log keeps naming it)."""
    return session.get(WebhookEndpoint, row.endpoint_id)


def list_deliveries(session: Session, *, actor: Actor, endpoint_id: str | None = None,
                    status: str | Sequence[str] | None = None,
                    event_type: str | None = None, limit: int | None = None, cursor: str | None = None
                    ) -> Page[WebhookDelivery]:
    """The delivery log, newest first."""
    require_master(actor, "read webhook deliveries")
    stmt = select(WebhookDelivery).where(WebhookDelivery.workspace_id == actor.workspace_id)
    if endpoint_id:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(one_of(WebhookDelivery.status, status))
    if event_type:
        stmt = stmt.where(WebhookDelivery.event_type == event_type)
    return paginate(session, stmt, id_column=WebhookDelivery.id, limit=limit, cursor=cursor, descending=True)


def attempts_of(session: Session, delivery_id: str) -> list[WebhookAttempt]:
    return list(session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                                .order_by(WebhookAttempt.id.desc())))


def replay(session: Session, delivery_id: str, *, actor: Actor) -> WebhookDelivery:
    """Send a delivery again, now: the same event id and body (receivers dedupe on the id), a new day of
    retries. The endpoint must be enabled (enable it first)."""
    require_master(actor, "replay webhook deliveries")
    row = get_delivery(session, actor.workspace_id, delivery_id, for_update=True)
    endpoint = session.get(WebhookEndpoint, row.endpoint_id)
    if not endpoint.enabled or endpoint.deleted_at is not None:
        raise Conflict("The endpoint of this delivery is disabled or deleted; enable it before replaying.",
                       code="webhook_endpoint_disabled", endpoint_id=endpoint.id)
    before = {"status": row.status, "attempts": row.attempts}
    now = clock.now()
    row.status, row.attempts, row.retry_from, row.updated_at = "pending", row.attempts + 1, now, now
    row.next_attempt_at = now + external_calls.call_lease(1)
    audit.record(session, actor=actor, action="webhook_delivery.replay", object_type="webhook_delivery",
                 object_id=row.id, before=before, after={"status": "pending", "attempts": row.attempts,
                                                          "event_id": row.event_id})
    session.flush([row])
    external_calls.run_after_commit(session, WebhookDelivery(id=row.id), _hand_over)
    return row


def delivery_out(row: WebhookDelivery) -> s.DeliveryOut:
    return s.DeliveryOut(id=row.id, endpoint_id=row.endpoint_id, event_id=row.event_id, event_type=row.event_type,
                         status=row.status, attempts=row.attempts, next_attempt_at=clock.aware(row.next_attempt_at),
                         last_status_code=row.last_status_code, last_latency_ms=row.last_latency_ms,
                         last_error=row.last_error, delivered_at=clock.aware(row.delivered_at),
                         created_at=clock.aware(row.created_at))


def attempt_out(row: WebhookAttempt) -> s.AttemptOut:
    return s.AttemptOut(id=row.id, status_code=row.status_code, latency_ms=row.latency_ms,
                        response_excerpt=row.response_excerpt, error=row.error, created_at=clock.aware(row.created_at))


def delivery_detail(session: Session, row: WebhookDelivery) -> s.DeliveryDetail:
    return s.DeliveryDetail(**delivery_out(row).model_dump(), payload=json.loads(row.body),
                            attempt_log=[attempt_out(a) for a in attempts_of(session, row.id)])
