"""Packs from CRM deals: HubSpot settings and mappings, the webhook receiver, the review queue, the deal import.

README "Packs from CRM deals". Every route but the webhook authenticates with an API key; the webhook is
HubSpot's, authenticated by its v3 signature with the workspace's client secret (integrations.hubspot).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.orm import Session

from creditdesk.api.deps import (Cursor, Limit, WriteContext, get_actor, get_db, read_session, status_query, statuses,
                                 write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.db import Database
from creditdesk.integrations import deals, hubspot
from creditdesk.integrations import schemas as s
from creditdesk.integrations.models import CrmIntegration

router = APIRouter()

REVIEW_STATUSES = ("open", "resolved", "dismissed")
MappingId = Annotated[str, Path(description="The id of the mapping, as its `id` field gives it.")]
ItemId = Annotated[str, Path(description="The id of the review queue item, as its `id` field gives it.")]

WEBHOOK_DOC = """HubSpot's webhooks (no API key: the `X-HubSpot-Signature-v3` signature, HMAC-SHA256 with the
workspace's client secret over method + URI + body + `X-HubSpot-Request-Timestamp`, checked with the official
hubspot-api-client; a timestamp more than 5 minutes away is refused). Refused: 401 `invalid_signature` or
`stale_signature`, nothing changed (an unknown workspace answers like a bad signature).

The body: HubSpot subscription events (an array, or one event as a workflow webhook sends it), each with
`eventId`, `subscriptionType` (`deal.propertyChange`, `deal.creation`), `objectId` (the deal id),
`propertyName`/`propertyValue`, `occurredAt`, and the deal's details inline in `deal`:

```json
[{"eventId": 1001, "subscriptionType": "deal.propertyChange", "objectId": 981,
  "propertyName": "dealstage", "propertyValue": "closedwon", "occurredAt": 1767225600000,
  "deal": {"dealname": "Acme - 10 hours", "dealstage": "closedwon", "amount": "1200.00",
           "deal_currency_code": "GBP", "closedate": "2027-01-15T10:00:00Z", "companyId": "5551",
           "properties": {"creditdesk_holder": "off_..."},
           "lineItems": [{"id": "li-1", "productId": "1234", "sku": "HRS-10", "quantity": 1}]}}]
```

Each event once (by `eventId`): a deal at the settings' winning stage makes one pack (source `crm_deal`,
external_ref `hubspot:deal:<id>`; sent again, in any order or at once, it answers with that pack), or lands
in the review queue (GET /v1/integrations/review-queue) saying why. The answer lists what became of each
event: pack_created, pack_exists, review, ignored (another stage, not a deal), duplicate_event."""


@router.post("/integrations/hubspot/webhook", response_model=s.WebhookOut, tags=["integrations"],
             description=WEBHOOK_DOC)
async def hubspot_webhook(request: Request, workspace: str | None = Query(
        default=None, max_length=100, description="The workspace id (ws_...) the webhook URL was set up for."),
        db: Database = Depends(get_db)):
    body = await request.body()
    uri = hubspot.signed_uri(str(request.url))
    signature = request.headers.get(hubspot.SIGNATURE_HEADER)
    timestamp = request.headers.get(hubspot.TIMESTAMP_HEADER)
    # Checked on a read first: an unsigned request never takes the write lock.
    with db.read() as session:
        settings_id = hubspot.verify(session, workspace_id=workspace, method=request.method, uri=uri, body=body,
                                     signature=signature, timestamp=timestamp).id

    def write(session: Session):
        return hubspot.receive(session, session.get(CrmIntegration, settings_id), body)
    return await db.write_async(write)


@router.get("/integrations/hubspot", response_model=s.HubspotSettingsOut, tags=["integrations"])
def get_hubspot_settings(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """The workspace's HubSpot settings (the client secret is never shown: `client_secret_set`)."""
    return deals.settings_out(deals.settings_row(session, actor.workspace_id))


@router.put("/integrations/hubspot", response_model=s.HubspotSettingsOut, tags=["integrations"])
def put_hubspot_settings(body: s.HubspotSettingsIn, ctx: WriteContext = Depends(write_context)):
    """Masters. The client secret (required the first time, write-only), the winning deal stage, the deal
    property naming the holder, enabled. Point HubSpot's webhook at
    /v1/integrations/hubspot/webhook?workspace=<this workspace's id>."""
    return ctx.run(lambda db, actor: deals.settings_out(deals.update_settings(db, body, actor=actor)))


