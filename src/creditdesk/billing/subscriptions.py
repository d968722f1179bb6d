"""Subscriptions (seed 002): an account's recurring services, billed per period, in advance.

**Periods.** A subscription's periods start on its billing day (1-28) every 1, 3 or 12 months (monthly,
quarterly, yearly), counted from the first billing day on or after the day it was activated. The days before
that first billing day are a partial period. A period is due on the day it starts.

**Proration, by days.** A service billed for part of a period (it started, ended or resumed inside it, or
the period is the partial first one) is charged its per-period price (unit price x quantity) x the days it ran /
the days of the full aligned period containing them (31 for 1-31 December), rounded half up to the minor unit
once per line (`BillLine`: 2 x 499.00 for 11/30 days is 365.93, not 2 x 182.97).

**Billing** (`bill`, `preview_bill`): everything due as of a day: for each service, the periods from its own
`billed_through` (or its start) whose start is on or before that day. One bill (an invoice with the
subscription, its period and a line per service and period) is created and posted (credit control applies,
and an opted-in preference pays first), and the services' `billed_through` move past what it covers, in
one transaction: billing again as of the same day bills nothing. `preview_bill` computes the same bill
and writes nothing at all.

**Actions.** activate (a fund-using event: refused over the credit limit unless an override rule matches, and
on a suspended account), add a service (also fund-using), remove a service (the seed's Remove Services, action
type remove, from an effective day: the first day without it; days of it already billed from that day are
credited at once by a credit note on their bill, prorated like a bill), change a quantity (from the next
period not yet billed), suspend (nothing is billed while suspended) and resume (billing starts again from
the resume day), terminate (its services' billed days from then on credited the same way). Every action is
audited with before and after. A subscription is created only for an active account (seed 004: a suspended
account takes no new subscriptions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts, credit_control, groups, invoices
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing import subscription_schemas as s
from creditdesk.billing.invoice_models import Invoice, InvoiceLine
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.settings import require_settings
from creditdesk.billing.subscription_models import FREQUENCIES, Subscription, SubscriptionService
from creditdesk.catalog import service as catalog
from creditdesk.catalog.models import Product
from creditdesk.errors import Conflict, InvalidInput, NotFound
from creditdesk.ids import new_id
from creditdesk.pagination import Page, paginate

MAX_PERIODS_PER_BILL = 240  # twenty years of months: a bill as of a day far ahead is refused, not looped over


# --- periods -----------------------------------------------------------------------------------------------

def add_months(day: date, months: int) -> date:
    """The same day `months` later (billing days are 1-28, so every month has it)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, day.day)


def first_aligned(started_on: date, billing_day: int) -> date:
    """The first billing day on or after the day the subscription started."""
    first = date(started_on.year, started_on.month, billing_day)
    return first if first >= started_on else add_months(first, 1)


@dataclass(frozen=True)
class Piece:
    """Days of one period a service is billed for: [start, end) of the full aligned period [full_start, full_end)."""
    start: date
    end: date
    full_start: date
    full_end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def period_days(self) -> int:
        return (self.full_end - self.full_start).days


def pieces(sub: Subscription, svc: SubscriptionService, as_of: date) -> list[Piece]:
    """The service's unbilled periods (or parts of them) due as of `as_of`, in order."""
    step = FREQUENCIES[sub.frequency]
    start = max(svc.billed_through or svc.start_on, svc.start_on)
    if svc.end_on is not None and start >= svc.end_on:
        return []
    aligned = first_aligned(sub.started_on, sub.billing_day)
    full_start = add_months(aligned, -step)
    while add_months(full_start, step) <= start:
        full_start = add_months(full_start, step)
    out: list[Piece] = []
    while start <= as_of:
        full_end = add_months(full_start, step)
        end = min(full_end, svc.end_on) if svc.end_on is not None else full_end
        if end > start:
            out.append(Piece(start, end, full_start, full_end))
        if len(out) > MAX_PERIODS_PER_BILL:
            raise InvalidInput(f"Billing as of {as_of} would bill more than {MAX_PERIODS_PER_BILL} periods at once; "
                               "bill an earlier day first.", code="too_many_periods", field="as_of")
        if svc.end_on is not None and end >= svc.end_on:
            break
        start, full_start = full_end, full_end
    return out


