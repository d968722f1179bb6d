"""Invoices of an account: draft -> posted -> settled, or a draft voided. Lines, totals, posting to the
ledger, the line-level credits hook, and the invoices' outstanding amount.

Who may (one rule, `require_billing_writer`, also used by credit notes and payments): masters and
managers raise, edit, post and void invoices, issue credit notes and record payments (managers already
open accounts and manage customers); every staff user reads them.

Rules:
- Lines are priced from the catalogue: the unit price from the invoice's price plan (else the currency's
  default plan; `no_price` otherwise), editable on a draft; tax from the product's tax class, the rate in
  force on the issue date; money per line by `catalog.lines.compute_line` (rounded once per line); the
  invoice's totals are the sums of its lines.
- Posting (a draft with at least one line) re-reads the tax rates in force on the issue date, sets the due
  date from the account's credit period, takes the next number of the workspace (INV-000001, under the
  billing settings row's lock, so numbers have no gaps), and debits the account through
  `billing.postings.post_account_entry` (net against revenue, tax against tax), all in one transaction.
  A posted invoice never changes again (409 `invoice_not_draft`): credit notes correct it.
- Units of a draft line may be paid with credits of the invoice's customer (`apply_line_credits`): a
  consumption referencing the line, through credits' own consume (which refuses more than is available).
  The line then bills only the rest of its quantity. Taking the credits off, deleting the line or voiding
  the draft reverses that consumption.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies, webhooks
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts, credit_control, lifecycle, postings
from creditdesk.billing import groups  # group accounts and pricing agreements
from creditdesk.billing import invoice_schemas as s
from creditdesk.billing.invoice_models import QUANTITY_SCALE, Invoice, InvoiceLine
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.settings import require_settings
from creditdesk.catalog import service as catalog
from creditdesk.catalog.lines import Discount, LineTotals, check_quantity, compute_line
from creditdesk.catalog.models import Product
from creditdesk.credits import schemas as credit_schemas
from creditdesk.credits import burn, consumptions, credit_types
from creditdesk.errors import Conflict, InvalidInput
from creditdesk.ids import new_id
from creditdesk.ledger.batch import Reference
from creditdesk.pagination import Page, paginate
from creditdesk.parties.service import require_manager
from creditdesk.repository import get_in_workspace, one_of

NUMBER_PREFIX = "INV-"
LINE_REFERENCE = "invoice_line"
OPEN = "posted"  # the status of an invoice that still has something due


def require_billing_writer(actor: Actor, what: str) -> None:
    require_manager(actor, what)


def format_number(sequence: int) -> str:
    return f"{NUMBER_PREFIX}{sequence:06d}"


def get_invoice(session: Session, workspace_id: str, invoice_id: str, *, for_update: bool = False) -> Invoice:
    return get_in_workspace(session, Invoice, workspace_id, invoice_id, label="invoice", for_update=for_update)


def lines_of(session: Session, invoice_id: str) -> list[InvoiceLine]:
    return list(session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id)
                                .order_by(InvoiceLine.position, InvoiceLine.id)))


def _draft(session: Session, actor: Actor, invoice_id: str, what: str) -> Invoice:
    invoice = get_invoice(session, actor.workspace_id, invoice_id, for_update=True)
    require_billing_writer(actor, what)
    if invoice.status != "draft":
        raise Conflict(f"Invoice {invoice.number or invoice.id} is {invoice.status}: only a draft changes. "
                       "Correct a posted invoice with a credit note.", code="invoice_not_draft",
                       status=invoice.status)
    return invoice


def _snapshot(session: Session, invoice: Invoice) -> dict:
    return snapshot(invoice, lines=[snapshot(line) for line in lines_of(session, invoice.id)])


def _check_currency(code: str | None, expected: str, field: str = "currency") -> None:
    if code is not None and code.strip().upper() != expected:
        raise InvalidInput(f"This account is in {expected}, not {code.upper()}.", code="currency_mismatch",
                           field=field, expected=expected)


def _price_plan(session: Session, workspace_id: str, plan_id: str | None, currency: str) -> str | None:
    if not plan_id:
        return None
    plan = catalog.get_price_plan(session, workspace_id, plan_id)
    if plan.currency != currency:
        raise InvalidInput(f"Price plan {plan.code!r} is in {plan.currency}, the account in {currency}.",
                           code="currency_mismatch", field="price_plan_id", expected=currency)
    return plan.id


# --- quantities and line money ---

def to_milli(quantity, field: str = "quantity") -> int:
    try:
        value = check_quantity(quantity)
    except InvalidInput as exc:
        exc.details["field"] = field
        raise
    return int(value * QUANTITY_SCALE)


def quantity_text(milli: int) -> str:
    """Thousandths as the shortest decimal string: 1500 -> "1.5", 2000 -> "2"."""
    text = format(Decimal(milli).scaleb(-3), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _price_line(session: Session, invoice: Invoice, line: InvoiceLine, product: Product | None = None) -> None:
    """Tax in force on the issue date, then the line's money: what it bills (the quantity not paid with
    credits) and what the credited units are worth."""
    product = product or session.get(Product, line.product_id)
    rate = catalog.tax_of(session, product, invoice.issue_date)
    line.tax_rate_id = rate.id if rate else None
    line.tax_rate_bp = rate.rate_bp if rate else 0
    line.tax_inclusive = bool(rate.inclusive) if rate else False
    discount = Discount(line.discount_kind, line.discount_value) if line.discount_kind else None
    payable = line.quantity_milli - line.credit_quantity_milli
    kw = {"rate_bp": line.tax_rate_bp, "inclusive": line.tax_inclusive}
    if payable > 0:
        totals = compute_line(line.unit_price, Decimal(payable).scaleb(-3), discount=discount, **kw)
    else:
        totals = LineTotals(net=0, tax=0, gross=0, discount=0)
    line.net, line.tax, line.gross, line.discount_amount = totals.net, totals.tax, totals.gross, totals.discount
    line.credits_value = compute_line(line.unit_price, Decimal(line.credit_quantity_milli).scaleb(-3),
                                      **kw).gross if line.credit_quantity_milli else 0


price_line = _price_line  # the money of a line not stored (a bill's preview: billing.subscriptions)


def _total(session: Session, invoice: Invoice) -> None:
    lines = lines_of(session, invoice.id)
    invoice.subtotal = sum(line.net for line in lines)
    invoice.tax_total = sum(line.tax for line in lines)
    invoice.total = sum(line.gross for line in lines)
    invoice.credits_value = sum(line.credits_value for line in lines)
    invoice.amount_due = (invoice.total - invoice.amount_paid - invoice.amount_credited
                          - invoice.amount_written_off)
    invoice.updated_at = clock.now()


def _set_discount(line: InvoiceLine, discount: s.DiscountIn | None) -> None:
    line.discount_kind = discount.kind if discount else None
    line.discount_value = discount.value if discount else None


def _product(session: Session, workspace_id: str, ref: str) -> Product:
    product = catalog.get_product(session, workspace_id, ref)
    if not product.active:
        raise InvalidInput(f"Product {product.code!r} is inactive: it cannot be billed.", code="product_inactive",
                           field="product")
    return product


def _new_line(session: Session, invoice: Invoice, data: s.LineCreate, position: int) -> InvoiceLine:
    _check_currency(data.currency, invoice.currency)
    product = _product(session, invoice.workspace_id, data.product)
    unit_price = data.unit_price
    if unit_price is None:
        unit_price = catalog.price_of(session, invoice.workspace_id, product.id, invoice.currency,
                                      invoice.price_plan_id).unit_price
    now = clock.now()
    line = InvoiceLine(id=new_id("inl"), workspace_id=invoice.workspace_id, invoice_id=invoice.id, position=position,
                       product_id=product.id, product_code=product.code,
                       description=data.description or product.name, quantity_milli=to_milli(data.quantity),
                       unit_price=unit_price, credit_quantity_milli=0, credits_value=0, created_at=now,
                       updated_at=now)
    _set_discount(line, data.discount)
    if data.package_holder is not None:
        line.package_holder_kind, line.package_holder_id = _package_holder(session, invoice, product,
                                                                           data.package_holder)
    _price_line(session, invoice, line, product)
    session.add(line)
    session.flush([line])
    return line


def _package_holder(session: Session, invoice: Invoice, product: Product, holder) -> tuple[str, str]:
    """Who receives a credit package line's pack: the customer, or one of its offices or users."""
    if product.kind != "credit_package":
        raise InvalidInput("Only a credit package line has a package holder.", code="not_a_credit_package",
                           field="package_holder")
    if holder.kind not in CREDIT_CONTEXTS:
        raise InvalidInput("A package goes to the invoice's customer, or one of its offices or users.",
                           code="holder_not_of_customer", field="package_holder")
    ctx = burn.resolve_context(session, invoice.workspace_id, holder.kind, holder.id or invoice.customer_id)
    if ctx.customer_id != invoice.customer_id:
        raise InvalidInput("A package goes to the invoice's customer, or one of its offices or users.",
                           code="holder_not_of_customer", field="package_holder")
    return holder.kind, ctx.id


