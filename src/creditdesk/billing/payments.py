"""Payments received on an account, and their allocation to invoices.

A payment credits the account through the ledger (against the workspace's `payments` account) for its
whole amount, then is allocated:
- by default to the account's open posted invoices, oldest due first (then oldest issued, then by
  number), as far as it goes;
- or to the invoices the caller names, an amount each (more than an invoice still has due: 422
  `overpayment`; more than the payment: 422 `allocation_exceeds_payment`).
What is not allocated stays on the account as a credit (`unallocated`: the balance already shows it,
since the whole payment was credited); a credit note on a paid invoice adds to it (billing.credit_notes
releases that much of the invoice's allocations). It is never spent silently: neither a later posting nor a
later payment touches it (the seeds say nothing of using it automatically, so a person decides; the invoice
page says how much there is). It is used only when someone asks, by the same two rules:
- applied to invoices: one payment's (`allocate_payment`, POST /v1/payments/{id}/allocate) or the whole
  account's (`apply_credit`, POST /v1/accounts/{id}/credit/apply, the back office's "Apply the credit" on the
  account and invoice pages), taken from the account's payments oldest first;
- refunded (`refund_credit`, POST /v1/accounts/{id}/credit/refunds, the account page's Refund credit form):
  at most the credit, taken from the payments oldest first (or from the one named), posted to the ledger as
  a debit of the account against the workspace's `payments` account (a payment in reverse), audited with
  its reason. A payment's unallocated amount is always its amount less its allocations and refund parts.

An invoice whose amount due reaches 0 is settled. "Mark as paid" records a payment of what the invoice
still has due, allocated to it; on a draft it posts and pays in one transaction, so the credit limit does not
apply (the debt never exists).

The account row is locked first (then the invoices), so two payments of one account never allocate the
same amount due twice.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts, invoices, postings
from creditdesk.billing import invoice_schemas as s
from creditdesk.billing.invoice_models import Invoice, Payment, PaymentAllocation, Refund, RefundPart
from creditdesk.errors import Conflict, InvalidInput, NotFound
from creditdesk.ids import new_id
from creditdesk.ledger.batch import Reference
from creditdesk.pagination import Page, paginate
from creditdesk.repository import get_in_workspace


class CreditTooLow(Conflict):
    code = "credit_too_low"


def open_invoices(session: Session, account_id: str, *, for_update: bool = False) -> list[Invoice]:
    """The account's posted invoices with something due, oldest due first."""
    stmt = (select(Invoice).where(Invoice.account_id == account_id, Invoice.status == invoices.OPEN,
                                  Invoice.amount_due > 0)
            .order_by(Invoice.due_date, Invoice.issue_date, Invoice.number, Invoice.id))
    if for_update:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def _plan(session: Session, workspace_id: str, account_id: str, available: int,
          wanted: list[s.AllocationIn] | None, *, what: str, currency: str = "") -> list[tuple[Invoice, int]]:
    """Which invoices get how much of `available` (a payment's or the account's credit): oldest due first,
    or as `wanted` says (each checked; their sum at most `available`). The invoices are locked."""
    plan: list[tuple[Invoice, int]] = []
    if wanted is None:
        left = available
        for invoice in open_invoices(session, account_id, for_update=True):
            if left <= 0:
                break
            take = min(left, invoice.amount_due)
            plan.append((invoice, take))
            left -= take
        return plan
    seen: set[str] = set()
    for n, item in enumerate(wanted):
        field = f"allocations[{n}]"
        if item.invoice_id in seen:
            raise InvalidInput("An invoice is named twice.", code="duplicate_invoice", field=field)
        seen.add(item.invoice_id)
        invoice = session.scalar(select(Invoice).where(
            Invoice.id == item.invoice_id, Invoice.workspace_id == workspace_id).with_for_update())
        if invoice is None or invoice.account_id != account_id:
            raise InvalidInput(f"Invoice {item.invoice_id!r} is not one of this account's.",
                               code="invoice_not_of_account", field=field)
        if invoice.status != invoices.OPEN:
            raise Conflict(f"Invoice {invoice.number or invoice.id} is {invoice.status}: only a posted invoice "
                           "with something due is paid.", code="invoice_not_open", field=field,
                           status=invoice.status)
        if item.amount > invoice.amount_due:
            raise InvalidInput(f"Invoice {invoice.number} has {invoice.amount_due} due; {item.amount} is more.",
                               code="overpayment", field=field, amount_due=invoice.amount_due)
        plan.append((invoice, item.amount))
    total = sum(amount for _, amount in plan)
    if total > available:
        if what == "payment":
            raise InvalidInput(f"The allocations ({total}) are more than the payment has to allocate "
                               f"({available}).", code="allocation_exceeds_payment", field="allocations",
                               available=available)
        raise CreditTooLow(f"That is {currencies.format_money(total, currency)}: more than the account's credit "
                           f"({currencies.format_money(available, currency)}).", field="allocations",
                           available=available)
    return plan


