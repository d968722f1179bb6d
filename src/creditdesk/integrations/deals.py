"""Packs from CRM deals: settings, mappings, a deal made into a pack, the review queue, the deal import.

One function turns a deal into a pack, `process_deal`, whoever brings the deal (the HubSpot webhook, the
CSV/JSON import, a Retry from the review queue):

- the pack's key is its source `crm_deal` and external_ref `<crm>:deal:<id>` (`hubspot:deal:981`): credits'
  own grant answers with the pack already made for it (the same deal sent twice, in any order, at once:
  one pack), or refuses a different grant for it (external_ref_taken);
- the holder: a holder named directly (imports), else the deal property of the settings' `holder_property`
  (a customer or office id of this workspace), else the mapping of the deal's HubSpot company;
- the line items: each through the mapping of its HubSpot product id, else of its SKU, to a credit package
  of the catalogue; quantity = line quantity x the package's credits; the expiry from the package's policy
  with the close date as the purchase date; the applicable products from the package. One pack per deal:
  line items mapping to packages of different credit types, expiry policies or applicable products go to
  review (mixed_packages) rather than being split or merged by a guess;
- the price paid: the deal's amount in its currency (a pack of a deal without an amount is free);
- whatever cannot be decided (no holder, unknown company or product, a grant refused, the deal changed
  after its pack was made) becomes an open review item, one per deal, with the deal as received: never a
  silent drop. Retry after mapping runs `process_deal` again on it.

Services never commit; every change writes its audit row. Settings and mappings: master users. Retry,
Dismiss and the import grant packs: whoever may grant (credits.governance.require_grant).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditdesk import audit, clock, timezones
from creditdesk.audit import Actor, snapshot
from creditdesk.catalog import service as catalog
from creditdesk.catalog.models import Product
from creditdesk.credits import governance, packs
from creditdesk.credits import schemas as cs
from creditdesk.credits.models import CreditType
from creditdesk.currencies import check_currency, to_minor
from creditdesk.errors import Conflict, CreditdeskError, InvalidInput, NotFound
from creditdesk.ids import new_id
from creditdesk.integrations import schemas as s
from creditdesk.integrations.models import CrmIntegration, CrmMapping, CrmReviewItem
from creditdesk.pagination import Page, paginate
from creditdesk.parties.service import require_master
from creditdesk.repository import get_in_workspace, one_of

SOURCE = "crm_deal"
HUBSPOT = "hubspot"


def external_ref(crm: str, deal_id: str) -> str:
    return f"{crm}:deal:{deal_id}"


# --- settings --------------------------------------------------------------------------------------

def settings_row(session: Session, workspace_id: str, crm: str = HUBSPOT) -> CrmIntegration | None:
    return session.scalar(select(CrmIntegration).where(CrmIntegration.workspace_id == workspace_id,
                                                       CrmIntegration.crm == crm))


def settings_out(row: CrmIntegration | None) -> s.HubspotSettingsOut:
    return s.HubspotSettingsOut(
        configured=row is not None, client_secret_set=bool(row and row.client_secret),
        won_stage=row.won_stage if row else "closedwon", holder_property=row.holder_property if row else None,
        enabled=row.enabled if row else False, webhook_path="/v1/integrations/hubspot/webhook?workspace=<id>",
        updated_at=row.updated_at if row else None)


def _public(row: CrmIntegration) -> dict:
    data = snapshot(row)
    data["client_secret"] = "(set)" if row.client_secret else None  # never in the audit log
    return data


def update_settings(session: Session, data: s.HubspotSettingsIn, *, actor: Actor) -> CrmIntegration:
    """Save the workspace's HubSpot settings (masters). The client secret is required the first time."""
    require_master(actor, "change the HubSpot settings")
    row = settings_row(session, actor.workspace_id)
    now = clock.now()
    if row is None:
        if not data.client_secret:
            raise InvalidInput("The HubSpot app's client secret is required (it verifies the webhooks).",
                               code="client_secret_required", field="client_secret")
        row = CrmIntegration(id=new_id("crmi"), workspace_id=actor.workspace_id, crm=HUBSPOT, created_at=now)
        before = None
        session.add(row)
    else:
        before = _public(row)
    if data.client_secret:
        row.client_secret = data.client_secret
    row.won_stage = data.won_stage
    row.holder_property = data.holder_property
    row.enabled = data.enabled
    row.updated_at = now
    session.flush()
    audit.record(session, actor=actor, action="hubspot_settings.update", object_type="crm_integration",
                 object_id=row.id, before=before, after=_public(row))
    return row