def _next_position(session: Session, invoice_id: str) -> int:
    return (session.scalar(select(func.max(InvoiceLine.position)).where(InvoiceLine.invoice_id == invoice_id))
            or 0) + 1


# --- drafts ---

def create_invoice(session: Session, data: s.InvoiceCreate, *, actor: Actor) -> Invoice:
    require_billing_writer(actor, "raise invoices")
    ws = actor.workspace_id
    account = accounts.get_account(session, ws, data.account_id)
    if account.status == "terminated":
        raise Conflict("The account is terminated: it is not billed any more.", code="account_terminated")
    issue = data.issue_date or clock.now().date()
    now = clock.now()
    invoice = Invoice(id=new_id("inv"), workspace_id=ws, account_id=account.id, customer_id=account.customer_id,
                      number=None, status="draft", currency=account.currency,
                      price_plan_id=(_price_plan(session, ws, data.price_plan_id, account.currency)
                                     # pricing agreements (billing.groups): the account's or its group parent's
                                     or groups.agreed_price_plan(session, account)),
                      issue_date=issue, due_date=accounts.due_date(account, issue), notes=data.notes, subtotal=0,
                      tax_total=0, total=0, credits_value=0, amount_paid=0, amount_credited=0, amount_due=0,
                      created_by=actor.user_id, created_at=now, updated_at=now)
    session.add(invoice)
    session.flush([invoice])
    for n, line in enumerate(data.lines, start=1):
        try:
            _new_line(session, invoice, line, n)
        except InvalidInput as exc:
            exc.details.setdefault("line", n - 1)
            raise
    _total(session, invoice)
    session.flush()
    audit.record(session, actor=actor, action="invoice.create", object_type="invoice", object_id=invoice.id,
                 after=_snapshot(session, invoice))
    return invoice