def prorated(period_price: int, piece: Piece) -> int:
    """`period_price` (a line's whole price for a full period: unit price x quantity) for the piece's days,
    rounded half up once."""
    if piece.days == piece.period_days:
        return period_price
    return currencies.round_half_up(Decimal(period_price) * piece.days / piece.period_days)


@dataclass(frozen=True)
class BillLine:
    """One bill line: a service for one piece of a period, as the invoice line it becomes.

    A full period is billed as the service's quantity x its unit price. A piece of a period is billed as one
    line whose money is rounded once: quantity x unit price x days / period days (2 x 499.00 for 11 of 30 days
    is 365.93, never 2 x 182.97). So that line is quantity 1 at that amount, the service's quantity in its
    description ("Support x 2, ..."). Except for a service paid with credits: a credit pays one unit, so its
    lines keep the quantity and a unit's prorated price."""
    service: object  # SubscriptionService, or a row of bill_engine.SERVICE_COLUMNS
    product: Product
    piece: Piece
    quantity: int
    unit_price: int

    @property
    def description(self) -> str:
        return _line_description(self.product, self.piece, 1 if self.quantity == self.service.quantity
                                 else self.service.quantity)


def bill_line(svc, product: Product, piece: Piece, unit: int) -> BillLine:
    """The line billing `svc` (priced `unit` per period) for `piece` (see BillLine)."""
    if piece.days == piece.period_days or svc.pay_with_credits:
        return BillLine(svc, product, piece, svc.quantity, prorated(unit, piece))
    return BillLine(svc, product, piece, 1, prorated(unit * svc.quantity, piece))


def _next_due(svc: SubscriptionService) -> date | None:
    nxt = svc.billed_through or svc.start_on
    return None if svc.end_on is not None and nxt >= svc.end_on else nxt


def _refresh_due(session: Session, sub: Subscription) -> None:
    dues = [d for d in (_next_due(svc) for svc in services_of(session, sub.id)) if d is not None]
    sub.billed_through = min(dues) if dues and sub.status == "active" else None


# --- reads -------------------------------------------------------------------------------------------------

def get_subscription(session: Session, workspace_id: str, subscription_id: str, *,
                     for_update: bool = False) -> Subscription:
    sub = session.scalar(select(Subscription).where(Subscription.workspace_id == workspace_id,
                                                    (Subscription.id == subscription_id)
                                                    | (Subscription.number == subscription_id)))
    if sub is None:
        raise NotFound(f"No subscription {subscription_id!r} in this workspace.", object_id=subscription_id)
    if for_update:
        session.refresh(sub, with_for_update=True)
    return sub


def services_of(session: Session, subscription_id: str) -> list[SubscriptionService]:
    return list(session.scalars(select(SubscriptionService).where(
        SubscriptionService.subscription_id == subscription_id).order_by(SubscriptionService.created_at,
                                                                         SubscriptionService.id)))


def list_subscriptions(session: Session, *, actor: Actor, account_id: str | None = None,
                       customer_id: str | None = None, status: list[str] | None = None, limit: int | None = None,
                       cursor: str | None = None) -> Page[Subscription]:
    stmt = select(Subscription).where(Subscription.workspace_id == actor.workspace_id)
    if account_id:
        stmt = stmt.where(Subscription.account_id == account_id)
    if customer_id:
        stmt = stmt.where(Subscription.customer_id == customer_id)
    if status:
        stmt = stmt.where(Subscription.status.in_(status))
    return paginate(session, stmt, id_column=Subscription.id, limit=limit, cursor=cursor, descending=True)


def next_bill_on(session: Session, sub: Subscription) -> date | None:
    return sub.billed_through if sub.status == "active" else None