# --- mappings --------------------------------------------------------------------------------------

def _check_target(session: Session, ws: str, kind: str, holder: s.HolderIn | None,
                  product_ref: str | None) -> tuple[str | None, str | None, str | None]:
    """(holder kind, holder id, product id) of a mapping, checked in this workspace."""
    if kind == "company":
        if holder is None or product_ref is not None:
            raise InvalidInput("A company mapping names a holder (a customer or office), not a product.",
                               code="mapping_target_invalid", field="holder")
        ref, _ = packs.resolve_holder(session, ws, holder.kind, holder.id)
        return ref.kind, ref.id, None
    if product_ref is None or holder is not None:
        raise InvalidInput(f"A {kind} mapping names a credit package (product), not a holder.",
                           code="mapping_target_invalid", field="product")
    product = catalog.get_product(session, ws, product_ref)
    if product.kind != "credit_package":
        raise InvalidInput(f"{product.code} is not a credit package: only credit packages make packs.",
                           code="not_a_credit_package", field="product")
    return None, None, product.id


def mapping_out(session: Session, row: CrmMapping) -> s.MappingOut:
    code = session.scalar(select(Product.code).where(Product.id == row.product_id)) if row.product_id else None
    return s.MappingOut(id=row.id, crm=row.crm, kind=row.kind, external_id=row.external_id,
                        holder={"kind": row.holder_kind, "id": row.holder_id} if row.holder_kind else None,
                        product=code, note=row.note, created_at=row.created_at, updated_at=row.updated_at)


def create_mapping(session: Session, data: s.MappingCreate, *, actor: Actor) -> CrmMapping:
    require_master(actor, "change the HubSpot mappings")
    ws = actor.workspace_id
    holder_kind, holder_id, product_id = _check_target(session, ws, data.kind, data.holder, data.product)
    taken = session.scalar(select(CrmMapping).where(CrmMapping.workspace_id == ws, CrmMapping.crm == HUBSPOT,
                                                    CrmMapping.kind == data.kind,
                                                    CrmMapping.external_id == data.external_id))
    if taken is not None:
        raise Conflict(f"The {data.kind} {data.external_id!r} is already mapped ({taken.id}): change that mapping.",
                       code="mapping_exists", mapping_id=taken.id)
    now = clock.now()
    row = CrmMapping(id=new_id("crmm"), workspace_id=ws, crm=HUBSPOT, kind=data.kind, external_id=data.external_id,
                     holder_kind=holder_kind, holder_id=holder_id, product_id=product_id, note=data.note,
                     created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="crm_mapping.create", object_type="crm_mapping", object_id=row.id,
                 after=snapshot(row))
    return row


def get_mapping(session: Session, workspace_id: str, mapping_id: str) -> CrmMapping:
    return get_in_workspace(session, CrmMapping, workspace_id, mapping_id, label="mapping")


def update_mapping(session: Session, mapping_id: str, data: s.MappingUpdate, *, actor: Actor) -> CrmMapping:
    require_master(actor, "change the HubSpot mappings")
    row = get_mapping(session, actor.workspace_id, mapping_id)
    before = snapshot(row)
    fields = data.model_fields_set
    if "holder" in fields or "product" in fields:
        holder = data.holder if "holder" in fields else (
            s.HolderIn(kind=row.holder_kind, id=row.holder_id) if row.holder_kind else None)
        product = data.product if "product" in fields else row.product_id
        row.holder_kind, row.holder_id, row.product_id = _check_target(session, actor.workspace_id, row.kind,
                                                                       holder, product)
    if data.note is not None:
        row.note = data.note
    row.updated_at = clock.now()
    audit.record(session, actor=actor, action="crm_mapping.update", object_type="crm_mapping", object_id=row.id,
                 before=before, after=snapshot(row))
    return row


def delete_mapping(session: Session, mapping_id: str, *, actor: Actor) -> CrmMapping:
    require_master(actor, "change the HubSpot mappings")
    row = get_mapping(session, actor.workspace_id, mapping_id)
    audit.record(session, actor=actor, action="crm_mapping.delete", object_type="crm_mapping", object_id=row.id,
                 before=snapshot(row))
    session.delete(row)
    session.flush()
    return row