def update_invoice(session: Session, invoice_id: str, data: s.InvoiceUpdate, *, actor: Actor) -> Invoice:
    invoice = _draft(session, actor, invoice_id, "change invoices")
    before = _snapshot(session, invoice)
    fields = data.model_fields_set
    if "notes" in fields:
        invoice.notes = data.notes or ""
    if "price_plan_id" in fields:
        invoice.price_plan_id = _price_plan(session, invoice.workspace_id, data.price_plan_id, invoice.currency)
    if "issue_date" in fields and data.issue_date is not None and data.issue_date != invoice.issue_date:
        invoice.issue_date = data.issue_date
        account = session.get(BillingAccount, invoice.account_id)
        invoice.due_date = accounts.due_date(account, invoice.issue_date)
        for line in lines_of(session, invoice.id):  # the tax in force on the new date
            _price_line(session, invoice, line)
    _total(session, invoice)
    session.flush()
    audit.record(session, actor=actor, action="invoice.update", object_type="invoice", object_id=invoice.id,
                 before=before, after=_snapshot(session, invoice))
    return invoice


def add_line(session: Session, invoice_id: str, data: s.LineCreate, *, actor: Actor) -> Invoice:
    invoice = _draft(session, actor, invoice_id, "change invoices")
    before = _snapshot(session, invoice)
    _new_line(session, invoice, data, _next_position(session, invoice.id))
    _total(session, invoice)
    session.flush()
    audit.record(session, actor=actor, action="invoice.line_add", object_type="invoice", object_id=invoice.id,
                 before=before, after=_snapshot(session, invoice))
    return invoice


def _line(session: Session, invoice: Invoice, line_id: str) -> InvoiceLine:
    line = get_in_workspace(session, InvoiceLine, invoice.workspace_id, line_id, label="invoice line")
    if line.invoice_id != invoice.id:
        raise InvalidInput("This line is not on this invoice.", code="unknown_line", field="line_id")
    return line