def service_prices(session: Session, sub: Subscription, rows: list[SubscriptionService]
                   ) -> dict[str, tuple[int | None, str | None, str | None]]:
    """Each service's (price per period of one unit as billed now, where it comes from, its price plan): the
    agreed price, else the price plan's in the account's currency; (None, None, None) when no plan has one."""
    account = session.get(BillingAccount, sub.account_id)
    plan = groups.agreed_price_plan(session, account) if any(r.unit_price is None for r in rows) else None
    quotes: dict[str, tuple[int | None, str | None, str | None]] = {}
    out = {}
    for r in rows:
        if r.unit_price is not None:
            out[r.id] = (r.unit_price, "agreed", None)
            continue
        if r.product_id not in quotes:
            try:
                quote = catalog.price_of(session, account.workspace_id, r.product_id, account.currency, plan)
                quotes[r.product_id] = (quote.unit_price, "price_plan", quote.price_plan_id)
            except InvalidInput:
                quotes[r.product_id] = (None, None, None)
        out[r.id] = quotes[r.product_id]
    return out


def subscription_out(session: Session, sub: Subscription) -> s.SubscriptionOut:
    rows = services_of(session, sub.id)
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_({r.product_id for r in rows})))}
    prices = service_prices(session, sub, rows)
    return s.SubscriptionOut(
        id=sub.id, number=sub.number, name=sub.name, account_id=sub.account_id, customer_id=sub.customer_id,
        status=sub.status, frequency=sub.frequency, billing_day=sub.billing_day, started_on=sub.started_on,
        billed_through=sub.billed_through, next_bill_on=next_bill_on(session, sub), suspended_on=sub.suspended_on,
        terminated_on=sub.terminated_on,
        services=[s.ServiceOut(id=r.id, product_id=r.product_id, product_code=products[r.product_id].code,
                               name=products[r.product_id].name, quantity=r.quantity, unit_price=r.unit_price,
                               start_on=r.start_on, end_on=r.end_on, pay_with_credits=r.pay_with_credits,
                               removed_at=clock.aware(r.removed_at), price=prices[r.id][0],
                               price_source=prices[r.id][1], price_plan_id=prices[r.id][2])
                  for r in rows],
        created_at=clock.aware(sub.created_at), updated_at=clock.aware(sub.updated_at))


def _snapshot(session: Session, sub: Subscription) -> dict:
    return snapshot(sub, services=[snapshot(r) for r in services_of(session, sub.id)])


# --- writes ------------------------------------------------------------------------------------------------

def _writer(actor: Actor, what: str) -> None:
    invoices.require_billing_writer(actor, what)


def _today() -> date:
    return clock.now().date()


def _product(session: Session, workspace_id: str, ref: str) -> Product:
    product = catalog.get_product(session, workspace_id, ref)
    if product.kind != "subscription_service":
        raise InvalidInput(f"Product {product.code!r} is a {product.kind.replace('_', ' ')}; a subscription takes "
                           "subscription services.", code="not_a_subscription_service", field="product")
    if not product.active:
        raise InvalidInput(f"Product {product.code!r} is inactive.", code="product_inactive", field="product")
    return product


def _period_price(session: Session, account: BillingAccount, svc: SubscriptionService) -> int:
    """A service's price for one full period: its agreed price, else the price plan's (the account's pricing
    agreement, else the currency's default plan), times its quantity."""
    unit = svc.unit_price
    if unit is None:
        unit = catalog.price_of(session, account.workspace_id, svc.product_id, account.currency,
                                groups.agreed_price_plan(session, account)).unit_price
    return unit * svc.quantity


def _authorize(session: Session, account: BillingAccount, event: str, amount: int, actor: Actor,
               sub: Subscription) -> None:
    from creditdesk.ledger.batch import Reference

    credit_control.authorize_spend(session, account, event, amount, actor=actor,
                                   reference=Reference(kind="subscription", id=sub.id))


def _new_service(session: Session, sub: Subscription, data: s.ServiceIn, start_on: date) -> SubscriptionService:
    product = _product(session, sub.workspace_id, data.product)
    now = clock.now()
    svc = SubscriptionService(id=new_id("subsvc"), workspace_id=sub.workspace_id, subscription_id=sub.id,
                              product_id=product.id, quantity=data.quantity, unit_price=data.unit_price,
                              start_on=start_on, end_on=None, billed_through=None,
                              pay_with_credits=data.pay_with_credits, created_at=now, updated_at=now)
    session.add(svc)
    session.flush([svc])
    return svc


