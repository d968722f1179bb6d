"""Invoices (lines, credits on lines, post, void, PDF, credit notes) and payments."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from creditdesk.api.deps import (AccountId, Cursor, InvoiceId, Limit, WriteContext, get_actor, read_session, status_query,
                                 statuses, write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.billing import accounts, credit_notes, invoices, payments, pdf
from creditdesk.billing import invoice_schemas as s
from creditdesk.parties.schemas import Day

router = APIRouter()

INVOICE_STATUSES = get_args(s.InvoiceStatus)
LineId = Annotated[str, Path(description="The id of the line, one of this invoice's (as its `id` gives it).")]
PaymentId = Annotated[str, Path(description="The id of the payment, as its `id` field gives it.")]


def _out(fn):
    """A write answering the invoice it changed."""
    def run(db, actor):
        return invoices.invoice_out(db, fn(db, actor))
    return run


@router.post("/invoices", status_code=201, response_model=s.InvoiceOut, tags=["invoices"])
def create_invoice(body: s.InvoiceCreate, ctx: WriteContext = Depends(write_context)):
    """A draft (masters and managers). Lines may come with it or be added later; each is priced from the
    catalogue (422 no_price, 422 currency_mismatch, 422 invalid_quantity)."""
    return ctx.run(_out(lambda db, actor: invoices.create_invoice(db, body, actor=actor)), status_code=201)


@router.get("/invoices", response_model=ListOf[s.InvoiceOut], tags=["invoices"])
def list_invoices(limit: int | None = Limit, cursor: str | None = Cursor,
                  status: list[str] | None = status_query(INVOICE_STATUSES, what="invoices"),
                  account_id: str | None = Query(default=None, max_length=40, description=(
                      "Only the invoices of this account (its id).")),
                  customer_id: str | None = Query(default=None, max_length=40, description=(
                      "Only the invoices of this customer (its id).")),
                  due_before: Day | None = Query(default=None, description=(
                      "Only invoices due on or before this day (YYYY-MM-DD, inclusive).")),
                  due_after: Day | None = Query(default=None, description=(
                      "Only invoices due on or after this day (YYYY-MM-DD, inclusive).")),
                  overdue: bool | None = Query(default=None, description=(
                      "`true`: only invoices posted, with something still due and past their due date (as of "
                      "today, UTC); `false`: only the others; omitted: both.")),
                  actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Newest first."""
    page = invoices.list_invoices(session, actor=actor, limit=limit, cursor=cursor,
                                  status=statuses(status, INVOICE_STATUSES),
                                  account_id=account_id, customer_id=customer_id, due_before=due_before,
                                  due_after=due_after, overdue=overdue)
    return list_of(page.items, page.next_cursor, lambda inv: invoices.invoice_out(session, inv))


