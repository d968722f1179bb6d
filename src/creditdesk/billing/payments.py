"""Payments received on an account, and their allocation to invoices.

A payment credits the account through the ledger (against the workspace's `payments` account) for its
whole amount, then is allocated:
- by default to the account's open posted invoices, oldest due first (then oldest issued, then by
  number), as far as it goes;
- or to the invoices the caller names, an amount each (more than an invoice still has due: 422
  `overpayment`; more than the payment: 422 `allocation_exceeds_payment`).
What is not allocated stays on the account as a credit (`unallocated`: the balance already shows it,
since the whole payment was credited). It is never spent silently: neither a later posting nor a later
payment touches it; the user allocates it when they choose (`allocate_payment`, POST
/v1/payments/{id}/allocate, the back office's "Allocate" button), by the same two rules.

An invoice whose amount due reaches 0 is settled. "Mark as paid" records a payment of what the invoice
still has due, allocated to it.

The account row is locked first (then the invoices), so two payments of one account never allocate the
same amount due twice.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts, invoices, postings
from creditdesk.billing import invoice_schemas as s
from creditdesk.billing.invoice_models import Invoice, Payment, PaymentAllocation
from creditdesk.errors import Conflict, InvalidInput
from creditdesk.ids import new_id
from creditdesk.ledger.batch import Reference
from creditdesk.pagination import Page, paginate
from creditdesk.repository import get_in_workspace


def open_invoices(session: Session, account_id: str, *, for_update: bool = False) -> list[Invoice]:
    """The account's posted invoices with something due, oldest due first."""
    stmt = (select(Invoice).where(Invoice.account_id == account_id, Invoice.status == invoices.OPEN,
                                  Invoice.amount_due > 0)
            .order_by(Invoice.due_date, Invoice.issue_date, Invoice.number, Invoice.id))
    if for_update:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def _allocate(session: Session, payment: Payment, wanted: list[s.AllocationIn] | None, *,
              actor: Actor) -> list[PaymentAllocation]:
    """Allocate what is left of `payment`; returns the allocations made."""
    now = clock.now()
    plan: list[tuple[Invoice, int]] = []
    if wanted is None:
        left = payment.unallocated
        for invoice in open_invoices(session, payment.account_id, for_update=True):
            if left <= 0:
                break
            take = min(left, invoice.amount_due)
            plan.append((invoice, take))
            left -= take
    else:
        seen: set[str] = set()
        for n, item in enumerate(wanted):
            field = f"allocations[{n}]"
            if item.invoice_id in seen:
                raise InvalidInput("An invoice is named twice.", code="duplicate_invoice", field=field)
            seen.add(item.invoice_id)
            invoice = session.scalar(select(Invoice).where(
                Invoice.id == item.invoice_id, Invoice.workspace_id == payment.workspace_id).with_for_update())
            if invoice is None or invoice.account_id != payment.account_id:
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
        if total > payment.unallocated:
            raise InvalidInput(f"The allocations ({total}) are more than the payment has to allocate "
                               f"({payment.unallocated}).", code="allocation_exceeds_payment", field="allocations",
                               available=payment.unallocated)
    made = []
    for invoice, amount in plan:
        allocation = PaymentAllocation(id=new_id("pal"), workspace_id=payment.workspace_id, payment_id=payment.id,
                                       invoice_id=invoice.id, amount=amount, created_at=now)
        session.add(allocation)
        made.append(allocation)
        invoice.amount_paid += amount
        invoice.amount_due -= amount
        invoice.updated_at = now
        invoices.settle_if_paid(invoice, now, session=session, actor=actor)
        payment.unallocated -= amount
    payment.updated_at = now
    session.flush()
    return made


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
        invoice = invoices.post_invoice(session, invoice_id, actor=actor, charge_first=False)
        if invoice.status == "settled":
            return None
    if invoice.status != invoices.OPEN or invoice.amount_due <= 0:
        raise Conflict(f"Invoice {invoice.number or invoice.id} is {invoice.status}: nothing to pay.",
                       code="invoice_not_open", status=invoice.status)
    data = s.PaymentCreate(account_id=invoice.account_id, amount=invoice.amount_due, method=method,
                           reference=reference or f"{invoice.number} marked as paid", received_on=received_on,
                           allocations=[s.AllocationIn(invoice_id=invoice.id, amount=invoice.amount_due)])
    return record_payment(session, data, actor=actor)


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