def create_subscription(session: Session, data: s.SubscriptionCreate, *, actor: Actor) -> Subscription:
    _writer(actor, "create subscriptions")
    account = accounts.get_account(session, actor.workspace_id, data.account_id, for_update=True)
    if account.status != "active":
        # Seed 004: a suspended account takes no new subscriptions, not even a draft to activate later.
        what = "reactivate it first" if account.status == "suspended" else "it is closed"
        raise Conflict(f"Account {account.number} is {account.status}: it takes no new subscriptions ({what}).",
                       code=f"account_{account.status}", field="account_id", status=account.status)
    settings = require_settings(session, actor.workspace_id, for_update=True)
    now = clock.now()
    sub = Subscription(id=new_id("sub"), workspace_id=account.workspace_id, account_id=account.id,
                       customer_id=account.customer_id, number=f"SUB-{settings.next_subscription_number:06d}",
                       name=data.name, status="draft", frequency=data.frequency, billing_day=data.billing_day,
                       created_at=now, updated_at=now)
    settings.next_subscription_number += 1
    session.add(sub)
    session.flush([sub])
    start = data.activate_on or _today()
    for n, item in enumerate(data.services):
        try:
            _new_service(session, sub, item, max(item.start_on or start, start))
        except InvalidInput as exc:
            exc.details.setdefault("service", n)
            raise
    audit.record(session, actor=actor, action="subscription.create", object_type="subscription", object_id=sub.id,
                 after=_snapshot(session, sub))
    if data.activate_on is not None:
        activate(session, sub.id, s.Activate(on=data.activate_on), actor=actor)
    return sub


def _locked(session: Session, actor: Actor, subscription_id: str, what: str) -> tuple[Subscription, BillingAccount]:
    _writer(actor, what)
    sub = get_subscription(session, actor.workspace_id, subscription_id)
    account = accounts.get_account(session, actor.workspace_id, sub.account_id, for_update=True)
    session.refresh(sub, with_for_update=True)
    return sub, account


def _status(sub: Subscription, allowed: tuple[str, ...], what: str) -> None:
    if sub.status not in allowed:
        raise Conflict(f"Subscription {sub.number} is {sub.status}: it cannot {what}.",
                       code=f"subscription_{sub.status}", status=sub.status)


def _record(session: Session, actor: Actor, action: str, sub: Subscription, before: dict, **extra) -> None:
    sub.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action=f"subscription.{action}", object_type="subscription",
                 object_id=sub.id, before=before, after=_snapshot(session, sub) | extra)


def activate(session: Session, subscription_id: str, data: s.Activate, *, actor: Actor) -> Subscription:
    sub, account = _locked(session, actor, subscription_id, "activate subscriptions")
    _status(sub, ("draft",), "be activated")
    rows = services_of(session, sub.id)
    if not rows:
        raise Conflict(f"Subscription {sub.number} has no services: add one first.", code="subscription_empty")
    on = data.on or _today()
    before = _snapshot(session, sub)
    _authorize(session, account, "subscription_activate", sum(_period_price(session, account, r) for r in rows),
               actor, sub)
    sub.status, sub.started_on = "active", on
    for r in rows:
        r.start_on = max(r.start_on, on)
    _refresh_due(session, sub)
    _record(session, actor, "activate", sub, before)
    return sub


def add_service(session: Session, subscription_id: str, data: s.ServiceIn, *, actor: Actor) -> Subscription:
    sub, account = _locked(session, actor, subscription_id, "change subscriptions")
    _status(sub, ("draft", "active"), "take services")
    before = _snapshot(session, sub)
    start = data.start_on or max(_today(), sub.started_on or _today())
    if sub.started_on is not None and start < sub.started_on:
        raise InvalidInput(f"The service cannot start before the subscription ({sub.started_on}).",
                           code="start_before_subscription", field="start_on")
    svc = _new_service(session, sub, data, start)
    if sub.status == "active":
        _authorize(session, account, "service_add", _period_price(session, account, svc), actor, sub)
        _refresh_due(session, sub)
    _record(session, actor, "service_add", sub, before, service_id=svc.id)
    return sub