def update_line(session: Session, invoice_id: str, line_id: str, data: s.LineUpdate, *, actor: Actor) -> Invoice:
    invoice = _draft(session, actor, invoice_id, "change invoices")
    line = _line(session, invoice, line_id)
    before = _snapshot(session, invoice)
    fields = data.model_fields_set
    product = None
    if "product" in fields and data.product is not None:
        product = _product(session, invoice.workspace_id, data.product)
        if product.id != line.product_id:
            if line.consumption_id:
                raise Conflict("Take the credits off this line before changing its product.",
                               code="line_paid_with_credits")
            line.product_id, line.product_code = product.id, product.code
            if data.unit_price is None:
                line.unit_price = catalog.price_of(session, invoice.workspace_id, product.id, invoice.currency,
                                                   invoice.price_plan_id).unit_price
    if "description" in fields and data.description is not None:
        line.description = data.description
    if "quantity" in fields and data.quantity is not None:
        milli = to_milli(data.quantity)
        if milli < line.credit_quantity_milli:
            raise InvalidInput(f"{quantity_text(line.credit_quantity_milli)} units of this line are paid with "
                               "credits: the quantity cannot be less.", code="credits_exceed_quantity",
                               field="quantity")
        line.quantity_milli = milli
    if "unit_price" in fields and data.unit_price is not None:
        line.unit_price = data.unit_price
    if "discount" in fields:
        _set_discount(line, data.discount)
    line.updated_at = clock.now()
    _price_line(session, invoice, line, product)
    _total(session, invoice)
    session.flush()
    audit.record(session, actor=actor, action="invoice.line_update", object_type="invoice", object_id=invoice.id,
                 before=before, after=_snapshot(session, invoice))
    return invoice


def _reverse_line_credits(session: Session, line: InvoiceLine, *, actor: Actor, reason: str) -> None:
    if line.consumption_id:
        consumptions.reverse_document_consumption(session, line.consumption_id, actor=actor,
                                             reference_kind=LINE_REFERENCE, reason=reason)
        line.consumption_id = None
        line.credit_quantity_milli = 0


def delete_line(session: Session, invoice_id: str, line_id: str, *, actor: Actor) -> Invoice:
    invoice = _draft(session, actor, invoice_id, "change invoices")
    line = _line(session, invoice, line_id)
    before = _snapshot(session, invoice)
    _reverse_line_credits(session, line, actor=actor, reason=f"invoice line {line.id} deleted")
    session.flush()
    session.delete(line)
    session.flush()
    _total(session, invoice)
    session.flush()
    audit.record(session, actor=actor, action="invoice.line_delete", object_type="invoice", object_id=invoice.id,
                 before=before, after=_snapshot(session, invoice))
    return invoice


# --- the credits hook ---

CREDIT_CONTEXTS = ("customer", "office", "user")


def apply_line_credits(session: Session, invoice_id: str, line_id: str, data: s.LineCredits, *,
                       actor: Actor) -> Invoice:
    """Pay `data.quantity` units of a draft line with credits (one credit of the type per unit, in the
    type's own scale: 1.5 units of an `hours` type of scale 2 burn 150)."""
    invoice = _draft(session, actor, invoice_id, "pay invoice lines with credits")
    line = _line(session, invoice, line_id)
    if line.consumption_id:
        raise Conflict("This line is already paid with credits: take them off first.",
                       code="line_paid_with_credits")
    milli = to_milli(data.quantity)
    if milli > line.quantity_milli:
        raise InvalidInput(f"The line has {quantity_text(line.quantity_milli)} units: no more can be paid with "
                           "credits.", code="credits_exceed_quantity", field="quantity")
    if data.context.kind not in CREDIT_CONTEXTS:
        raise InvalidInput("Credits paying an invoice line are the customer's, or one of its offices' or users'.",
                           code="credits_not_of_customer", field="context")
    ct = credit_types.credit_type_by_code(session, invoice.workspace_id, data.credit_type)
    amount = Decimal(milli).scaleb(-3).scaleb(ct.scale)
    if amount != amount.to_integral_value():
        raise InvalidInput(f"Credits of {ct.code} have {ct.scale} decimals: {quantity_text(milli)} units cannot be "
                           "counted in them.", code="invalid_credit_quantity", field="quantity")
    ctx = burn.resolve_context(session, invoice.workspace_id, data.context.kind, data.context.id)
    if ctx.customer_id != invoice.customer_id:
        raise InvalidInput("Only credits of the invoice's customer (its own, its offices' or its users') pay its "
                           "lines.", code="credits_not_of_customer", field="context")
    before = _snapshot(session, invoice)
    consumption = consumptions.consume(session, credit_schemas.ConsumeRequest(
        context=credit_schemas.Context(kind=data.context.kind, id=data.context.id), credit_type=ct.code,
        amount=int(amount), product_code=line.product_code,
        reference=credit_schemas.ReferenceIn(kind=LINE_REFERENCE, id=line.id)), actor=actor)
    line.consumption_id = consumption.id
    line.credit_quantity_milli = milli
    line.updated_at = clock.now()
    _price_line(session, invoice, line)
    _total(session, invoice)
    session.flush()
    audit.record(session, actor=actor, action="invoice.line_credits", object_type="invoice", object_id=invoice.id,
                 before=before, after=_snapshot(session, invoice))
    return invoice