@router.get("/integrations/hubspot/mappings", response_model=ListOf[s.MappingOut], tags=["integrations"])
def list_mappings(limit: int | None = Limit, cursor: str | None = Cursor,
                  kind: Literal["company", "product", "sku"] | None = Query(default=None, description=(
                      "Only mappings of this kind: `company` (a HubSpot company to a customer or office), "
                      "`product` (a HubSpot product to a credit package) or `sku` (a SKU to a credit package).")),
                  actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = deals.list_mappings(session, actor=actor, kind=kind, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda m: deals.mapping_out(session, m))


@router.post("/integrations/hubspot/mappings", status_code=201, response_model=s.MappingOut, tags=["integrations"])
def create_mapping(body: s.MappingCreate, ctx: WriteContext = Depends(write_context)):
    """Masters. `company`: a HubSpot company id -> a customer or office (`holder`); `product` (a HubSpot product
    id) or `sku`: -> a credit package (`product`, id or code). 409 mapping_exists; 422 not_a_credit_package."""
    return ctx.run(lambda db, actor: deals.mapping_out(db, deals.create_mapping(db, body, actor=actor)),
                   status_code=201)


@router.get("/integrations/hubspot/mappings/{mapping_id}", response_model=s.MappingOut, tags=["integrations"])
def get_mapping(mapping_id: MappingId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return deals.mapping_out(session, deals.get_mapping(session, actor.workspace_id, mapping_id))


@router.patch("/integrations/hubspot/mappings/{mapping_id}", response_model=s.MappingOut, tags=["integrations"])
def update_mapping(mapping_id: MappingId, body: s.MappingUpdate, ctx: WriteContext = Depends(write_context)):
    """Masters. Another holder or package, or the note."""
    return ctx.run(lambda db, actor: deals.mapping_out(db, deals.update_mapping(db, mapping_id, body, actor=actor)))


@router.delete("/integrations/hubspot/mappings/{mapping_id}", response_model=s.MappingOut, tags=["integrations"])
def delete_mapping(mapping_id: MappingId, ctx: WriteContext = Depends(write_context)):
    """Masters. Packs made through it stay; later deals with that id go to the review queue."""
    def run(db, actor):
        row = deals.delete_mapping(db, mapping_id, actor=actor)
        return s.MappingOut(id=row.id, crm=row.crm, kind=row.kind, external_id=row.external_id,
                            holder={"kind": row.holder_kind, "id": row.holder_id} if row.holder_kind else None,
                            product=None, note=row.note, created_at=row.created_at, updated_at=row.updated_at)
    return ctx.run(run)


@router.get("/integrations/review-queue", response_model=ListOf[s.ReviewItemOut], tags=["integrations"])
def list_review_queue(limit: int | None = Limit, cursor: str | None = Cursor,
                      status: list[str] | None = status_query(REVIEW_STATUSES, what="items"),
                      actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Deals that could not become a pack (newest first), with why (`reason`: unknown_company,
    unknown_product, no_holder, unknown_holder, mixed_packages, no_line_items, deal_details_missing,
    deal_changed, ...) and the deal as received."""
    page = deals.list_review_items(session, actor=actor, status=statuses(status, REVIEW_STATUSES),
                                   limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, deals.review_out)


@router.get("/integrations/review-queue/{item_id}", response_model=s.ReviewItemOut, tags=["integrations"])
def get_review_item(item_id: ItemId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return deals.review_out(deals.get_review_item(session, actor.workspace_id, item_id))


@router.post("/integrations/review-queue/{item_id}/retry", response_model=s.ReviewItemOut, tags=["integrations"])
def retry_review_item(item_id: ItemId, ctx: WriteContext = Depends(write_context)):
    """Whoever may grant packs. The deal again, with today's mappings: its pack is made and the item resolved
    (`pack_id`), or 409 deal_not_mappable says what still stops it (nothing changed)."""
    return ctx.run(lambda db, actor: deals.review_out(deals.retry_review_item(db, item_id, actor=actor)))


@router.post("/integrations/review-queue/{item_id}/dismiss", response_model=s.ReviewItemOut, tags=["integrations"])
def dismiss_review_item(item_id: ItemId, body: s.DismissIn, ctx: WriteContext = Depends(write_context)):
    """Whoever may grant packs. The deal makes no pack (granted by hand, not a credit sale): with the reason."""
    return ctx.run(lambda db, actor: deals.review_out(deals.dismiss_review_item(db, item_id, body, actor=actor)))


@router.post("/deals/import", response_model=s.DealImportOut, tags=["integrations"])
def import_deals(body: s.DealImport, ctx: WriteContext = Depends(write_context)):
    """Whoever may grant packs. Deals from any CRM (or none), as JSON (`deals`) or CSV text (`csv`), through the
    code the HubSpot webhook uses: each makes its pack (external_ref `<crm>:deal:<id>`, `crm` default
    `import`), finds the one made before, or lands in the review queue; a malformed deal is reported with
    its line (`outcome` error) and makes nothing."""
    return ctx.run(lambda db, actor: deals.import_deals(db, body, actor=actor))