def _spend(session: Session, sources: list[Payment], plan: list[tuple[Invoice, int]], *,
           actor: Actor) -> list[PaymentAllocation]:
    """Allocate the planned amounts from the `sources` (locked payments with something unallocated), each
    taken from the first payment that still has some: one allocation per (payment, invoice) piece."""
    now = clock.now()
    made = []
    sources = [p for p in sources if p.unallocated > 0]
    for invoice, amount in plan:
        left = amount
        while left > 0:
            payment = sources[0]
            take = min(left, payment.unallocated)
            allocation = PaymentAllocation(id=new_id("pal"), workspace_id=payment.workspace_id,
                                           payment_id=payment.id, invoice_id=invoice.id, amount=take,
                                           created_at=now)
            session.add(allocation)
            made.append(allocation)
            invoice.amount_paid += take
            invoice.amount_due -= take
            payment.unallocated -= take
            payment.updated_at = now
            left -= take
            if payment.unallocated == 0:
                sources.pop(0)
        invoice.updated_at = now
        invoices.settle_if_paid(invoice, now, session=session, actor=actor)
    session.flush()
    return made


def _allocate(session: Session, payment: Payment, wanted: list[s.AllocationIn] | None, *,
              actor: Actor) -> list[PaymentAllocation]:
    """Allocate what is left of `payment`; returns the allocations made."""
    plan = _plan(session, payment.workspace_id, payment.account_id, payment.unallocated, wanted, what="payment")
    payment.updated_at = clock.now()
    return _spend(session, [payment], plan, actor=actor)


def record_payment(session: Session, data: s.PaymentCreate, *, actor: Actor) -> Payment:
    invoices.require_billing_writer(actor, "record payments")
    account = accounts.get_account(session, actor.workspace_id, data.account_id, for_update=True)
    if data.currency is not None and data.currency.strip().upper() != account.currency:
        raise InvalidInput(f"This account is in {account.currency}, not {data.currency.upper()}.",
                           code="currency_mismatch", field="currency", expected=account.currency)
    return record_received(session, account, data.amount, method=data.method, reference=data.reference,
                           received_on=data.received_on, allocations=data.allocations, actor=actor)


def record_received(session: Session, account, amount: int, *, method: str, reference: str = "",
                    received_on: date | None = None, allocations: list[s.AllocationIn] | None = None,
                    actor: Actor) -> Payment:
    """A payment of `amount` on `account` (locked by the caller), credited through the ledger and allocated
    (None: oldest due first; []: nothing, the money stays as the account's credit). The one writer of
    payments: record_payment (a person), the wallet (method wallet) and gateway charges (card) call it."""
    now = clock.now()
    payment = Payment(id=new_id("pay"), workspace_id=account.workspace_id, account_id=account.id, amount=amount,
                      currency=account.currency, method=method, reference=reference,
                      received_on=received_on or now.date(), unallocated=amount, created_by=actor.user_id,
                      created_at=now, updated_at=now)
    session.add(payment)
    session.flush([payment])
    postings.post_account_entry(session, account, amount, "credit", "payment",
                                Reference(kind="payment", id=payment.id), counterpart="payments",
                                actor_id=actor.user_id)
    if allocations is None or allocations:
        _allocate(session, payment, allocations, actor=actor)
    audit.record(session, actor=actor, action="payment.create", object_type="payment", object_id=payment.id,
                 after=_snapshot(session, payment))
    return payment


