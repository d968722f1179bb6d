"""Credit packages sold on invoices (seed 001): the pack a paid package line makes, free grants, the
customer's packages and their corrections, and the packs that may pay for an invoice line.

Rules:
- A line for a `credit_package` product makes its pack when the invoice is **settled** (by payments, Mark
  as paid, or a posting with nothing due), never before: holder the line's package holder or else the
  invoice's customer; paid, cost the line's gross; quantity the package's credits times the line's whole
  units; credit type and applicable products from the package; expiry from its policy with the settlement
  date as the purchase date (the pack expires at 00:00 UTC of that date); source `purchase`, external_ref
  the invoice line (a package of a governed type, SMS, makes none: those credits come only from their own
  purchase flow). The internal key `invoice_line_package:<line id>` makes a second settlement answer with
  the same pack (credits' own grant_pack, one place for that rule).
- A credit note naming a package line, or one for the whole remaining amount without lines, means that
  line was not sold: no pack is made at settlement, and a pack already made is voided (what is unused goes
  to breakage). Today a settled invoice has nothing due, so no credit note reaches a paid invoice: the void
  is there for the rule, not yet reachable from the API.
- A free grant (promotion) is credits' grant with source `promotion`, not paid, price 0.
- Correction of remaining (back office Edit): a lower remaining moves the difference to breakage (as a void
  of part does), a higher one grants the difference from issuance, both ledger transfers referencing the pack
  and one `pack.correct` audit event with the reason, before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, timezones
from creditdesk.audit import Actor, snapshot
from creditdesk.billing.invoice_models import QUANTITY_SCALE, CreditNote as _Note, Invoice, InvoiceLine
from creditdesk.catalog import service as catalog
from creditdesk.catalog.models import Product
from creditdesk.credits import governance, packs, schemas as cs
from creditdesk.credits.burn import covers
from creditdesk.credits.errors import InvalidCredits
from creditdesk.credits.models import Consumption, CreditType, Pack
from creditdesk.credits.packs import pack_status
from creditdesk.credits.repository import GRANT, VOID
from creditdesk.errors import InvalidInput
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import POSTED, LedgerAccount, LedgerTransfer
from creditdesk.ledger.service import Reference, TransferSpec
from creditdesk.repository import get_in_workspace

KEY_PREFIX = "invoice_line_package:"
LINE_REFERENCE = "invoice_line"


def expiry_instant(session: Session, workspace_id: str, day: date | None) -> datetime | None:
    """A package's expiry day as the end of that day where the business is (timezones)."""
    return None if day is None else timezones.end_of_day(day, timezones.workspace_zone(session, workspace_id))


def purchase_day(session: Session, workspace_id: str, at: datetime) -> date:
    """The day a package was bought, where the business is (its expiry counts from it)."""
    return timezones.local_day(at, timezones.workspace_zone(session, workspace_id))


def _package_lines(session: Session, invoice: Invoice) -> list[tuple[InvoiceLine, Product]]:
    return list(session.execute(
        select(InvoiceLine, Product).join(Product, Product.id == InvoiceLine.product_id)
        .where(InvoiceLine.invoice_id == invoice.id, Product.kind == "credit_package")
        .order_by(InvoiceLine.position, InvoiceLine.id)).tuples())


def _credited(session: Session, invoice: Invoice) -> tuple[set[str], bool]:
    """Lines named by the invoice's credit notes, and whether a credit note without lines covered all that
    was due (a full credit)."""
    named: set[str] = set()
    whole = False
    for note in session.scalars(select(_Note).where(_Note.invoice_id == invoice.id)):
        if note.lines:
            named.update(item["line_id"] for item in note.lines)
        else:
            whole = True
    return named, whole


def grant_for_settled_invoice(session: Session, invoice: Invoice, *, actor: Actor) -> list[Pack]:
    named, whole = _credited(session, invoice)
    if whole and invoice.amount_paid == 0:
        return []  # credited in full, nothing paid: nothing was sold
    made = []
    for line, product in _package_lines(session, invoice):
        if line.id in named:
            continue
        pack = grant_line_pack(session, invoice, line, product, actor=actor)
        if pack is not None:
            made.append(pack)
    return made


