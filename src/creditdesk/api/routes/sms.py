"""SMS credits (seed 003): settings, the Manage SMS credits box, purchases with receipts, transfers,
logs with CSV export, and sending messages. Every rule lives in creditdesk.sms.service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from creditdesk import csvexport
from creditdesk.api.deps import (Cursor, Limit, WriteContext, get_actor, get_db, read_session, status_query, statuses,
                                 write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.credits import schemas as cs
from creditdesk.credits import transfers
from creditdesk.db import Database
from creditdesk.errors import CreditdeskError
from creditdesk.sms import schemas as s
from creditdesk.sms import service as sms
from creditdesk.sms.models import MESSAGE_STATUSES, PURCHASE_STATUSES

router = APIRouter()

Account = Query(default=None, max_length=40, description=(
    "Whose movements: `workspace` for the pool, an office's id (its pool) or a user's id; omitted, every "
    "account you manage."))
PurchaseId = Annotated[str, Path(description="The id of the SMS purchase, as its `id` field gives it.")]
MessageId = Annotated[str, Path(description="The id of the message, as its `id` field gives it.")]
CSV_DESCRIPTION = (
    "Every SMS credit movement of the last 30 days, as CSV (streamed), newest first. Columns, in this order: "
    + ", ".join(f"`{c}`" for c in sms.LOG_CSV_COLUMNS)
    + ". `date_utc` is ISO 8601 in UTC; `direction` is in or out; `movement` is purchase, grant, transfer_in, "
      "transfer_out, sent, consumed, reversal, expired or voided; `quantity` is the positive number of credits, "
      "one line per movement and account (a transfer that took several packs is one line on each side); "
      "`reference` is the movement in words with its document number (`Receipt SMS-000006`, `SMS to +61...`); "
      "`memo` is the memo typed with a transfer; `movement_id` is the transfer's, message's or ledger operation's "
      "id.")


# --- settings ---

@router.get("/sms/settings", response_model=s.SmsSettingsOut, tags=["sms"])
def get_settings(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """SMS credit mode, price, tax, seller details, payment methods and the transfer conditions."""
    return sms.get_settings(session, actor=actor)


@router.patch("/sms/settings", response_model=s.SmsSettingsOut, tags=["sms"])
def update_settings(body: s.SmsSettingsUpdate, ctx: WriteContext = Depends(write_context)):
    """Change the SMS credit mode (individual or shared), price, tax or seller details. Master users only."""
    return ctx.run(lambda db, actor: sms.update_settings(db, body, actor=actor))


# --- the Manage SMS credits box ---

@router.get("/sms/accounts", response_model=ListOf[s.SmsAccountOut], tags=["sms"])
def list_accounts(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """The accounts you may see (master: the pool and every staff user with send_sms; manage_office_credits:
    the staff of your offices; others: yourself and your team members), each with balance, frozen credits
    and the actions you may take on it. Credits left over from the other SMS credit mode are listed with
    `leftover: true` to those who may move them (individual mode: office pools; shared mode: users' credits)."""
    return list_of(sms.list_accounts(session, actor=actor), None, lambda a: a)


# --- purchases ---

@router.post("/sms/purchases", status_code=201, response_model=s.PurchaseOut, response_model_by_alias=True,
             tags=["sms"])
def create_purchase(body: s.PurchaseCreate, ctx: WriteContext = Depends(write_context)):
    """Buy SMS credits for the workspace pool (master users) or a user. The payment method is charged;
    credits are applied only once it succeeds (`status: paid`); a refused payment answers `status: failed`
    and grants nothing. The receipt is at `receipt_url` once paid. A replay (same Idempotency-Key) answers
    the purchase as it is now."""
    response = ctx.run(lambda db, actor: sms.purchase_out(sms.create_purchase(db, body, actor=actor)),
                       status_code=201)
    return _as_it_is_now(ctx, response, lambda session, object_id: sms.purchase_out(
        sms.get_purchase(session, object_id, actor=ctx.actor)))


def _as_it_is_now(ctx: WriteContext, response: Response, read) -> Response:
    """The answer of a create whose external call (charge, hand-over to the sender) runs after the commit:
    the body the transaction stored shows it still due, so answer the row as it is now, once the call is
    over (the service ran it before ctx.run returned)."""
    if response.status_code != 201:
        return response
    object_id = json.loads(response.body)["id"]
    try:
        with ctx.db.read() as session:
            body = read(session, object_id).model_dump(mode="json", by_alias=True)
    except CreditdeskError:  # no longer visible to the caller: the stored answer is all they get
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() == "idempotent-replayed"}
    return Response(json.dumps(body, separators=(",", ":")), status_code=201, media_type="application/json",
                    headers=headers)