def _service(session: Session, sub: Subscription, service_id: str) -> SubscriptionService:
    svc = session.get(SubscriptionService, service_id)
    if svc is None or svc.subscription_id != sub.id:
        raise NotFound(f"Subscription {sub.number} has no service {service_id!r}.", object_id=service_id)
    return svc


# "Fibre 100 × 2, 2027-01-20 to 2027-01-31 (12/31 days)": the days a bill line billed (_line_description).
_LINE_DAYS = re.compile(r", (\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2})(?: \(\d+/\d+ days\))?$")


def _billed_days(line: InvoiceLine) -> tuple[date, date] | None:
    """[first day, first day after) a bill line billed, read from its description."""
    found = _LINE_DAYS.search(line.description or "")
    if found is None:
        return None
    return date.fromisoformat(found.group(1)), date.fromisoformat(found.group(2)) + timedelta(days=1)


def _billed_lines(session: Session, sub: Subscription, svc: SubscriptionService,
                  since: date) -> list[tuple[Invoice, InvoiceLine, date, date]]:
    """The posted bill lines of `svc` with days on or after `since`: (bill, line, first day, day after).

    A bill line does not name its service, only its product and days. Lines of one bill for the same
    product and days come from services of that product billed for those days, in the order `plan_bill`
    takes services (`services_of`): the k-th such line is the k-th such service's."""
    same = [r for r in services_of(session, sub.id) if r.product_id == svc.product_id]
    bills = session.scalars(select(Invoice).where(
        Invoice.workspace_id == sub.workspace_id, Invoice.subscription_id == sub.id,
        Invoice.status.in_(("posted", "settled")), Invoice.period_end > since).order_by(Invoice.id))
    out = []
    for invoice in bills:
        by_days: dict[tuple[date, date], list[InvoiceLine]] = {}
        for line in invoices.lines_of(session, invoice.id):
            days = _billed_days(line) if line.product_id == svc.product_id else None
            if days is not None and days[1] > since:
                by_days.setdefault(days, []).append(line)
        for (first, after), lines in by_days.items():
            billed = [r for r in same if r.start_on <= first and (r.billed_through or r.start_on) >= after]
            if svc in billed and billed.index(svc) < len(lines):
                out.append((invoice, lines[billed.index(svc)], first, after))
    return out


def _credit_unused(session: Session, sub: Subscription, ends: list[tuple[SubscriptionService, date]], *,
                   actor: Actor, why: str) -> list:
    """Credit notes for the days each service of `ends` was billed for from its day: each of its lines billed
    for days on or after that day is credited its amount x the days not used / the days it billed, rounded half
    up once (what was billed, prorated like a bill: the price, quantity and tax of the bill, not today's, which
    may have changed since); one credit note per bill, through credit_notes.create_credit_note (numbered, posted
    to the ledger, audited)."""
    from creditdesk.billing import credit_notes
    from creditdesk.billing.invoice_models import CreditNote

    by_bill: dict[str, list[ins.CreditNoteLineIn]] = {}
    billed = [(svc, since, found) for svc, since in ends
              if svc.billed_through is not None and since < svc.billed_through
              for found in _billed_lines(session, sub, svc, since)]
    for _svc, since, (invoice, line, first, after) in billed:
        unused = (after - max(since, first)).days
        amount = currencies.round_half_up(Decimal(line.gross) * unused / (after - first).days)
        credited = sum(item["amount"] for note in session.scalars(select(CreditNote).where(
            CreditNote.invoice_id == invoice.id)) for item in (note.lines or []) if item["line_id"] == line.id)
        # Never more than the line has left, nor than the bill can take back (a written-off part stays so).
        taken = sum(item.amount for item in by_bill.get(invoice.id, []))
        amount = min(amount, line.gross - credited, credit_notes.creditable(invoice) - taken)
        if amount > 0:
            by_bill.setdefault(invoice.id, []).append(ins.CreditNoteLineIn(line_id=line.id, amount=amount))
    return [credit_notes.create_credit_note(session, invoice_id, ins.CreditNoteCreate(lines=lines, reason=why),
                                            actor=actor)
            for invoice_id, lines in by_bill.items()]


