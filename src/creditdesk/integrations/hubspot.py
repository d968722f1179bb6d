"""The HubSpot webhook receiver: v3 signatures, event deduplication, and deals into packs (integrations.deals).

HubSpot signs each request (`X-HubSpot-Signature-v3`): base64 of HMAC-SHA256, keyed by the app's client
secret, over method + URI + body + timestamp (`X-HubSpot-Request-Timestamp`, milliseconds since 1970). The
check is the official `hubspot-api-client`'s own (`hubspot.utils.signature.Signature.is_valid`, a
constant-time compare); a timestamp more than five minutes from now (either way, by our clock) is refused
before it. A refused request changes nothing and answers 401 (`invalid_signature`, `stale_signature`): an
unknown workspace, one without HubSpot settings or with them disabled answers exactly like a bad signature,
so the endpoint tells nobody which workspaces exist.

The URI signed is the one HubSpot called: the request's own URL (scheme, host, path, query), or, behind a
proxy that rewrites it, CREDITDESK_PUBLIC_URL + path + query.

The body (README "Packs from CRM deals" has an example): HubSpot's subscription events, a JSON array
(one object is accepted too, as a workflow "Send a webhook" action sends it), each with `eventId`,
`subscriptionType`, `objectId`, `propertyName`/`propertyValue`, `occurredAt`, and our extension `deal`: the
deal's details inline (HubSpot's subscription events carry ids only, and creditdesk does not call HubSpot's
API back), `{dealname, dealstage, amount, deal_currency_code, closedate, companyId, properties, lineItems:
[{id, productId, sku, quantity}]}`. Unknown fields are ignored (HubSpot adds fields over time).

Each event once: its `eventId` (or, without one, a digest of the event) is recorded per workspace in the same
transaction as what it made; a delivery seen before answers `duplicate_event`. A deal event (`deal.*`) whose
stage is the settings' winning stage goes to `deals.process_deal`; at another stage, or not a deal, it is
`ignored` (recorded, with why). A deal at the winning stage without `deal` details goes to the review queue
(`deal_details_missing`): never a silent drop.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from hubspot.exceptions import InvalidSignatureTimestampError
from hubspot.utils.signature import Signature
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditdesk import clock
from creditdesk.audit import Actor
from creditdesk.config import get_settings
from creditdesk.errors import InvalidInput, Unauthenticated
from creditdesk.ids import new_id
from creditdesk.integrations import deals
from creditdesk.integrations import schemas as s
from creditdesk.integrations.models import CrmEvent, CrmIntegration
from creditdesk.parties.models import Workspace

MAX_AGE = timedelta(minutes=5)
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"


class InvalidSignature(Unauthenticated):
    code = "invalid_signature"
    title = "Invalid signature"


class StaleSignature(Unauthenticated):
    code = "stale_signature"
    title = "Stale signature"


def signed_uri(url: str) -> str:
    """The URI HubSpot signed: the URL as received, or the public URL's scheme and host in its place."""
    public = get_settings().public_url.rstrip("/")
    if not public:
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return public + parts.path + (f"?{parts.query}" if parts.query else "")