def allocate_now(session: Session, payment: Payment, allocations: list[s.AllocationIn], *, actor: Actor) -> None:
    """Allocate a payment made in this transaction (the wallet, a gateway charge) by the same two rules."""
    _allocate(session, payment, allocations, actor=actor)


def allocate_payment(session: Session, payment_id: str, data: s.PaymentAllocate, *, actor: Actor) -> Payment:
    """Allocate what is left of a payment (the account's credit) to open invoices, when the user asks."""
    payment = get_payment(session, actor.workspace_id, payment_id)
    invoices.require_billing_writer(actor, "allocate payments")
    accounts.get_account(session, actor.workspace_id, payment.account_id, for_update=True)
    session.refresh(payment, with_for_update=True)
    if payment.unallocated == 0:
        raise Conflict("This payment is fully allocated.", code="payment_fully_allocated")
    before = _snapshot(session, payment)
    _allocate(session, payment, data.allocations, actor=actor)
    audit.record(session, actor=actor, action="payment.allocate", object_type="payment", object_id=payment.id,
                 before=before, after=_snapshot(session, payment))
    return payment


def mark_paid(session: Session, invoice_id: str, *, actor: Actor, method: str = "other", reference: str = "",
              received_on: date | None = None) -> Payment | None:
    """Record a payment of what the invoice still has due, allocated to it (the back office's Mark as paid).
    A draft is posted first (seed 001: pick the credits, mark as paid, done); when credits paid all of it,
    posting settles it and no payment is made (None)."""
    invoice = invoices.get_invoice(session, actor.workspace_id, invoice_id)
    invoices.require_billing_writer(actor, "record payments")
    if invoice.status == "draft":
        # No card is charged first: the person says the money is here.
        invoice = invoices.post_invoice(session, invoice_id, actor=actor, charge_first=False, paid_at_once=True)
        if invoice.status == "settled":
            return None
    if invoice.status != invoices.OPEN or invoice.amount_due <= 0:
        raise Conflict(f"Invoice {invoice.number or invoice.id} is {invoice.status}: nothing to pay.",
                       code="invoice_not_open", status=invoice.status)
    data = s.PaymentCreate(account_id=invoice.account_id, amount=invoice.amount_due, method=method,
                           reference=reference or f"{invoice.number} marked as paid", received_on=received_on,
                           allocations=[s.AllocationIn(invoice_id=invoice.id, amount=invoice.amount_due)])
    return record_payment(session, data, actor=actor)


# --- the account's credit: apply it, refund it ---

def credit_payments(session: Session, account_id: str, *, for_update: bool = False) -> list[Payment]:
    """The account's payments with something unallocated, oldest first: its credit, in the order it is used."""
    stmt = (select(Payment).where(Payment.account_id == account_id, Payment.unallocated > 0)
            .order_by(Payment.received_on, Payment.created_at, Payment.id))
    if for_update:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def account_credit(session: Session, account_id: str) -> int:
    """The account's credit: what its payments left unallocated (minor units)."""
    return int(session.scalar(select(func.coalesce(func.sum(Payment.unallocated), 0))
                              .where(Payment.account_id == account_id)) or 0)


def credit_out(session: Session, account) -> s.AccountCreditOut:
    sources = credit_payments(session, account.id)
    return s.AccountCreditOut(account_id=account.id, currency=account.currency,
                              available=sum(p.unallocated for p in sources),
                              payments=[s.CreditSourceOut(payment_id=p.id, received_on=p.received_on, method=p.method,
                                                          reference=p.reference, unallocated=p.unallocated)
                                        for p in sources])