@router.get("/invoices/{invoice_id}", response_model=s.InvoiceOut, tags=["invoices"])
def get_invoice(invoice_id: InvoiceId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return invoices.invoice_out(session, invoices.get_invoice(session, actor.workspace_id, invoice_id))


@router.patch("/invoices/{invoice_id}", response_model=s.InvoiceOut, tags=["invoices"])
def update_invoice(invoice_id: InvoiceId, body: s.InvoiceUpdate, ctx: WriteContext = Depends(write_context)):
    """A draft only (409 invoice_not_draft)."""
    return ctx.run(_out(lambda db, actor: invoices.update_invoice(db, invoice_id, body, actor=actor)))


@router.post("/invoices/{invoice_id}/lines", response_model=s.InvoiceOut, tags=["invoices"])
def add_line(invoice_id: InvoiceId, body: s.LineCreate, ctx: WriteContext = Depends(write_context)):
    """Adds a line to a draft; answers the whole invoice."""
    return ctx.run(_out(lambda db, actor: invoices.add_line(db, invoice_id, body, actor=actor)))


@router.patch("/invoices/{invoice_id}/lines/{line_id}", response_model=s.InvoiceOut, tags=["invoices"])
def update_line(invoice_id: InvoiceId, line_id: LineId, body: s.LineUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(_out(lambda db, actor: invoices.update_line(db, invoice_id, line_id, body, actor=actor)))


@router.delete("/invoices/{invoice_id}/lines/{line_id}", response_model=s.InvoiceOut, tags=["invoices"])
def delete_line(invoice_id: InvoiceId, line_id: LineId, ctx: WriteContext = Depends(write_context)):
    """Credits paying the line go back to their packs."""
    return ctx.run(_out(lambda db, actor: invoices.delete_line(db, invoice_id, line_id, actor=actor)))


@router.post("/invoices/{invoice_id}/lines/{line_id}/credits", response_model=s.InvoiceOut, tags=["invoices"])
def apply_line_credits(invoice_id: InvoiceId, line_id: LineId, body: s.LineCredits,
                       ctx: WriteContext = Depends(write_context)):
    """Pay units of a draft line with the customer's credits (packs covering the line's product; 409
    insufficient_credits when there are not enough). The line then bills only the rest."""
    return ctx.run(_out(lambda db, actor: invoices.apply_line_credits(db, invoice_id, line_id, body, actor=actor)))


@router.delete("/invoices/{invoice_id}/lines/{line_id}/credits", response_model=s.InvoiceOut, tags=["invoices"])
def remove_line_credits(invoice_id: InvoiceId, line_id: LineId, ctx: WriteContext = Depends(write_context)):
    """The credits go back to the packs they came from."""
    return ctx.run(_out(lambda db, actor: invoices.remove_line_credits(db, invoice_id, line_id, actor=actor)))


@router.post("/invoices/{invoice_id}/post", response_model=s.InvoiceOut, tags=["invoices"])
def post_invoice(invoice_id: InvoiceId, ctx: WriteContext = Depends(write_context)):
    """Numbers the draft (INV-000001, ... per workspace, without gaps), freezes it and debits the account in
    the ledger, in one transaction. 409 invoice_empty without lines."""
    return ctx.run(_out(lambda db, actor: invoices.post_invoice(db, invoice_id, actor=actor)))


@router.post("/invoices/{invoice_id}/void", response_model=s.InvoiceOut, tags=["invoices"])
def void_invoice(invoice_id: InvoiceId, ctx: WriteContext = Depends(write_context)):
    """Cancels a draft (it never gets a number). A posted invoice is corrected by a credit note instead."""
    return ctx.run(_out(lambda db, actor: invoices.void_invoice(db, invoice_id, actor=actor)))


@router.get("/invoices/{invoice_id}/pdf", response_class=Response, tags=["invoices"],
            responses={200: {"description": "The invoice (PDF).", "content": {"application/pdf": {}}}})
def invoice_pdf(invoice_id: InvoiceId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    invoice = invoices.get_invoice(session, actor.workspace_id, invoice_id)
    body = pdf.render_invoice(session, invoice)
    name = invoice.number or f"draft-{invoice.id}"
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})


@router.post("/invoices/{invoice_id}/credit-notes", status_code=201, response_model=s.CreditNoteOut,
             tags=["invoices"])
def create_credit_note(invoice_id: InvoiceId, body: s.CreditNoteCreate, ctx: WriteContext = Depends(write_context)):
    """Credits a posted invoice: `full` (what it has due), an `amount`, or `lines`. Never more than the
    invoice has due (422 credit_note_exceeds_due)."""
    return ctx.run(lambda db, actor: credit_notes.credit_note_out(
        credit_notes.create_credit_note(db, invoice_id, body, actor=actor)), status_code=201)


@router.get("/invoices/{invoice_id}/credit-notes", response_model=ListOf[s.CreditNoteOut], tags=["invoices"])
def list_credit_notes(invoice_id: InvoiceId, limit: int | None = Limit, cursor: str | None = Cursor,
                      actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = credit_notes.list_credit_notes(session, actor=actor, invoice_id=invoice_id, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, credit_notes.credit_note_out)


# --- payments ---

@router.post("/payments", status_code=201, response_model=s.PaymentOut, tags=["payments"])
def create_payment(body: s.PaymentCreate, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Credits the account; allocated oldest due first, or as `allocations` say
    (422 overpayment); the rest stays on the account as a credit (`unallocated`)."""
    return ctx.run(lambda db, actor: payments.payment_out(db, payments.record_payment(db, body, actor=actor)),
                   status_code=201)


@router.get("/payments", response_model=ListOf[s.PaymentOut], tags=["payments"])
def list_payments(limit: int | None = Limit, cursor: str | None = Cursor,
                  account_id: str | None = Query(default=None, max_length=40, description=(
                      "Only the payments of this account (its id).")),
                  customer_id: str | None = Query(default=None, max_length=40, description=(
                      "Only the payments of this customer's accounts (the customer's id).")),
                  invoice_id: str | None = Query(default=None, max_length=40, description=(
                      "Only the payments allocated (in part or in full) to this invoice (its id).")),
                  actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Newest first."""
    page = payments.list_payments(session, actor=actor, limit=limit, cursor=cursor, account_id=account_id,
                                  customer_id=customer_id, invoice_id=invoice_id)
    return list_of(page.items, page.next_cursor, lambda p: payments.payment_out(session, p))


@router.get("/payments/{payment_id}", response_model=s.PaymentOut, tags=["payments"])
def get_payment(payment_id: PaymentId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return payments.payment_out(session, payments.get_payment(session, actor.workspace_id, payment_id))


@router.post("/payments/{payment_id}/allocate", response_model=s.PaymentOut, tags=["payments"])
def allocate_payment(payment_id: PaymentId, body: s.PaymentAllocate, ctx: WriteContext = Depends(write_context)):
    """Allocates what is left of a payment (the account's credit) to open invoices: oldest due first, or as
    `allocations` say. Credit is never allocated without this call."""
    return ctx.run(lambda db, actor: payments.payment_out(
        db, payments.allocate_payment(db, payment_id, body, actor=actor)))


# --- the account's credit (what its payments left unallocated) ---

@router.get("/accounts/{account_id}/credit", response_model=s.AccountCreditOut, tags=["payments"])
def get_account_credit(account_id: AccountId, actor: Actor = Depends(get_actor),
                       session: Session = Depends(read_session)):
    """The account's credit (overpayments, what credit notes on paid invoices released) and the payments
    holding it, oldest first. It is used only when someone applies or refunds it."""
    return payments.credit_out(session, accounts.get_account(session, actor.workspace_id, account_id))


@router.post("/accounts/{account_id}/credit/apply", response_model=s.CreditApplyOut, tags=["payments"])
def apply_account_credit(account_id: AccountId, body: s.CreditApply, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Applies the account's credit to its open invoices: oldest due first, or as
    `allocations` say (422 overpayment; 409 credit_too_low beyond the credit; 409 no_open_invoices), taken from
    its payments oldest first (the same allocation as POST /v1/payments/{id}/allocate)."""
    return ctx.run(lambda db, actor: payments.apply_credit(db, account_id, body, actor=actor))


@router.post("/accounts/{account_id}/credit/refunds", status_code=201, response_model=s.RefundOut, tags=["payments"])
def refund_account_credit(account_id: AccountId, body: s.CreditRefundCreate,
                          ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Gives money back out of the account's credit, never more than it (409
    credit_too_low, with `available`): taken from its payments oldest first (or from `payment_id`), posted to
    the ledger as a debit of the account, audited with the reason. Send an Idempotency-Key: a retry replays the
    first answer instead of refunding twice."""
    return ctx.run(lambda db, actor: payments.refund_out(db, payments.refund_credit(db, account_id, body, actor=actor)),
                   status_code=201)


@router.get("/accounts/{account_id}/credit/refunds", response_model=ListOf[s.RefundOut], tags=["payments"])
def list_account_refunds(account_id: AccountId, limit: int | None = Limit, cursor: str | None = Cursor,
                         actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Newest first."""
    page = payments.list_refunds(session, actor=actor, account_id=account_id, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda r: payments.refund_out(session, r))