def remove_line_credits(session: Session, invoice_id: str, line_id: str, *, actor: Actor) -> Invoice:
    invoice = _draft(session, actor, invoice_id, "change invoices")
    line = _line(session, invoice, line_id)
    if not line.consumption_id:
        raise Conflict("This line is not paid with credits.", code="line_not_paid_with_credits")
    before = _snapshot(session, invoice)
    _reverse_line_credits(session, line, actor=actor, reason=f"credits taken off invoice line {line.id}")
    _price_line(session, invoice, line)
    _total(session, invoice)
    session.flush()
    audit.record(session, actor=actor, action="invoice.line_credits_remove", object_type="invoice",
                 object_id=invoice.id, before=before, after=_snapshot(session, invoice))
    return invoice


# --- post and void ---

def _add_note(invoice: Invoice, text: str) -> None:
    invoice.notes = f"{invoice.notes}\n{text}" if invoice.notes else text

def post_invoice(session: Session, invoice_id: str, *, actor: Actor, charge_first: bool = True,
                 paid_at_once: bool = False) -> Invoice:
    """Post a draft: numbered, on the account, its packages and assets made once settled. Over the credit limit
    with a preference opted in for purchases, that preference pays first (billing.payment_preferences): a
    wallet at once; a card after the commit, the invoice staying a draft until the charge succeeds (see
    payment_preferences.pending_charge). `charge_first=False` is the charge's own completion.
    `paid_at_once=True` (billing.payments.mark_paid on a draft): the caller records a payment of everything due
    in the same transaction, so no debt ever exists and the credit limit is not checked (a cash sale to a
    customer at their limit); a terminated account is still refused. Group-funded lines billed to the parent
    are posted on their own, with the parent's credit check."""
    invoice = _draft(session, actor, invoice_id, "post invoices")
    # Group accounts (billing.groups): a member's funded lines are billed to its parent, posted first.
    member_account_id = invoice.account_id
    funded = groups.bill_funded_lines(session, invoice, actor=actor)
    if funded is not None:
        funded = post_invoice(session, funded.id, actor=actor)
        parent = session.get(BillingAccount, funded.account_id)
        # Said on the member's invoice (its page and PDF), so nobody wonders where the lines went.
        _add_note(invoice, f"Lines funded by the group are billed to the parent account {parent.number} on "
                           f"invoice {funded.number or '(draft: a card charge is pending)'}.")
    elif invoice.account_id != member_account_id:
        member = session.get(BillingAccount, member_account_id)
        _add_note(invoice, f"Charges of member account {member.number}, funded by its group: billed to the parent "
                           "account.")
    lines = lines_of(session, invoice.id)
    if not lines:
        raise Conflict("An invoice without lines cannot be posted.", code="invoice_empty")
    # The account row locked (PostgreSQL): its balance cannot move between the credit check and the posting.
    account = accounts.get_account(session, invoice.workspace_id, invoice.account_id, for_update=True)
    before = _snapshot(session, invoice)
    for line in lines:  # the rates in force on the issue date, read once more and then frozen
        _price_line(session, invoice, line)
    _total(session, invoice)
    paid_first = None
    if charge_first and not paid_at_once:
        from creditdesk.billing import payment_preferences  # it reads wallets and payments, which read invoices

        paid_first = payment_preferences.charge_first(session, account, "invoice_post", invoice.total,
                                                      invoice=invoice, actor=actor)
        if paid_first is not None and paid_first.charge is not None:
            session.flush()
            return invoice  # a card is charged after the commit; the invoice posts when the charge succeeds
    # Credit control (seed 004): posting is a fund-using event. A terminated account, or a limit the invoice
    # would exceed, refuses it, unless an override rule lets it through (audited by the check).
    # Paid at once, nothing is owed at any moment: the limit is about debt, so it does not apply.
    if paid_at_once:
        if account.status == "terminated":
            raise Conflict("The account is terminated: nothing more is posted to it.", code="account_terminated")
    else:
        credit_control.check_invoice_post(session, account, invoice.total, actor=actor,
                                          reference=Reference(kind="invoice", id=invoice.id))
    invoice.due_date = accounts.due_date(account, invoice.issue_date)
    # The settings row is the lock of the workspace's numbers: taken here, held to the commit; whatever
    # fails after this point rolls the number back with everything else, so numbers have no gaps.
    settings = require_settings(session, invoice.workspace_id, for_update=True)
    invoice.number = format_number(settings.next_invoice_number)
    settings.next_invoice_number += 1
    now = clock.now()
    invoice.status, invoice.posted_at, invoice.updated_at = "posted", now, now
    ref = Reference(kind="invoice", id=invoice.id)
    if invoice.subtotal > 0:
        postings.post_account_entry(session, account, invoice.subtotal, "debit", "invoice", ref,
                                    counterpart="revenue", actor_id=actor.user_id)
    if invoice.tax_total > 0:
        postings.post_account_entry(session, account, invoice.tax_total, "debit", "invoice_tax", ref,
                                    counterpart="tax", actor_id=actor.user_id)
    webhooks.emit(session, invoice.workspace_id, "invoice.posted", lambda: webhooks.invoice_data(invoice))
    settle_if_paid(invoice, now, session=session, actor=actor)  # invoice.paid, when nothing is due
    from creditdesk.billing import assets  # physical goods bought become the account's assets (seed 004)

    assets.acquire_for_posted_invoice(session, invoice, actor=actor)
    if paid_first is not None:
        payment_preferences.allocate_paid_first(session, paid_first, invoice, actor=actor)
    session.flush()
    after = _snapshot(session, invoice)
    if paid_at_once:
        after["credit_limit_check"] = "not applied: posted and paid at once"
    audit.record(session, actor=actor, action="invoice.post", object_type="invoice", object_id=invoice.id,
                 before=before, after=after)
    return invoice