def grant_line_pack(session: Session, invoice: Invoice, line: InvoiceLine, product: Product, *,
                    actor: Actor) -> Pack | None:
    units = line.quantity_milli // QUANTITY_SCALE
    if units <= 0:
        return None
    ct = session.get(CreditType, product.credit_type_id)
    if governance.is_governed(ct):
        # SMS-like credits are bought only through their own purchase flow (receipt, who may buy for whom):
        # an invoice line for such a package bills it but makes no pack, rather than refusing the payment.
        return None
    purchased_at = clock.aware(invoice.settled_at) or clock.now()
    kind = line.package_holder_kind or "customer"
    holder_id = line.package_holder_id or invoice.customer_id
    data = cs.PackCreate(
        holder=cs.Holder(kind=kind, id=holder_id), credit_type=ct.code, quantity=product.credit_quantity * units,
        name=product.name if units == 1 else f"{product.name} x{units}", price_paid=line.gross,
        currency=invoice.currency, is_paid=True, source="purchase", external_ref=line.id,
        purchased_at=purchased_at, starts_at=purchased_at,
        expires_at=expiry_instant(session, invoice.workspace_id, catalog.package_expiry(
            product, purchase_day(session, invoice.workspace_id, purchased_at))),
        product_codes=list(product.applicable_product_codes or []))
    return packs.grant_pack(session, data, actor=actor, internal_key=KEY_PREFIX + line.id)


def packs_of_invoice(session: Session, invoice: Invoice) -> list[Pack]:
    line_ids = [line.id for line, _ in _package_lines(session, invoice)]
    if not line_ids:
        return []
    return list(session.scalars(select(Pack).where(
        Pack.workspace_id == invoice.workspace_id, Pack.internal_key.in_([KEY_PREFIX + i for i in line_ids]))))


def void_for_credit_note(session: Session, invoice: Invoice, note, *, actor: Actor) -> list[Pack]:
    """A credit note naming a package line, or crediting in full: that line's pack (if made) is voided."""
    lines = {item["line_id"] for item in (note.lines or [])}
    whole = not note.lines and invoice.amount_credited >= invoice.total
    return void_packs(session, invoice, actor=actor, line_ids=None if whole else lines,
                      reason=f"invoice {invoice.number or invoice.id} credited ({note.number})")


def void_packs(session: Session, invoice: Invoice, *, actor: Actor, line_ids: set[str] | None,
               reason: str) -> list[Pack]:
    """Void the still active packs the invoice's package lines made (all, or those of `line_ids`)."""
    voided = []
    for pack in packs_of_invoice(session, invoice):
        if line_ids is not None and pack.external_ref not in line_ids:
            continue
        if pack.status in ("voided", "expired"):
            continue
        voided.append(packs.void_pack(session, pack.id, cs.VoidPack(reason=reason), actor=actor))
    return voided


# --- free grants (promotion) ---

def grant_free(session: Session, product_ref: str, holder: cs.Holder, *, actor: Actor, count: int = 1,
               notes: str = "") -> Pack:
    """Give a credit package free (a promotion): its pack, recorded as free (not paid, price 0)."""
    product = catalog.get_product(session, actor.workspace_id, product_ref)
    if product.kind != "credit_package":
        raise InvalidInput(f"{product.code} is not a credit package.", code="not_a_credit_package",
                           field="product")
    ct = session.get(CreditType, product.credit_type_id)
    now = clock.now()
    data = cs.PackCreate(
        holder=holder, credit_type=ct.code, quantity=product.credit_quantity * count,
        name=product.name if count == 1 else f"{product.name} x{count}", price_paid=0, is_paid=False,
        source="promotion", external_ref=f"product:{product.code}", purchased_at=now, starts_at=now,
        expires_at=expiry_instant(session, actor.workspace_id, catalog.package_expiry(
            product, purchase_day(session, actor.workspace_id, now))),
        product_codes=list(product.applicable_product_codes or []), notes=notes)
    return packs.grant_pack(session, data, actor=actor)


# --- the customer's packages ---

@dataclass
class PackageRow:
    pack: Pack
    credit_type: str
    bought: int
    used: int
    remaining: int
    status: str
    bought_on: Invoice | None
    spent_on: list[Invoice]


def _used(session: Session, pack: Pack, ct: CreditType) -> int:
    """Consumed net of reversals: what went to the type's consumed account and did not come back."""
    def total(debit, credit):
        return int(session.scalar(select(func.coalesce(func.sum(LedgerTransfer.amount), 0)).where(
            LedgerTransfer.debit_account_id == debit, LedgerTransfer.credit_account_id == credit,
            LedgerTransfer.phase == POSTED)) or 0)
    return total(pack.ledger_account_id, ct.consumed_account_id) - total(ct.consumed_account_id,
                                                                         pack.ledger_account_id)