def _end_services(session: Session, sub: Subscription, services: list[SubscriptionService], on: date, *,
                  actor: Actor, why: str) -> list:
    """End the services from `on` (the first day without them; not before each one's start). Days already billed
    from then on are credited (`_credit_unused`), one credit note per bill: removing a service inside a billed
    period does not leave anyone to compute a credit note by hand. Returns the credit notes."""
    ends = [(svc, max(on, svc.start_on)) for svc in services]
    notes = _credit_unused(session, sub, ends, actor=actor, why=why)
    now = clock.now()
    for svc, end in ends:
        svc.end_on, svc.removed_at, svc.updated_at = end, now, now
    return notes


def remove_service(session: Session, subscription_id: str, data: s.ServiceRemove, *, actor: Actor) -> Subscription:
    return remove_service_credited(session, subscription_id, data, actor=actor)[0]


def remove_service_credited(session: Session, subscription_id: str, data: s.ServiceRemove, *,
                            actor: Actor) -> tuple[Subscription, list]:
    """The seed's Remove Services: the service, action type remove, an effective day (the first day without
    it; default today). From a day inside a period already billed, the unused days billed are credited at once
    (`_end_services`), in the same transaction. Returns the subscription and those credit notes."""
    sub, _ = _locked(session, actor, subscription_id, "change subscriptions")
    _status(sub, ("draft", "active", "suspended"), "have services removed")
    svc = _service(session, sub, data.service_id)
    if svc.removed_at is not None:
        raise Conflict("This service is already removed.", code="service_removed")
    before = _snapshot(session, sub)
    product = session.get(Product, svc.product_id)
    on = data.effective_on or _today()
    notes = _end_services(session, sub, [svc], on, actor=actor,
                          why=f"{product.name} removed from {max(on, svc.start_on)} ({sub.number}): days not used")
    _refresh_due(session, sub)
    _record(session, actor, "service_remove", sub, before, service_id=svc.id,
            credit_notes=[{"id": n.id, "number": n.number, "amount": n.amount} for n in notes])
    return sub, notes


def change_quantity(session: Session, subscription_id: str, data: s.QuantityChange, *,
                    actor: Actor) -> Subscription:
    """The new quantity is billed from the next period not yet billed (a billed period keeps its bill)."""
    sub, account = _locked(session, actor, subscription_id, "change subscriptions")
    _status(sub, ("draft", "active"), "change quantities")
    svc = _service(session, sub, data.service_id)
    if svc.removed_at is not None:
        raise Conflict("This service is removed.", code="service_removed")
    before = _snapshot(session, sub)
    if sub.status == "active" and data.quantity > svc.quantity:
        unit = _period_price(session, account, svc) // svc.quantity
        _authorize(session, account, "service_add", unit * (data.quantity - svc.quantity), actor, sub)
    svc.quantity, svc.updated_at = data.quantity, clock.now()
    _record(session, actor, "quantity_change", sub, before, service_id=svc.id)
    return sub


def suspend(session: Session, subscription_id: str, data: s.DatedAction, *, actor: Actor) -> Subscription:
    sub, _ = _locked(session, actor, subscription_id, "suspend subscriptions")
    _status(sub, ("active",), "be suspended")
    before = _snapshot(session, sub)
    sub.status, sub.suspended_on = "suspended", data.on or _today()
    _refresh_due(session, sub)
    _record(session, actor, "suspend", sub, before, note=data.note)
    return sub


def resume(session: Session, subscription_id: str, data: s.DatedAction, *, actor: Actor) -> Subscription:
    """Billing starts again from the resume day: the days suspended are not billed (unless billed before)."""
    sub, account = _locked(session, actor, subscription_id, "resume subscriptions")
    _status(sub, ("suspended",), "be resumed")
    if account.status != "active":
        raise Conflict(f"Account {account.number} is {account.status}: reactivate it first.",
                       code=f"account_{account.status}")
    on = data.on or _today()
    if sub.suspended_on is not None and on < sub.suspended_on:
        raise InvalidInput("A subscription resumes on or after the day it was suspended.", code="resume_before_suspend",
                           field="on")
    before = _snapshot(session, sub)
    for svc in services_of(session, sub.id):
        if svc.removed_at is None:
            svc.billed_through = max(svc.billed_through or svc.start_on, on)
    sub.status, sub.suspended_on = "active", None
    _refresh_due(session, sub)
    _record(session, actor, "resume", sub, before, note=data.note)
    return sub