def settle_if_paid(invoice: Invoice, now, *, session: Session | None = None, actor: Actor | None = None) -> None:
    """Settle an invoice with nothing left due. Settling is the moment its credit packages are paid for:
    their packs are granted then (billing.packages), in the same transaction."""
    if invoice.status == "posted" and invoice.amount_due == 0:
        invoice.status, invoice.settled_at = "settled", now
        if session is not None and actor is not None:
            from creditdesk.billing import packages  # packages reads invoices: imported when first needed

            packages.grant_for_settled_invoice(session, invoice, actor=actor)
        if session is not None:
            webhooks.emit(session, invoice.workspace_id, "invoice.paid", lambda: webhooks.invoice_data(invoice))


def void_invoice(session: Session, invoice_id: str, *, actor: Actor) -> Invoice:
    """Cancel a draft (it never gets a number); credits paying its lines go back to their packs."""
    invoice = _draft(session, actor, invoice_id, "void invoices")
    before = _snapshot(session, invoice)
    for line in lines_of(session, invoice.id):
        if line.consumption_id:
            consumption_id = line.consumption_id
            _reverse_line_credits(session, line, actor=actor, reason=f"invoice {invoice.id} voided")
            # The line keeps naming the consumption that paid it (now reversed), for the record.
            line.consumption_id = consumption_id
    now = clock.now()
    invoice.status, invoice.voided_at, invoice.updated_at = "void", now, now
    session.flush()
    audit.record(session, actor=actor, action="invoice.void", object_type="invoice", object_id=invoice.id,
                 before=before, after=_snapshot(session, invoice))
    return invoice