def _spent_on(session: Session, pack: Pack) -> list[Invoice]:
    return list(session.scalars(
        select(Invoice).join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
        .join(Consumption, Consumption.reference_id == InvoiceLine.id)
        .join(LedgerTransfer, LedgerTransfer.operation_id == Consumption.id)
        .where(Consumption.workspace_id == pack.workspace_id, Consumption.reference_kind == LINE_REFERENCE,
               Consumption.status == "posted", LedgerTransfer.debit_account_id == pack.ledger_account_id)
        .distinct().order_by(Invoice.id)))


def customer_packages(session: Session, *, actor: Actor, customer_id: str) -> list[PackageRow]:
    """Every pack of the customer (its own, its offices' and users'), newest first, as the actor may see."""
    from creditdesk.parties.models import Customer

    get_in_workspace(session, Customer, actor.workspace_id, customer_id)
    stmt = (select(Pack, LedgerAccount, CreditType).join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
            .join(CreditType, CreditType.id == Pack.credit_type_id)
            .where(Pack.workspace_id == actor.workspace_id, Pack.customer_id == customer_id)
            .order_by(Pack.created_at.desc(), Pack.id.desc()))
    visible = governance.visible_packs_clause(session, actor)
    if visible is not None:
        stmt = stmt.where(visible)
    rows = session.execute(stmt).tuples().all()
    now = clock.now()
    out = []
    for pack, account, ct in rows:
        bought_on = None
        if pack.internal_key and pack.internal_key.startswith(KEY_PREFIX):
            bought_on = session.scalar(select(Invoice).join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
                                       .where(InvoiceLine.id == pack.external_ref))
        out.append(PackageRow(pack, ct.code, pack.quantity, _used(session, pack, ct), account.available,
                              pack_status(pack, now), bought_on, _spent_on(session, pack)))
    return out


def packs_covering(session: Session, *, workspace_id: str, customer_id: str, product_code: str) -> list[dict]:
    """The customer's packs (its own, its offices' and users') usable now that cover this product, with the
    available balance: the choices of an invoice line's Pay with credits."""
    from creditdesk.credits.repository import is_live

    now = clock.now()
    ctx_holders = _customer_holders(session, workspace_id, customer_id)
    rows = session.execute(
        select(Pack, LedgerAccount, CreditType).join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
        .join(CreditType, CreditType.id == Pack.credit_type_id)
        .where(Pack.workspace_id == workspace_id, Pack.customer_id == customer_id, Pack.status == "active")
        .order_by(Pack.expires_at, Pack.id)).tuples().all()
    out = []
    for pack, account, ct in rows:
        if (pack.holder_kind, pack.holder_id) not in ctx_holders or not covers(pack, product_code):
            continue
        if not is_live(pack.status, clock.aware(pack.starts_at), clock.aware(pack.expires_at), now):
            continue
        if account.available <= 0 or not pack.product_codes:
            continue  # a pack for any product is not a package for this one
        out.append({"pack": pack, "credit_type": ct.code, "scale": ct.scale, "available": account.available})
    return out


def _customer_holders(session: Session, workspace_id: str, customer_id: str) -> set[tuple[str, str]]:
    from creditdesk.parties.models import Office, User

    offices = set(session.scalars(select(Office.id).where(Office.workspace_id == workspace_id,
                                                          Office.customer_id == customer_id)))
    users = set(session.scalars(select(User.id).where(User.workspace_id == workspace_id,
                                                      User.primary_office_id.in_(offices)))) if offices else set()
    return ({("customer", customer_id)} | {("office", o) for o in offices} | {("user", u) for u in users})


# --- Edit (back office, API) ---

def edit_package(session: Session, pack_id: str, *, actor: Actor, expires_on: date | None = None,
                 clear_expiry: bool = False, status_label: str | None = None, notes: str | None = None,
                 remaining: int | None = None, reason: str = "") -> Pack:
    """Change a package's expiry, label and notes, and correct its remaining (with a reason); each change
    audited with before and after (label and notes through credits' own update_pack)."""
    governance.require_manage_packs(actor, "edit packages")
    pack = packs.get_pack(session, actor.workspace_id, pack_id, for_update=True, actor=actor)
    fields = {}
    if status_label is not None:
        fields["status_label"] = status_label
    if notes is not None:
        fields["notes"] = notes
    if fields:
        packs.update_pack(session, pack.id, cs.PackUpdate(**fields), actor=actor)
    if expires_on is not None or clear_expiry:
        governance.require_not_wallet_money(session.get(CreditType, pack.credit_type_id), "a change of expiry")
        new = None if clear_expiry else expiry_instant(session, actor.workspace_id, expires_on)
        if new is not None and new <= clock.aware(pack.starts_at):
            raise InvalidCredits("The pack would expire before it starts.", code="expiry_before_start")
        if pack.status in ("voided", "expired"):
            raise InvalidCredits(f"This pack is {pack.status}: its expiry no longer changes.",
                                 code="pack_not_active")
        if new != clock.aware(pack.expires_at):
            before = snapshot(pack)
            pack.expires_at, pack.expiry_months, pack.updated_at = new, None, clock.now()
            audit.record(session, actor=actor, action="pack.update", object_type="pack", object_id=pack.id,
                         before=before, after=snapshot(pack))
    if remaining is not None:
        correct_remaining(session, pack, remaining, reason=reason, actor=actor)
    session.flush()
    return pack