def terminate(session: Session, subscription_id: str, data: s.DatedAction, *, actor: Actor) -> Subscription:
    sub, _ = _locked(session, actor, subscription_id, "terminate subscriptions")
    _status(sub, ("draft", "active", "suspended"), "be terminated")
    on = data.on or _today()
    before = _snapshot(session, sub)
    notes = _end_services(session, sub, [svc for svc in services_of(session, sub.id) if svc.removed_at is None], on,
                          actor=actor, why=f"{sub.number} terminated from {on}: days not used")
    sub.status, sub.terminated_on, sub.billed_through = "terminated", on, None
    _record(session, actor, "terminate", sub, before, note=data.note,
            credit_notes=[{"id": n.id, "number": n.number, "amount": n.amount} for n in notes])
    return sub


# --- bills -------------------------------------------------------------------------------------------------

@dataclass
class BillPlan:
    subscription: Subscription
    account: BillingAccount
    as_of: date
    lines: list[BillLine]
    billed_through: dict[str, date]  # service id -> its new billed_through

    @property
    def period(self) -> tuple[date | None, date | None]:
        if not self.lines:
            return None, None
        return min(line.piece.start for line in self.lines), max(line.piece.end for line in self.lines)


def plan_bill(session: Session, sub: Subscription, account: BillingAccount, as_of: date) -> BillPlan:
    """What billing `sub` as of `as_of` would bill (reads only)."""
    plan = BillPlan(sub, account, as_of, [], {})
    if sub.status != "active":
        return plan
    products: dict[str, Product] = {}
    agreed = groups.agreed_price_plan(session, account)
    for svc in services_of(session, sub.id):
        found = pieces(sub, svc, as_of)
        if not found:
            continue
        product = products.get(svc.product_id) or session.get(Product, svc.product_id)
        products[svc.product_id] = product
        unit = svc.unit_price if svc.unit_price is not None else catalog.price_of(
            session, account.workspace_id, product.id, account.currency, agreed).unit_price
        plan.lines += [bill_line(svc, product, piece, unit) for piece in found]
        plan.billed_through[svc.id] = found[-1].end
    return plan


def _line_description(product: Product, piece: Piece, quantity: int = 1) -> str:
    """"Fibre 100, 2027-01-01 to 2027-01-31", with the days billed of the period when it is a piece of it, and the
    service's quantity when the line's is not it (a prorated line: BillLine). `_billed_days` reads it back."""
    last = date.fromordinal(piece.end.toordinal() - 1)
    name = product.name if quantity == 1 else f"{product.name} × {quantity}"
    text = f"{name}, {piece.start.isoformat()} to {last.isoformat()}"
    return text if piece.days == piece.period_days else f"{text} ({piece.days}/{piece.period_days} days)"


def _lines_in(plan: BillPlan) -> list[ins.LineCreate]:
    return [ins.LineCreate(product=line.product.id, description=line.description, quantity=line.quantity,
                           unit_price=line.unit_price) for line in plan.lines]


def preview_bill(session: Session, subscription_id: str, data: s.BillAsOf, *, actor: Actor) -> s.BillPreviewOut:
    """The bill `bill` would make as of that day, priced and taxed as it would be; writes nothing at all."""
    sub = get_subscription(session, actor.workspace_id, subscription_id)
    account = session.get(BillingAccount, sub.account_id)
    plan = plan_bill(session, sub, account, data.as_of)
    start, end = plan.period
    issue = _today()
    draft = Invoice(id="preview", workspace_id=sub.workspace_id, account_id=account.id, currency=account.currency,
                    issue_date=issue, amount_paid=0, amount_credited=0)
    lines, subtotal, tax, total = [], 0, 0, 0
    for n, item in enumerate(_lines_in(plan), start=1):
        product = session.get(Product, item.product)
        line = InvoiceLine(id=f"preview-{n}", position=n, product_id=product.id, product_code=product.code,
                           description=item.description, quantity_milli=invoices.to_milli(item.quantity),
                           unit_price=item.unit_price, credit_quantity_milli=0, credits_value=0,
                           discount_kind=None, discount_value=None)
        invoices.price_line(session, draft, line, product)
        lines.append({"product_code": product.code, "description": line.description, "quantity": item.quantity,
                      "unit_price": line.unit_price, "net": line.net, "tax": line.tax, "gross": line.gross,
                      "tax_rate_bp": line.tax_rate_bp})
        subtotal, tax, total = subtotal + line.net, tax + line.tax, total + line.gross
    for obj in (draft,):  # transient: never added, but a relationship cascade must not pull it in either
        if obj in session:
            session.expunge(obj)
    return s.BillPreviewOut(subscription_id=sub.id, as_of=data.as_of, period_start=start, period_end=end,
                            currency=account.currency, lines=lines, subtotal=subtotal, tax_total=tax, total=total,
                            nothing_due=not lines)