def list_mappings(session: Session, *, actor: Actor, kind: str | None = None, limit: int | None = None,
                  cursor: str | None = None) -> Page[CrmMapping]:
    stmt = select(CrmMapping).where(CrmMapping.workspace_id == actor.workspace_id)
    if kind:
        stmt = stmt.where(CrmMapping.kind == kind)
    return paginate(session, stmt, id_column=CrmMapping.id, limit=limit, cursor=cursor)


def _mapped(session: Session, ws: str, kind: str, external_id: str | None) -> CrmMapping | None:
    if not external_id:
        return None
    return session.scalar(select(CrmMapping).where(CrmMapping.workspace_id == ws, CrmMapping.crm == HUBSPOT,
                                                   CrmMapping.kind == kind, CrmMapping.external_id == external_id))


# --- a deal into a pack ------------------------------------------------------------------------------

class Unmapped(Exception):
    """What stops a deal from becoming a pack, for its review item."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Outcome:
    deal: s.DealIn
    outcome: str  # pack_created | pack_exists | review
    pack_id: str | None = None
    review_item_id: str | None = None
    reason: str | None = None
    message: str | None = None

    def out(self, **extra) -> s.DealOutcomeOut:
        return s.DealOutcomeOut(crm=self.deal.crm, deal_id=self.deal.id,
                                external_ref=external_ref(self.deal.crm, self.deal.id), outcome=self.outcome,
                                pack_id=self.pack_id, review_item_id=self.review_item_id, reason=self.reason,
                                message=self.message, **extra)


def _holder(session: Session, ws: str, deal: s.DealIn, settings: CrmIntegration | None) -> tuple[str, str]:
    if deal.holder is not None:
        named, how = deal.holder, "the deal's holder"
    else:
        named, how = None, ""
        prop = settings.holder_property if settings else None
        value = (deal.properties.get(prop) or "").strip() if prop else ""
        if value:
            kind = "office" if value.startswith("off_") else "customer" if value.startswith("cus_") else None
            if kind is None:
                raise Unmapped("unknown_holder", f"The deal property {prop} is {value!r}: not a customer (cus_...) "
                                                 "or office (off_...) id.")
            named, how = s.HolderIn(kind=kind, id=value[:40]), f"the deal property {prop}"
    if named is not None:
        try:
            ref, _ = packs.resolve_holder(session, ws, named.kind, named.id)
        except NotFound:
            raise Unmapped("unknown_holder", f"{how.capitalize()} names {named.kind} {named.id}, which is not "
                                             "in this workspace.") from None
        return ref.kind, ref.id
    if not deal.company_id:
        raise Unmapped("no_holder", "The deal names no company and no holder: map its company, or name the "
                                    "holder in the deal.")
    mapping = _mapped(session, ws, "company", deal.company_id)
    if mapping is None:
        raise Unmapped("unknown_company", f"HubSpot company {deal.company_id} is not mapped to a customer or "
                                          "office: add a company mapping, then Retry.")
    return mapping.holder_kind, mapping.holder_id


def pack_request(session: Session, ws: str, deal: s.DealIn, settings: CrmIntegration | None,
                 made_at: datetime | None = None) -> cs.PackCreate:
    """The grant a deal asks for, or Unmapped saying why there is none. A deal without a close date was bought
    when its pack was made (`made_at`, the pack's purchase date, when it has one), else now."""
    holder_kind, holder_id = _holder(session, ws, deal, settings)
    if not deal.line_items:
        raise Unmapped("no_line_items", "The deal has no line items: nothing says which credits it sold.")
    lines: list[tuple[s.LineItemIn, Product]] = []
    unknown = []
    for item in deal.line_items:
        mapping = _mapped(session, ws, "product", item.product_id) or _mapped(session, ws, "sku", item.sku)
        product = session.get(Product, mapping.product_id) if mapping else None
        if product is None or product.workspace_id != ws or product.kind != "credit_package":
            unknown.append(f"product {item.product_id}" if item.product_id else
                           f"SKU {item.sku}" if item.sku else f"line item {item.id or '?'} (no product or SKU)")
            continue
        lines.append((item, product))
    if unknown:
        raise Unmapped("unknown_product", f"No credit package is mapped for {', '.join(unknown)}: add a product or "
                                          "SKU mapping, then Retry.")
    first = lines[0][1]
    shape = lambda p: (p.credit_type_id, p.expiry_policy, p.expiry_months, p.expiry_month, p.expiry_day,  # noqa: E731
                       sorted(p.applicable_product_codes or []))
    if any(shape(p) != shape(first) for _, p in lines):
        raise Unmapped("mixed_packages", "The line items map to packages of different credit types, expiry "
                                         "policies or applicable products: one deal makes one pack. Split the "
                                         "deal, or grant these packs by hand and Dismiss.")
    quantity = sum(item.quantity * p.credit_quantity for item, p in lines)
    price, currency = 0, None
    if deal.amount is not None:
        if not deal.currency:
            raise Unmapped("currency_missing", f"The deal's amount {deal.amount} has no currency.")
        try:
            currency = check_currency(deal.currency)
            price = to_minor(Decimal(deal.amount), currency)
        except (InvalidOperation, CreditdeskError):
            raise Unmapped("invalid_amount", f"The deal's amount {deal.amount!r} {deal.currency} is not an amount "
                                             "of that currency.") from None
        if price < 0:
            raise Unmapped("invalid_amount", f"The deal's amount {deal.amount} is negative.")
        currency = currency if price else None
    closed = clock.aware(deal.closed_at) or clock.aware(made_at)
    purchased_at = closed or clock.now()
    expiry = catalog.package_expiry(first, timezones.local_day(purchased_at, timezones.workspace_zone(session, ws)))
    ct = session.get(CreditType, first.credit_type_id)
    if len(lines) == 1 and lines[0][0].quantity == 1:
        name = first.name
    elif len(lines) == 1:
        name = f"{first.name} x{lines[0][0].quantity}"
    else:
        name = deal.name or f"Deal {deal.id}"
    crm_name = "HubSpot" if deal.crm == HUBSPOT else deal.crm
    return cs.PackCreate(
        holder=cs.Holder(kind=holder_kind, id=holder_id), credit_type=ct.code, quantity=quantity, name=name[:200],
        price_paid=price, currency=currency, is_paid=price > 0, source=SOURCE,
        # Without a close date the grant's own "now" (left out: not compared when the deal comes again).
        external_ref=external_ref(deal.crm, deal.id), purchased_at=closed, starts_at=closed,
        expires_at=expiry,  # a day: the grant makes it the end of that day in the workspace's time zone
        product_codes=list(first.applicable_product_codes or []),
        notes=f"{crm_name} deal {deal.id}" + (f": {deal.name}" if deal.name else ""))


def process_deal(session: Session, deal: s.DealIn, *, actor: Actor) -> Outcome:
    """Make the deal's pack, or find the one made before, or put the deal in the review queue."""
    ws = actor.workspace_id
    settings = settings_row(session, ws)
    ref = external_ref(deal.crm, deal.id)
    made = packs.pack_by_external_ref(session, ws, SOURCE, ref)
    try:
        data = pack_request(session, ws, deal, settings, made.purchased_at if made is not None else None)
    except Unmapped as why:
        if made is not None:  # its pack was made; what it maps to since does not matter
            _resolve(session, ws, deal, made.id, actor=actor)
            return Outcome(deal, "pack_exists", pack_id=made.id)
        item = to_review(session, ws, deal, why.reason, why.message, actor=actor)
        return Outcome(deal, "review", review_item_id=item.id, reason=why.reason, message=why.message)
    savepoint = session.begin_nested()
    try:
        pack, created = packs.grant_or_find(session, data, actor=actor)
        savepoint.commit()
    except CreditdeskError as exc:
        savepoint.rollback()
        reason = "deal_changed" if exc.code == "external_ref_taken" else exc.code
        message = exc.message
        if reason == "deal_changed":
            message = (f"The deal changed after its pack {exc.details.get('pack_id')} was made "
                       f"({', '.join(exc.details.get('fields') or [])}): correct that pack, then Dismiss.")
        item = to_review(session, ws, deal, reason, message, actor=actor, pack_id=exc.details.get("pack_id"))
        return Outcome(deal, "review", review_item_id=item.id, reason=reason, message=message,
                       pack_id=exc.details.get("pack_id"))
    _resolve(session, ws, deal, pack.id, actor=actor)
    return Outcome(deal, "pack_created" if created else "pack_exists", pack_id=pack.id)


# --- the review queue --------------------------------------------------------------------------------

def _review_row(session: Session, ws: str, crm: str, deal_id: str) -> CrmReviewItem | None:
    return session.scalar(select(CrmReviewItem).where(CrmReviewItem.workspace_id == ws, CrmReviewItem.crm == crm,
                                                      CrmReviewItem.deal_id == deal_id))


def to_review(session: Session, ws: str, deal: s.DealIn, reason: str, message: str, *, actor: Actor,
               pack_id: str | None = None) -> CrmReviewItem:
    """The deal's review item, opened (or reopened, with the deal as now received)."""
    stored = deal.model_dump(mode="json")
    now = clock.now()
    for _ in range(2):
        row = _review_row(session, ws, deal.crm, deal.id)
        if row is not None:
            before = snapshot(row)
            row.reason, row.message, row.deal, row.pack_id = reason, message, stored, pack_id
            if row.status != "dismissed":  # dismissed stays dismissed: someone decided about this deal
                row.status = "open"
            row.attempts += 1
            row.updated_at = now
            audit.record(session, actor=actor, action="crm_review.update", object_type="crm_review_item",
                         object_id=row.id, before=before, after=snapshot(row))
            return row
        row = CrmReviewItem(id=new_id("crmr"), workspace_id=ws, crm=deal.crm, deal_id=deal.id, reason=reason,
                            message=message, deal=stored, status="open", pack_id=pack_id, attempts=1,
                            dismiss_reason=None, created_at=now, updated_at=now)
        try:
            with session.begin_nested():  # the same deal at once: the second updates the first's row
                session.add(row)
                session.flush()
        except IntegrityError:
            continue
        audit.record(session, actor=actor, action="crm_review.create", object_type="crm_review_item",
                     object_id=row.id, after=snapshot(row))
        return row
    raise Conflict("The deal's review item changed meanwhile; send it again.", code="concurrent_conflict")


def _resolve(session: Session, ws: str, deal: s.DealIn, pack_id: str, *, actor: Actor) -> None:
    row = _review_row(session, ws, deal.crm, deal.id)
    if row is None or row.status == "resolved":
        return
    before = snapshot(row)
    row.status, row.pack_id, row.updated_at = "resolved", pack_id, clock.now()
    audit.record(session, actor=actor, action="crm_review.resolve", object_type="crm_review_item",
                 object_id=row.id, before=before, after=snapshot(row))


def review_out(row: CrmReviewItem) -> s.ReviewItemOut:
    return s.ReviewItemOut(id=row.id, crm=row.crm, deal_id=row.deal_id, external_ref=external_ref(row.crm, row.deal_id),
                           reason=row.reason, message=row.message, status=row.status, pack_id=row.pack_id,
                           attempts=row.attempts, dismiss_reason=row.dismiss_reason, deal=row.deal,
                           created_at=row.created_at, updated_at=row.updated_at)


def get_review_item(session: Session, workspace_id: str, item_id: str) -> CrmReviewItem:
    return get_in_workspace(session, CrmReviewItem, workspace_id, item_id, label="review item")


def list_review_items(session: Session, *, actor: Actor, status: str | Sequence[str] | None = None,
                      limit: int | None = None,
                      cursor: str | None = None) -> Page[CrmReviewItem]:
    stmt = select(CrmReviewItem).where(CrmReviewItem.workspace_id == actor.workspace_id)
    if status:
        stmt = stmt.where(one_of(CrmReviewItem.status, status))
    return paginate(session, stmt, id_column=CrmReviewItem.id, limit=limit, cursor=cursor, descending=True)


def retry_review_item(session: Session, item_id: str, *, actor: Actor) -> CrmReviewItem:
    """Run the deal again with today's mappings: its pack is made (the item resolved), or the answer says
    what still stops it (409 deal_not_mappable, nothing changed)."""
    governance.require_grant(actor)
    row = get_review_item(session, actor.workspace_id, item_id)
    if row.status == "resolved":
        raise Conflict(f"This deal already made its pack {row.pack_id}.", code="review_item_resolved",
                       pack_id=row.pack_id)
    deal = s.DealIn.model_validate(row.deal)
    outcome = process_deal(session, deal, actor=actor)
    if outcome.outcome == "review":
        raise Conflict(f"The deal still cannot become a pack: {outcome.message}", code="deal_not_mappable",
                       reason=outcome.reason)
    return row  # resolved by process_deal (the same row of the session)


def dismiss_review_item(session: Session, item_id: str, data: s.DismissIn, *, actor: Actor) -> CrmReviewItem:
    """Decide that the deal makes no pack here (granted by hand, or not a credit sale)."""
    governance.require_grant(actor)
    row = get_review_item(session, actor.workspace_id, item_id)
    if row.status == "resolved":
        raise Conflict(f"This deal already made its pack {row.pack_id}: void the pack instead.",
                       code="review_item_resolved", pack_id=row.pack_id)
    before = snapshot(row)
    row.status, row.dismiss_reason, row.updated_at = "dismissed", data.reason, clock.now()
    audit.record(session, actor=actor, action="crm_review.dismiss", object_type="crm_review_item",
                 object_id=row.id, before=before, after=snapshot(row))
    return row


# --- the deal import ----------------------------------------------------------------------------------

CSV_COLUMNS = ("crm", "deal_id", "name", "amount", "currency", "closed_at", "company_id", "holder_kind",
               "holder_id", "product_id", "sku", "quantity")


@dataclass
class ParsedDeal:
    line: int
    deal: s.DealIn | None
    error: str | None = None
    crm: str = "import"
    deal_id: str | None = None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


def parse_csv(text: str) -> list[ParsedDeal]:
    """Deals of a CSV text, one line item per row; rows of one deal (same crm and deal_id) make one deal."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"deal_id"} - set(reader.fieldnames or [])
    if missing:
        raise InvalidInput("The CSV needs a header row with at least deal_id (columns: "
                           f"{', '.join(CSV_COLUMNS)}).", code="csv_header_invalid")
    unknown = sorted(set(reader.fieldnames or []) - set(CSV_COLUMNS))
    if unknown:
        raise InvalidInput(f"Unknown CSV column(s): {', '.join(unknown)} (columns: {', '.join(CSV_COLUMNS)}).",
                           code="csv_header_invalid", unknown=unknown)
    grouped: dict[tuple[str, str], dict] = {}
    out: list[ParsedDeal] = []
    for row in reader:
        line = reader.line_num
        v = {k: (row.get(k) or "").strip() for k in CSV_COLUMNS}
        key = (v["crm"] or "import", v["deal_id"])
        if not v["deal_id"]:
            out.append(ParsedDeal(line, None, "deal_id: a deal id is required"))
            continue
        item = {"product_id": v["product_id"] or None, "sku": v["sku"] or None, "quantity": v["quantity"] or "1"}
        if key in grouped:
            grouped[key]["line_items"].append(item)
            continue
        body = {"crm": key[0], "id": key[1], "name": v["name"] or None, "amount": v["amount"] or None,
                "currency": v["currency"] or None, "closed_at": v["closed_at"] or None,
                "company_id": v["company_id"] or None, "line_items": [item]}
        if v["holder_kind"] or v["holder_id"]:
            body["holder"] = {"kind": v["holder_kind"], "id": v["holder_id"]}
        grouped[key] = body
        out.append(ParsedDeal(line, None, None, key[0], key[1]))
    for parsed in out:
        if parsed.error is None:
            try:
                parsed.deal = s.DealIn.model_validate(grouped[(parsed.crm, parsed.deal_id)])
            except ValidationError as exc:
                parsed.error = _first_error(exc)
    return out


def import_deals(session: Session, data: s.DealImport, *, actor: Actor) -> s.DealImportOut:
    """Each deal through process_deal: packs made, packs made before, review items. A malformed deal is
    reported with its line and makes nothing; the others go on."""
    governance.require_grant(actor)
    if (data.deals is None) == (data.csv is None):
        raise InvalidInput("Give either deals (JSON) or csv (text).", code="deals_or_csv")
    parsed = parse_csv(data.csv) if data.csv is not None else \
        [ParsedDeal(n, deal, None, deal.crm, deal.id) for n, deal in enumerate(data.deals, 1)]
    results = []
    for item in parsed:
        if item.deal is None:
            results.append(s.DealOutcomeOut(crm=item.crm, deal_id=item.deal_id,
                                            external_ref=external_ref(item.crm, item.deal_id) if item.deal_id else None,
                                            outcome="error", reason="invalid_deal", message=item.error,
                                            line=item.line))
            continue
        results.append(process_deal(session, item.deal, actor=actor).out(line=item.line))
    count = lambda kind: sum(1 for r in results if r.outcome == kind)  # noqa: E731
    return s.DealImportOut(created=count("pack_created"), existing=count("pack_exists"), review=count("review"),
                           errors=count("error"), deals=results)