def _credit_snapshot(sources: list[Payment]) -> dict:
    return {"credit": sum(p.unallocated for p in sources),
            "payments": {p.id: p.unallocated for p in sources}}


def apply_credit(session: Session, account_id: str, data: s.CreditApply, *, actor: Actor) -> s.CreditApplyOut:
    """Apply the account's credit to its open invoices (oldest due first, or as `data.allocations` say), taken
    from its payments oldest first. Each payment used gets its `payment.allocate` audit row."""
    account = accounts.get_account(session, actor.workspace_id, account_id, for_update=True)
    invoices.require_billing_writer(actor, "apply account credit")
    sources = credit_payments(session, account.id, for_update=True)
    available = sum(p.unallocated for p in sources)
    if available == 0:
        raise CreditTooLow(f"Account {account.number} has no credit to apply.", available=0)
    plan = _plan(session, account.workspace_id, account.id, available, data.allocations, what="account",
                 currency=account.currency)
    if not plan:
        raise Conflict(f"Account {account.number} has no posted invoice with something due: there is nothing to "
                       "apply its credit to.", code="no_open_invoices")
    before = {p.id: _snapshot(session, p) for p in sources}
    made = _spend(session, sources, plan, actor=actor)
    for payment in sources:
        if any(a.payment_id == payment.id for a in made):
            audit.record(session, actor=actor, action="payment.allocate", object_type="payment",
                         object_id=payment.id, before=before[payment.id], after=_snapshot(session, payment))
    numbers = {invoice.id: invoice.number for invoice, _ in plan}
    return s.CreditApplyOut(account_id=account.id, currency=account.currency,
                            applied=[s.CreditAppliedOut(payment_id=a.payment_id, invoice_id=a.invoice_id,
                                                        invoice_number=numbers.get(a.invoice_id), amount=a.amount)
                                     for a in made],
                            available=available - sum(a.amount for a in made))


def refund_credit(session: Session, account_id: str, data: s.CreditRefundCreate, *, actor: Actor) -> Refund:
    """Give back `data.amount` of the account's credit (see the module): never more than the credit (409
    credit_too_low, with what there is), posted to the ledger, audited with its reason, all-or-nothing."""
    account = accounts.get_account(session, actor.workspace_id, account_id, for_update=True)
    invoices.require_billing_writer(actor, "refund account credit")
    reason = data.reason.strip()
    if not reason:
        raise InvalidInput("Say why the money is given back.", code="reason_required", field="reason")
    sources = credit_payments(session, account.id, for_update=True)
    if data.payment_id:
        chosen = session.get(Payment, data.payment_id)
        if chosen is None or chosen.workspace_id != account.workspace_id or chosen.account_id != account.id:
            raise NotFound(f"Payment {data.payment_id!r} is not one of this account's.", field="payment_id",
                           object_id=data.payment_id)
        sources = [p for p in sources if p.id == chosen.id]
    available = sum(p.unallocated for p in sources)
    if data.amount > available:
        where = "this payment's credit" if data.payment_id else f"account {account.number}'s credit"
        raise CreditTooLow(f"At most {currencies.format_money(available, account.currency)} can be refunded "
                           f"({where}); {currencies.format_money(data.amount, account.currency)} is more.",
                           field="amount", available=available)
    now = clock.now()
    before = _credit_snapshot(sources)
    refund = Refund(id=new_id("rfd"), workspace_id=account.workspace_id, account_id=account.id, amount=data.amount,
                    currency=account.currency, method=data.method, reason=reason, reference=data.reference,
                    refunded_on=now.date(), created_by=actor.user_id, created_at=now)
    session.add(refund)
    session.flush([refund])
    left = data.amount
    for payment in sources:
        if left == 0:
            break
        take = min(left, payment.unallocated)
        session.add(RefundPart(id=new_id("rfp"), workspace_id=account.workspace_id, refund_id=refund.id,
                               payment_id=payment.id, amount=take))
        payment.unallocated -= take
        payment.updated_at = now
        left -= take
    postings.post_account_entry(session, account, data.amount, "debit", REFUND_KIND,
                                Reference(kind="refund", id=refund.id), counterpart="payments",
                                actor_id=actor.user_id)
    session.flush()
    audit.record(session, actor=actor, action="refund.create", object_type="refund", object_id=refund.id,
                 before=before, after=snapshot(refund, parts=[p.model_dump() for p in _parts_out(session, refund)],
                                               credit_left=sum(p.unallocated for p in sources)))
    return refund