def verify(session: Session, *, workspace_id: str | None, method: str, uri: str, body: bytes,
           signature: str | None, timestamp: str | None) -> CrmIntegration:
    """The workspace's HubSpot settings when the request is HubSpot's, else InvalidSignature/StaleSignature."""
    settings = None
    if workspace_id and len(workspace_id) <= 40 and session.get(Workspace, workspace_id) is not None:
        settings = deals.settings_row(session, workspace_id)
    if not signature or not timestamp:
        raise InvalidSignature(f"Send the {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers HubSpot sets.")
    try:
        sent = datetime.fromtimestamp(int(timestamp) / 1000, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is not a time in milliseconds.") from None
    if abs(clock.now() - sent) > MAX_AGE:
        raise StaleSignature("The request's timestamp is more than 5 minutes away: refused (a replay?).")
    if settings is None or not settings.enabled or not settings.client_secret:
        raise InvalidSignature("The signature does not match (or HubSpot is not set up for this workspace).")
    try:
        valid = Signature.is_valid(signature=signature, client_secret=settings.client_secret,
                                   request_body=body.decode("utf-8"), http_uri=uri, http_method=method.upper(),
                                   signature_version="v3", timestamp=timestamp)
    except InvalidSignatureTimestampError:
        raise StaleSignature("The request's timestamp is more than 5 minutes old: refused (a replay?).") from None
    except UnicodeDecodeError:
        valid = False
    if not valid:
        raise InvalidSignature("The signature does not match (or HubSpot is not set up for this workspace).")
    return settings


def _events(body: bytes) -> list[dict]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The body is not JSON.", code="invalid_json") from None
    events = payload if isinstance(payload, list) else [payload]
    if not events or not all(isinstance(e, dict) for e in events):
        raise InvalidInput("The body is a HubSpot event or an array of them (objects).", code="invalid_event")
    if len(events) > 1000:
        raise InvalidInput("At most 1000 events per request.", code="too_many_events")
    return events


def _event_id(event: dict) -> str:
    given = event.get("eventId")
    if given not in (None, ""):
        return str(given)[:100]
    digest = hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"sha256:{digest[:64]}"


def _occurred(event: dict) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(event["occurredAt"]) / 1000, tz=timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def deal_of(event: dict, deal_id: str) -> s.DealIn:
    """Our extension `deal` of an event, as a DealIn (HubSpot's names; unknown fields ignored)."""
    raw = event.get("deal") or {}
    if not isinstance(raw, dict):
        raise InvalidInput("An event's deal is an object.", code="invalid_event")
    props = raw.get("properties") if isinstance(raw.get("properties"), dict) else {}
    items = []
    for item in raw.get("lineItems") or []:
        if isinstance(item, dict):
            items.append({"id": item.get("id"), "product_id": item.get("productId", item.get("hs_product_id")),
                          "sku": item.get("sku", item.get("hs_sku")), "quantity": item.get("quantity", 1)})
    return s.DealIn.model_validate({
        "crm": deals.HUBSPOT, "id": deal_id, "name": raw.get("dealname"), "stage": raw.get("dealstage"),
        "amount": raw.get("amount"), "currency": raw.get("deal_currency_code"),
        "closed_at": raw.get("closedate") or _occurred(event), "company_id": raw.get("companyId"),
        "properties": {str(k): None if v is None else str(v) for k, v in props.items()},
        "line_items": items})


def receive(session: Session, settings: CrmIntegration, body: bytes) -> s.WebhookOut:
    """Every event of a verified request, each once, in the caller's transaction."""
    ws = settings.workspace_id
    actor = Actor.system(ws)
    out = []
    for event in _events(body):
        event_id = _event_id(event)
        kind = str(event.get("subscriptionType") or "")[:100]
        object_id = event.get("objectId")
        deal_id = str(object_id)[:100] if object_id not in (None, "") else None
        record = CrmEvent(id=new_id("crme"), workspace_id=ws, crm=deals.HUBSPOT, event_id=event_id,
                          subscription_type=kind, deal_id=deal_id, outcome="received", received_at=clock.now())
        try:
            with session.begin_nested():  # the same event at once: the second finds the first's row
                session.add(record)
                session.flush()
        except IntegrityError:
            seen = session.scalar(select(CrmEvent).where(CrmEvent.workspace_id == ws, CrmEvent.crm == deals.HUBSPOT,
                                                         CrmEvent.event_id == event_id))
            out.append(s.DealOutcomeOut(crm=deals.HUBSPOT, deal_id=deal_id, event_id=event_id,
                                        external_ref=deals.external_ref(deals.HUBSPOT, deal_id) if deal_id else None,
                                        outcome="duplicate_event", pack_id=seen.pack_id if seen else None,
                                        review_item_id=seen.review_item_id if seen else None,
                                        message="This event was received before."))
            continue
        result = _one(session, settings, event, kind, deal_id, actor)
        record.outcome = result.outcome
        record.pack_id, record.review_item_id = result.pack_id, result.review_item_id
        result.event_id = event_id
        out.append(result)
    session.flush()
    return s.WebhookOut(events=out)


def _ignored(deal_id: str | None, message: str) -> s.DealOutcomeOut:
    return s.DealOutcomeOut(crm=deals.HUBSPOT, deal_id=deal_id, outcome="ignored", message=message,
                            external_ref=deals.external_ref(deals.HUBSPOT, deal_id) if deal_id else None)


def _one(session: Session, settings: CrmIntegration, event: dict, kind: str, deal_id: str | None,
         actor: Actor) -> s.DealOutcomeOut:
    if not kind.startswith("deal.") or deal_id is None:
        return _ignored(deal_id, f"Not a deal event ({kind or 'no subscriptionType'}).")
    raw = event.get("deal") if isinstance(event.get("deal"), dict) else None
    stage = event.get("propertyValue") if event.get("propertyName") == "dealstage" else None
    stage = stage or (raw or {}).get("dealstage")
    if stage != settings.won_stage:
        return _ignored(deal_id, f"The deal's stage is {stage!r}, not {settings.won_stage!r}: no pack.")
    if raw is None:
        deal = s.DealIn(crm=deals.HUBSPOT, id=deal_id, stage=stage)
        item = deals.to_review(session, settings.workspace_id, deal, "deal_details_missing",
                                "HubSpot sent the deal's id only: send its details inline (a workflow webhook "
                                "with `deal`), or import the deal.", actor=actor)
        return s.DealOutcomeOut(crm=deals.HUBSPOT, deal_id=deal_id, external_ref=deals.external_ref(deals.HUBSPOT, deal_id),
                                outcome="review", review_item_id=item.id, reason="deal_details_missing",
                                message=item.message)
    try:
        deal = deal_of(event, deal_id)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = f"The deal's details are malformed ({'.'.join(map(str, err.get('loc', ())))}: {err.get('msg')})."
        deal = s.DealIn(crm=deals.HUBSPOT, id=deal_id, stage=stage)
        item = deals.to_review(session, settings.workspace_id, deal, "invalid_deal", message, actor=actor)
        return s.DealOutcomeOut(crm=deals.HUBSPOT, deal_id=deal_id, external_ref=deals.external_ref(deals.HUBSPOT, deal_id),
                                outcome="review", review_item_id=item.id, reason="invalid_deal", message=message)
    return deals.process_deal(session, deal, actor=actor).out()