# --- reads ---

def list_invoices(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
                  status: str | Sequence[str] | None = None, account_id: str | None = None,
                  customer_id: str | None = None, due_before: date | None = None, due_after: date | None = None,
                  overdue: bool | None = None, bills_only: bool = False, subscription_id: str | None = None,
                  period_on: date | None = None) -> Page[Invoice]:
    """Newest first. `due_before`/`due_after` are inclusive; `overdue`: posted, not settled, past due.
    `bills_only`: invoices of subscriptions (bills); `period_on`: bills whose period covers that day."""
    stmt = _filtered(actor.workspace_id, status=status, account_id=account_id, customer_id=customer_id,
                     due_before=due_before, due_after=due_after, overdue=overdue)
    if bills_only:
        stmt = stmt.where(Invoice.subscription_id.is_not(None))
    if subscription_id:
        stmt = stmt.where(Invoice.subscription_id == subscription_id)
    if period_on:
        stmt = stmt.where(Invoice.period_start <= period_on, Invoice.period_end > period_on)
    return paginate(session, stmt, id_column=Invoice.id, limit=limit, cursor=cursor, descending=True)


def _overdue_clause(today: date):
    return (Invoice.status == OPEN) & (Invoice.due_date < today) & (Invoice.amount_due > 0)


def is_overdue(invoice: Invoice, today: date | None = None) -> bool:
    today = today or clock.now().date()
    return invoice.status == OPEN and invoice.amount_due > 0 and invoice.due_date < today


def line_out(line: InvoiceLine) -> s.LineOut:
    credited = None
    if line.credit_quantity_milli or line.consumption_id:
        credited = s.LineCreditsOut(quantity=quantity_text(line.credit_quantity_milli), value=line.credits_value,
                                    consumption_id=line.consumption_id)
    return s.LineOut(id=line.id, position=line.position, product_id=line.product_id, product_code=line.product_code,
                     description=line.description, quantity=quantity_text(line.quantity_milli),
                     unit_price=line.unit_price,
                     discount=s.DiscountOut(kind=line.discount_kind, value=line.discount_value)
                     if line.discount_kind else None, tax_rate_bp=line.tax_rate_bp, tax_inclusive=line.tax_inclusive,
                     net=line.net, tax=line.tax, gross=line.gross, discount_amount=line.discount_amount,
                     credits=credited)


def package_purchases(session: Session, invoice: Invoice) -> list[dict]:
    """What the invoice's credit package lines buy, for its page: each line with its product, whether it makes
    a pack at all (a governed type, SMS, makes none: billing.packages) and the pack it made (None until the
    invoice is settled, or when a credit note took the line back before)."""
    from creditdesk.billing import packages  # packages reads invoices: imported when first needed
    from creditdesk.credits import governance
    from creditdesk.credits.models import CreditType

    rows = session.execute(select(InvoiceLine, Product).join(Product, Product.id == InvoiceLine.product_id)
                           .where(InvoiceLine.invoice_id == invoice.id, Product.kind == "credit_package")
                           .order_by(InvoiceLine.position, InvoiceLine.id)).tuples().all()
    if not rows:
        return []
    made = {pack.external_ref: pack for pack in packages.packs_of_invoice(session, invoice)}
    out = []
    for line, product in rows:
        ct = session.get(CreditType, product.credit_type_id) if product.credit_type_id else None
        out.append({"line": line, "product": product, "makes_pack": ct is not None and not governance.is_governed(ct),
                    "pack": made.get(line.id)})
    return out


def _pending_charge_id(session: Session, invoice: Invoice) -> str | None:
    if invoice.status != "draft":
        return None
    from creditdesk.billing import payment_preferences

    charge = payment_preferences.pending_charge(session, invoice.id)
    return charge.id if charge is not None else None


