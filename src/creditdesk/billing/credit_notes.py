"""Credit notes: the only correction of a posted invoice (a posted invoice itself never changes).

A credit note credits the account through the ledger (its net against revenue, its tax against tax),
takes the next CN- number of the workspace (gap-free, under the billing settings row's lock), and lowers
what the invoice has due. A paid (or partly paid) invoice can be credited too, up to what is due plus what was
paid (`creditable`; 422 `credit_note_exceeds_due` above that, saying why when that is nothing: an invoice
closed by a write-off and never paid, or one credited in full): the part of the credit note beyond what was
still due releases that much of the payments allocated to the invoice, newest allocation first, and the
released money becomes the account's credit (the payment's unallocated amount, shown on the account and
applied to later invoices like any payment's remainder; a refund of it is paid out of band). The ledger
does not change for the release: the payment already credited the account, the credit note credits it
again, so the account's balance goes below zero by exactly the released amount.

Crediting a package line (or the whole invoice) voids the still unused part of the pack it bought
(billing.packages.void_for_credit_note): credits already used stay used.

Its tax part is the invoice's tax share of the amount, rounded half-up once; the last credit note that
brings the invoice's credited total to its whole total takes exactly the tax not yet credited, so the
tax credited never drifts from the tax invoiced.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import invoices, postings
from creditdesk.billing import invoice_schemas as s
from creditdesk.billing.invoice_models import CreditNote, Invoice
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.settings import require_settings
from creditdesk.currencies import round_half_up
from creditdesk.errors import Conflict, InvalidInput
from creditdesk.ids import new_id
from creditdesk.ledger.batch import Reference
from creditdesk.pagination import Page, paginate
from creditdesk.repository import get_in_workspace

NUMBER_PREFIX = "CN-"


def format_number(sequence: int) -> str:
    return f"{NUMBER_PREFIX}{sequence:06d}"


def notes_of(session: Session, invoice_id: str) -> list[CreditNote]:
    return list(session.scalars(select(CreditNote).where(CreditNote.invoice_id == invoice_id).order_by(CreditNote.id)))


def _line_amounts(session: Session, invoice: Invoice, wanted: list[s.CreditNoteLineIn]) -> list[dict]:
    lines = {line.id: line for line in invoices.lines_of(session, invoice.id)}
    credited: dict[str, int] = {}
    for note in notes_of(session, invoice.id):
        for item in note.lines or []:
            credited[item["line_id"]] = credited.get(item["line_id"], 0) + item["amount"]
    out, seen = [], set()
    for n, item in enumerate(wanted):
        line = lines.get(item.line_id)
        if line is None:
            raise InvalidInput(f"Line {item.line_id!r} is not on this invoice.", code="unknown_line",
                               field=f"lines[{n}].line_id")
        if line.id in seen:
            raise InvalidInput("A line is named twice.", code="duplicate_line", field=f"lines[{n}].line_id")
        seen.add(line.id)
        left = line.gross - credited.get(line.id, 0)
        amount = item.amount if item.amount is not None else left
        if amount <= 0 or amount > left:
            raise InvalidInput(f"Line {line.position} has {left} left to credit.", code="credit_note_exceeds_line",
                               field=f"lines[{n}].amount", available=left)
        out.append({"line_id": line.id, "amount": amount})
    return out


def create_credit_note(session: Session, invoice_id: str, data: s.CreditNoteCreate, *, actor: Actor) -> CreditNote:
    invoice = invoices.get_invoice(session, actor.workspace_id, invoice_id, for_update=True)
    invoices.require_billing_writer(actor, "issue credit notes")
    chosen = [data.full, data.amount is not None, data.lines is not None]
    if sum(bool(c) for c in chosen) != 1:
        raise InvalidInput("Say what to credit: exactly one of full, amount or lines.", code="invalid_credit_note")
    if invoice.status not in ("posted", "settled"):
        raise Conflict(f"Invoice {invoice.id} is {invoice.status}: only a posted invoice is credited (a draft is "
                       "edited or voided).", code="invoice_not_posted", status=invoice.status)
    lines: list[dict] = []
    most = creditable(invoice)
    if most == 0:
        raise InvalidInput(_nothing_to_credit(invoice), code="credit_note_exceeds_due", field="amount", amount_due=0,
                           creditable=0)
    if data.full:  # what is still due; a paid invoice: all of it paid and not credited yet
        amount = invoice.amount_due or most
    elif data.amount is not None:
        amount = data.amount
    else:
        if not data.lines:
            raise InvalidInput("Name at least one line.", code="invalid_credit_note", field="lines")
        lines = _line_amounts(session, invoice, data.lines)
        amount = sum(item["amount"] for item in lines)
    if amount <= 0 or amount > most:
        written_off = f", {invoice.amount_written_off} written off" if invoice.amount_written_off else ""
        raise InvalidInput(f"At most {most} of this invoice can be credited ({invoice.amount_due} due, "
                           f"{invoice.amount_paid} paid{written_off}): a credit note cannot exceed it.",
                           code="credit_note_exceeds_due", field="amount", amount_due=invoice.amount_due,
                           creditable=most)
    credited_tax = int(session.scalar(select(func.coalesce(func.sum(CreditNote.tax), 0))
                                      .where(CreditNote.invoice_id == invoice.id)) or 0)
    if invoice.amount_credited + amount == invoice.total:
        tax = invoice.tax_total - credited_tax
    else:
        tax = round_half_up(Decimal(amount) * invoice.tax_total / invoice.total) if invoice.total else 0
        tax = max(0, min(tax, invoice.tax_total - credited_tax, amount))
    settings = require_settings(session, invoice.workspace_id, for_update=True)
    number = format_number(settings.next_credit_note_number)
    settings.next_credit_note_number += 1
    now = clock.now()
    before = snapshot(invoice)
    note = CreditNote(id=new_id("cn"), workspace_id=invoice.workspace_id, invoice_id=invoice.id,
                      account_id=invoice.account_id, number=number, currency=invoice.currency, amount=amount, tax=tax,
                      reason=data.reason, lines=lines, issue_date=now.date(), created_by=actor.user_id,
                      created_at=now)
    session.add(note)
    session.flush([note])
    account = session.get(BillingAccount, invoice.account_id)
    ref = Reference(kind="credit_note", id=note.id)
    if amount - tax > 0:
        postings.post_account_entry(session, account, amount - tax, "credit", "credit_note", ref,
                                    counterpart="revenue", actor_id=actor.user_id)
    if tax > 0:
        postings.post_account_entry(session, account, tax, "credit", "credit_note_tax", ref, counterpart="tax",
                                    actor_id=actor.user_id)
    released = max(0, amount - invoice.amount_due)
    if released:
        _release_payments(session, invoice, released, actor=actor, note_number=number)
    invoice.amount_credited += amount
    invoice.amount_paid -= released
    invoice.amount_due -= amount - released
    invoice.updated_at = now
    invoices.settle_if_paid(invoice, now, session=session, actor=actor)
    from creditdesk.billing import packages

    packages.void_for_credit_note(session, invoice, note, actor=actor)
    session.flush()
    audit.record(session, actor=actor, action="credit_note.create", object_type="credit_note", object_id=note.id,
                 after=snapshot(note))
    audit.record(session, actor=actor, action="invoice.credit", object_type="invoice", object_id=invoice.id,
                 before=before, after=snapshot(invoice))
    return note


def creditable(invoice: Invoice) -> int:
    """The most a credit note can credit: what is still due plus what was paid (each credited at most once).
    What a write-off closed is not: that debt is gone (the account's write-off entry closed it), so crediting
    it would hand the customer money nobody paid; the payments released by a credit note only cover what was
    paid."""
    return max(0, invoice.amount_due + invoice.amount_paid)


def _nothing_to_credit(invoice: Invoice) -> str:
    name = invoice.number or invoice.id
    if invoice.amount_written_off:
        return (f"Invoice {name} was written off and nothing of it is paid or due: there is nothing a credit note "
                "could give back.")
    return f"Invoice {name} is credited in full: there is nothing left to credit."


def _release_payments(session: Session, invoice: Invoice, amount: int, *, actor: Actor, note_number: str) -> None:
    """Take `amount` back from the payments allocated to the invoice, newest allocation first, and leave
    it on those payments as unallocated (the account's credit). An allocation released whole is removed
    (allocations are positive amounts); each payment's change is audited with before and after."""
    from creditdesk.billing.invoice_models import Payment, PaymentAllocation

    left = amount
    allocations = list(session.scalars(select(PaymentAllocation).where(
        PaymentAllocation.invoice_id == invoice.id).order_by(PaymentAllocation.id.desc()).with_for_update()))
    for allocation in allocations:
        if left == 0:
            break
        take = min(left, allocation.amount)
        payment = session.scalar(select(Payment).where(Payment.id == allocation.payment_id).with_for_update())
        before = {"unallocated": payment.unallocated, "allocation": allocation.amount}
        payment.unallocated += take
        payment.updated_at = clock.now()
        if take == allocation.amount:
            session.delete(allocation)
        else:
            allocation.amount -= take
        left -= take
        audit.record(session, actor=actor, action="payment.release", object_type="payment", object_id=payment.id,
                     before=before, after={"unallocated": payment.unallocated,
                                           "allocation": before["allocation"] - take, "invoice_id": invoice.id,
                                           "released": take, "credit_note": note_number})
    if left:  # amount_paid and the allocations always agree; a mismatch is a bug, never money to invent
        raise Conflict("The invoice's payments do not cover the amount to release.", code="payments_mismatch")


def get_credit_note(session: Session, workspace_id: str, note_id: str) -> CreditNote:
    return get_in_workspace(session, CreditNote, workspace_id, note_id, label="credit note")


def list_credit_notes(session: Session, *, actor: Actor, invoice_id: str, limit=None, cursor=None) -> Page:
    invoice = invoices.get_invoice(session, actor.workspace_id, invoice_id)
    stmt = select(CreditNote).where(CreditNote.workspace_id == actor.workspace_id,
                                    CreditNote.invoice_id == invoice.id)
    return paginate(session, stmt, id_column=CreditNote.id, limit=limit, cursor=cursor)


def credit_note_out(note: CreditNote) -> s.CreditNoteOut:
    return s.CreditNoteOut(id=note.id, number=note.number, invoice_id=note.invoice_id, account_id=note.account_id,
                           currency=note.currency, amount=note.amount, tax=note.tax, reason=note.reason,
                           lines=list(note.lines or []), issue_date=note.issue_date,
                           created_at=clock.aware(note.created_at))