def bill(session: Session, subscription_id: str, data: s.BillAsOf, *, actor: Actor) -> Invoice | None:
    """Bill everything due as of the day: one posted bill, or None when nothing is due (see the module)."""
    sub, account = _locked(session, actor, subscription_id, "bill subscriptions")
    if sub.status != "active":
        raise Conflict(f"Subscription {sub.number} is {sub.status}: only an active subscription is billed.",
                       code=f"subscription_{sub.status}", status=sub.status)
    return bill_locked(session, sub, account, data.as_of, actor=actor)


def bill_locked(session: Session, sub: Subscription, account: BillingAccount, as_of: date, *,
                actor: Actor) -> Invoice | None:
    """`bill` for a subscription and account the caller has locked (the billing run)."""
    plan = plan_bill(session, sub, account, as_of)
    before = _snapshot(session, sub)
    invoice = None
    if plan.lines:
        start, end = plan.period
        invoice = invoices.create_invoice(session, ins.InvoiceCreate(
            account_id=account.id, notes=f"Subscription {sub.number}", lines=_lines_in(plan)), actor=actor)
        invoice.subscription_id, invoice.period_start, invoice.period_end = sub.id, start, end
        _pay_usage_with_credits(session, invoice, plan, actor=actor)
        invoice = invoices.post_invoice(session, invoice.id, actor=actor)
    for svc in services_of(session, sub.id):
        if svc.id in plan.billed_through:
            svc.billed_through, svc.updated_at = plan.billed_through[svc.id], clock.now()
    _refresh_due(session, sub)
    if invoice is not None or plan.billed_through:
        _record(session, actor, "bill", sub, before, as_of=as_of.isoformat(),
                invoice_id=invoice.id if invoice is not None else None)
    return invoice


def _pay_usage_with_credits(session: Session, invoice: Invoice, plan: BillPlan, *, actor: Actor) -> None:
    """Lines of pay_with_credits services: as many units as the customer's own packs covering the product
    have credits for (one credit per unit, invoices.apply_line_credits), before the bill posts."""
    from creditdesk.billing import packages

    lines = invoices.lines_of(session, invoice.id)
    for line, planned in zip(lines, plan.lines):
        svc, product = planned.service, planned.product
        if not svc.pay_with_credits:
            continue
        covering = [p for p in packages.packs_covering(session, workspace_id=invoice.workspace_id,
                                                       customer_id=invoice.customer_id, product_code=product.code)
                    if p["pack"].holder_kind == "customer"]
        if not covering:
            continue
        ct, scale = covering[0]["credit_type"], covering[0]["scale"]
        units = sum(p["available"] for p in covering if p["credit_type"] == ct) // 10 ** scale
        units = min(units, line.quantity_milli // invoices.QUANTITY_SCALE)
        if units > 0:
            invoices.apply_line_credits(session, invoice.id, line.id, ins.LineCredits(
                context={"kind": "customer", "id": invoice.customer_id}, credit_type=ct, quantity=units), actor=actor)


def list_bills(session: Session, *, actor: Actor, subscription_id: str | None = None, **filters) -> Page[Invoice]:
    """Bills: invoices of subscriptions (the invoice filters apply: account, customer, status, overdue...)."""
    return invoices.list_invoices(session, actor=actor, bills_only=True, subscription_id=subscription_id, **filters)