def correct_remaining(session: Session, pack: Pack, remaining: int, *, reason: str, actor: Actor) -> None:
    ct = session.get(CreditType, pack.credit_type_id)
    governance.authorize_correction(actor, ct, "correct packages")
    if not reason.strip():
        raise InvalidInput("Say why the remaining credits are corrected.", code="reason_required", field="reason")
    if remaining < 0:
        raise InvalidInput("Remaining credits cannot be negative.", code="invalid_remaining", field="remaining")
    if pack.status in ("voided", "expired"):
        raise InvalidCredits(f"This pack is {pack.status}: its remaining credits no longer change.",
                             code="pack_not_active")
    account = session.get(LedgerAccount, pack.ledger_account_id)
    session.refresh(account)
    diff = remaining - account.available
    if diff == 0:
        return
    before = snapshot(pack, remaining=account.available)
    spec = (TransferSpec(account.id, ct.breakage_account_id, -diff, VOID, Reference("pack", pack.id)) if diff < 0
            else TransferSpec(ct.issuance_account_id, account.id, diff, GRANT, Reference("pack", pack.id)))
    ledger.post(session, [spec], workspace_id=pack.workspace_id, operation_id=pack.id, actor_id=actor.user_id,
                locked={account.id: account})
    session.flush()
    session.refresh(account)
    packs.refresh_status(pack, account)
    pack.updated_at = clock.now()
    audit.record(session, actor=actor, action="pack.correct", object_type="pack", object_id=pack.id,
                 before=before, after=snapshot(pack, remaining=account.available, reason=reason))


# --- Pay with credits from a chosen package (the invoice page's drop-down) ---

def pay_line_from_pack(session: Session, invoice_id: str, line_id: str, pack_id: str, quantity, *,
                       actor: Actor) -> Invoice:
    """Pay `quantity` units of a draft line with credits of one of the customer's packages covering its
    product. Never more than that package has available (refused with its balance), never more than the
    line's quantity (apply_line_credits). The consumption is credits' own, from the package's holder (burn
    order among that holder's packs that cover the product), referencing the line."""
    from creditdesk.billing import invoice_schemas as ins
    from creditdesk.billing import invoices
    from creditdesk.credits.errors import InsufficientCredits, ProductNotCovered

    invoice = invoices.get_invoice(session, actor.workspace_id, invoice_id)
    line = get_in_workspace(session, InvoiceLine, actor.workspace_id, line_id, label="invoice line")
    pack = get_in_workspace(session, Pack, actor.workspace_id, pack_id or "", label="package")
    if line.invoice_id != invoice.id:
        raise InvalidInput("This line is not on this invoice.", code="unknown_line", field="line_id")
    if pack.customer_id != invoice.customer_id:
        raise InvalidInput("That package is not one of this invoice's customer's.", code="credits_not_of_customer",
                           field="pack_id")
    if not covers(pack, line.product_code) or not pack.product_codes:
        raise ProductNotCovered(f"Package {pack.name!r} does not cover product {line.product_code!r}: it pays only "
                                f"for {', '.join(pack.product_codes) or 'nothing listed'}.",
                                product_code=line.product_code, field="pack_id")
    ct = session.get(CreditType, pack.credit_type_id)
    milli = invoices.to_milli(quantity, field="credit_quantity")
    from decimal import Decimal

    wanted = Decimal(milli).scaleb(-3).scaleb(ct.scale)
    available = session.get(LedgerAccount, pack.ledger_account_id).available
    if pack_status(pack, clock.now()) != "active":
        available = 0
    if wanted > available:
        shown = Decimal(available).scaleb(-ct.scale)
        raise InsufficientCredits(f"Not enough credits in package {pack.name!r}: {shown} available, "
                                  f"{invoices.quantity_text(milli)} requested.", available=available,
                                  requested=int(wanted), field="credit_quantity")
    data = ins.LineCredits(context=cs.Context(kind=pack.holder_kind, id=pack.holder_id), credit_type=ct.code,
                           quantity=Decimal(milli).scaleb(-3))
    return invoices.apply_line_credits(session, invoice.id, line.id, data, actor=actor)