REFUND_KIND = "refund"  # the account entry and ledger code of a refund of account credit


def _parts_out(session: Session, refund: Refund) -> list[s.RefundPartOut]:
    return [s.RefundPartOut(payment_id=part.payment_id, amount=part.amount) for part in session.scalars(
        select(RefundPart).where(RefundPart.refund_id == refund.id).order_by(RefundPart.id))]


def refund_out(session: Session, refund: Refund) -> s.RefundOut:
    return s.RefundOut(id=refund.id, account_id=refund.account_id, amount=refund.amount, currency=refund.currency,
                       method=refund.method, reason=refund.reason, reference=refund.reference,
                       refunded_on=refund.refunded_on, parts=_parts_out(session, refund),
                       created_at=clock.aware(refund.created_at))


def list_refunds(session: Session, *, actor: Actor, account_id: str, limit=None, cursor=None) -> Page[Refund]:
    """The account's refunds of credit, newest first."""
    account = accounts.get_account(session, actor.workspace_id, account_id)
    stmt = select(Refund).where(Refund.workspace_id == actor.workspace_id, Refund.account_id == account.id)
    return paginate(session, stmt, id_column=Refund.id, limit=limit, cursor=cursor, descending=True)


def get_payment(session: Session, workspace_id: str, payment_id: str) -> Payment:
    return get_in_workspace(session, Payment, workspace_id, payment_id, label="payment")


def allocations_of(session: Session, payment_id: str) -> list[tuple[PaymentAllocation, str | None]]:
    return list(session.execute(
        select(PaymentAllocation, Invoice.number).join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
        .where(PaymentAllocation.payment_id == payment_id).order_by(PaymentAllocation.id)).tuples())


def _snapshot(session: Session, payment: Payment) -> dict:
    return snapshot(payment, allocations=[{"invoice_id": a.invoice_id, "amount": a.amount}
                                          for a, _ in allocations_of(session, payment.id)])


def list_payments(session: Session, *, actor: Actor, limit=None, cursor=None, account_id: str | None = None,
                  customer_id: str | None = None, invoice_id: str | None = None) -> Page[Payment]:
    """Newest first."""
    from creditdesk.billing.models import BillingAccount

    stmt = select(Payment).where(Payment.workspace_id == actor.workspace_id)
    if account_id:
        stmt = stmt.where(Payment.account_id == account_id)
    if customer_id:
        stmt = stmt.where(Payment.account_id.in_(select(BillingAccount.id).where(
            BillingAccount.workspace_id == actor.workspace_id, BillingAccount.customer_id == customer_id)))
    if invoice_id:
        stmt = stmt.where(Payment.id.in_(select(PaymentAllocation.payment_id).where(
            PaymentAllocation.invoice_id == invoice_id)))
    return paginate(session, stmt, id_column=Payment.id, limit=limit, cursor=cursor, descending=True)


def payment_out(session: Session, payment: Payment) -> s.PaymentOut:
    return s.PaymentOut(id=payment.id, account_id=payment.account_id, amount=payment.amount,
                        currency=payment.currency, method=payment.method, reference=payment.reference,
                        received_on=payment.received_on, unallocated=payment.unallocated,
                        allocations=[s.AllocationOut(invoice_id=a.invoice_id, invoice_number=number, amount=a.amount)
                                     for a, number in allocations_of(session, payment.id)],
                        created_at=clock.aware(payment.created_at))