def invoice_out(session: Session, invoice: Invoice) -> s.InvoiceOut:
    return s.InvoiceOut(
        id=invoice.id, number=invoice.number, status=invoice.status, account_id=invoice.account_id,
        customer_id=invoice.customer_id, currency=invoice.currency, price_plan_id=invoice.price_plan_id,
        issue_date=invoice.issue_date, due_date=invoice.due_date, overdue=is_overdue(invoice), notes=invoice.notes,
        subtotal=invoice.subtotal, tax_total=invoice.tax_total, total=invoice.total,
        credits_value=invoice.credits_value, amount_paid=invoice.amount_paid, amount_credited=invoice.amount_credited,
        amount_written_off=invoice.amount_written_off, amount_due=invoice.amount_due, lines=[line_out(line) for line in lines_of(session, invoice.id)],
        subscription_id=invoice.subscription_id, period_start=invoice.period_start, period_end=invoice.period_end,
        pending_charge_id=_pending_charge_id(session, invoice), posted_at=clock.aware(invoice.posted_at), settled_at=clock.aware(invoice.settled_at),
        voided_at=clock.aware(invoice.voided_at), created_at=clock.aware(invoice.created_at),
        updated_at=clock.aware(invoice.updated_at))


# --- outstanding (seed 004): posted invoices past due, not settled ---

def invoices_outstanding(session: Session, account: BillingAccount, on_date: date) -> int:
    """What the account's posted invoices due before `on_date` still have due."""
    return int(session.scalar(select(func.coalesce(func.sum(Invoice.amount_due), 0)).where(
        Invoice.account_id == account.id, Invoice.status == OPEN, Invoice.due_date < on_date)) or 0)


accounts.register_outstanding_source(invoices_outstanding)


def draft_invoices(session: Session, account: BillingAccount) -> int:
    """The account's drafts: transactions not yet posted, so the account cannot be terminated."""
    return session.scalar(select(func.count()).select_from(Invoice).where(
        Invoice.workspace_id == account.workspace_id, Invoice.account_id == account.id, Invoice.status == "draft"))


lifecycle.register_pending_source(draft_invoices)


def money(amount: int, currency: str) -> str:
    """Minor units as text for documents and exports: 123456 AUD -> "1,234.56"."""
    return f"{currencies.to_major(amount, currency):,}"


# --- export ---

EXPORT_COLUMNS = ["number", "id", "status", "account_number", "customer_id", "currency", "issue_date", "due_date",
                  "subtotal", "tax_total", "total", "credits_value", "amount_paid", "amount_credited", "amount_written_off",
                  "amount_due", "overdue", "posted_at"]


def count_invoices(session: Session, *, actor: Actor, **filters) -> int:
    query = _filtered(actor.workspace_id, **filters)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _filtered(workspace_id: str, *, status=None, account_id=None, customer_id=None, due_before=None, due_after=None,
              overdue=None):
    stmt = select(Invoice).where(Invoice.workspace_id == workspace_id)
    if status:
        stmt = stmt.where(one_of(Invoice.status, status))
    for column, value in ((Invoice.account_id, account_id), (Invoice.customer_id, customer_id)):
        if value:
            stmt = stmt.where(column == value)
    if due_before:
        stmt = stmt.where(Invoice.due_date <= due_before)
    if due_after:
        stmt = stmt.where(Invoice.due_date >= due_after)
    if overdue is not None:
        past = _overdue_clause(clock.now().date())
        stmt = stmt.where(past if overdue else ~past)
    return stmt


def export_rows(session: Session, *, actor: Actor, **filters):
    """Every matching invoice as a CSV row (amounts in major units), oldest first, read a page at a time."""
    from creditdesk import csvexport

    numbers = dict(session.execute(select(BillingAccount.id, BillingAccount.number)
                                   .where(BillingAccount.workspace_id == actor.workspace_id)).tuples().all())
    today = clock.now().date()
    stmt = _filtered(actor.workspace_id, **filters).order_by(Invoice.id).execution_options(yield_per=500)
    for inv in session.scalars(stmt):
        scale = currencies.minor_units(inv.currency)
        yield [inv.number, inv.id, inv.status, numbers.get(inv.account_id), inv.customer_id, inv.currency,
               inv.issue_date.isoformat(), inv.due_date.isoformat(),
               *(csvexport.amount(v, scale) for v in (inv.subtotal, inv.tax_total, inv.total, inv.credits_value,
                                                      inv.amount_paid, inv.amount_credited, inv.amount_written_off,
                                                      inv.amount_due)),
               "yes" if is_overdue(inv, today) else "no",
               clock.aware(inv.posted_at).isoformat() if inv.posted_at else None]