@router.get("/sms/purchases", response_model=ListOf[s.PurchaseOut], response_model_by_alias=True, tags=["sms"])
def list_purchases(limit: int | None = Limit, cursor: str | None = Cursor,
                   status: list[str] | None = status_query(PURCHASE_STATUSES, what="purchases"),
                   actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = sms.list_purchases(session, actor=actor, limit=limit, cursor=cursor,
                              status=statuses(status, PURCHASE_STATUSES))
    return list_of(page.items, page.next_cursor, sms.purchase_out)


@router.get("/sms/purchases/{purchase_id}", response_model=s.PurchaseOut, response_model_by_alias=True,
            tags=["sms"])
def get_purchase(purchase_id: PurchaseId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return sms.purchase_out(sms.get_purchase(session, purchase_id, actor=actor))


@router.get("/sms/purchases/{purchase_id}/receipt.pdf", response_class=Response, tags=["sms"],
            responses={200: {"description": "The tax invoice / receipt (PDF).",
                             "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
def purchase_receipt(purchase_id: PurchaseId, actor: Actor = Depends(get_actor),
                     session: Session = Depends(read_session)):
    """The tax invoice / receipt of a paid purchase (409 receipt_not_available until it is paid)."""
    filename, pdf = sms.purchase_receipt(session, purchase_id, actor=actor)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.post("/sms/purchases/{purchase_id}/payment", response_model=s.PurchaseOut, response_model_by_alias=True,
             tags=["sms"])
def settle_purchase(purchase_id: PurchaseId, body: s.PaymentOutcome, ctx: WriteContext = Depends(write_context)):
    """Record the outcome of a pending payment (master users): paid applies the credits and issues the
    receipt; failed never does."""
    return ctx.run(lambda db, actor: sms.purchase_out(sms.settle_purchase(db, purchase_id, body, actor=actor)))


# --- transfers ---

@router.post("/sms/transfers", status_code=201, response_model=cs.TransferOut, response_model_by_alias=True,
             tags=["sms"])
def transfer(body: s.SmsTransferCreate, ctx: WriteContext = Depends(write_context)):
    """Transfer SMS credits (master: pool <-> any user; manage_office_credits: between users of your offices;
    others: from your own credits to a team member). Only to active users with send_sms; frozen credits may be
    transferred out, and so may a leftover office pool's (individual mode: masters to the pool or a user,
    office managers of that office to its users). `agree_to_conditions` must be true."""
    def run(db, actor):
        result = sms.transfer(db, body, actor=actor)
        return transfers.transfer_out(db, result.transfer, result.lines).model_dump(mode="json", by_alias=True)
    return ctx.run(run, status_code=201)


# --- logs ---

@router.get("/sms/logs", response_model=ListOf[s.SmsLogEntry], tags=["sms"])
def list_logs(account: str | None = Account, limit: int | None = Limit, cursor: str | None = Cursor,
              actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Every incoming and outgoing SMS credit movement of the last 30 days, newest first."""
    page = sms.list_logs(session, actor=actor, account=account, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda e: e)


@router.get("/sms/logs.csv", response_class=StreamingResponse, tags=["sms"], description=CSV_DESCRIPTION,
            responses={200: {"description": "CSV, UTF-8, with a header row.",
                             "content": {"text/csv": {"schema": {"type": "string"}}}}})
def logs_csv(account: str | None = Account, actor: Actor = Depends(get_actor), db: Database = Depends(get_db)):
    # Check access before streaming: an error after the first byte could not be a proper answer.
    with db.read() as session:
        sms.list_logs(session, actor=actor, account=account, limit=1)

    def rows() -> Iterator[list[str]]:
        with db.read() as session:
            for entry in sms.iter_logs(session, actor=actor, account=account):
                yield sms.log_csv_row(entry)

    return csvexport.response(sms.LOG_CSV_COLUMNS, rows(), filename=f"sms-logs-{account or 'all'}.csv")


# --- messages ---

@router.post("/messages", status_code=201, response_model=s.MessageOut, tags=["messages"])
def send_message(body: s.MessageCreate, ctx: WriteContext = Depends(write_context)):
    """Send an SMS. The API key's user pays from their own SMS credits, one per segment (GSM-7: 160 single,
    153 per part; UCS-2: 70 / 67), whoever it is sent for. No credits: 409 insufficient_credits and nothing
    is sent. If the sender backend refuses, the answer has `status: failed` and nothing is charged. A replay
    (same Idempotency-Key) answers the message as it is now."""
    response = ctx.run(lambda db, actor: sms.message_out(sms.send_message(db, body, actor=actor)),
                       status_code=201)
    return _as_it_is_now(ctx, response, lambda session, object_id: sms.message_out(
        sms.get_message(session, object_id, actor=ctx.actor)))


@router.get("/messages", response_model=ListOf[s.MessageOut], tags=["messages"])
def list_messages(limit: int | None = Limit, cursor: str | None = Cursor,
                  status: list[str] | None = status_query(MESSAGE_STATUSES, what="messages"),
                  sender_user_id: str | None = Query(default=None, max_length=40, description=(
                      "Only messages sent by this user (its id), who paid for them, whoever they were sent for.")),
                  actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """The outbox, newest first (master: all; manage_office_credits: your offices' users; others: your own)."""
    page = sms.list_messages(session, actor=actor, limit=limit, cursor=cursor,
                             status=statuses(status, MESSAGE_STATUSES),
                             sender_user_id=sender_user_id)
    return list_of(page.items, page.next_cursor, sms.message_out)


@router.get("/messages/{message_id}", response_model=s.MessageOut, tags=["messages"])
def get_message(message_id: MessageId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return sms.message_out(sms.get_message(session, message_id, actor=actor))
