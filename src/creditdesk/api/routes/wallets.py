"""Account wallets and payment preferences (seed 004): open a wallet, top it up, pay an invoice from it,
refund; payment preferences with their cards (through a gateway: only its tokens and the last four digits
are kept); the card charges made first when the credit limit is about to be exceeded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from creditdesk.api.deps import (AccountId, Cursor, InvoiceId, Limit, WriteContext, get_actor, read_session,
                                 write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.billing import accounts, payment_preferences, payments, wallets
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing import wallet_schemas as s
from creditdesk.billing.wallet_models import GatewayCharge
from creditdesk.errors import NotFound
from creditdesk.repository import get_in_workspace

router = APIRouter()

PreferenceId = Annotated[str, Path(description="The id of the payment preference, as its `id` field gives it.")]
CardId = Annotated[str, Path(description="The id of the card, one of this preference's (as its `id` gives it).")]
ChargeId = Annotated[str, Path(description="The id of the gateway charge, as its `id` field gives it.")]


def _wallet(db: Session, actor: Actor, account_id: str):
    account = accounts.get_account(db, actor.workspace_id, account_id)
    wallet = wallets.wallet_of(db, account.id)
    if wallet is None:
        raise NotFound(f"Account {account.number} has no wallet.", code="no_wallet", account_id=account.id)
    return wallet


@router.post("/accounts/{account_id}/wallet", status_code=201, response_model=s.WalletOut, tags=["wallets"])
def open_wallet(account_id: AccountId, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. The account's one wallet. Its money is packs of the wallet credit type of the
    account's currency (wallet_eur, ...). 409 wallet_exists (naming it), account_terminated."""
    return ctx.run(lambda db, actor: wallets.wallet_out(db, wallets.open_wallet(db, account_id, actor=actor)),
                   status_code=201)


@router.get("/accounts/{account_id}/wallet", response_model=s.WalletOut, tags=["wallets"])
def get_wallet(account_id: AccountId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """The wallet and its balance (minor units). 404 no_wallet."""
    return wallets.wallet_out(session, _wallet(session, actor, account_id))


@router.get("/accounts/{account_id}/wallet/transactions", response_model=ListOf[s.WalletTransactionOut],
            tags=["wallets"])
def list_wallet_transactions(account_id: AccountId, limit: int | None = Limit, cursor: str | None = Cursor,
                             actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Top ups, payments and refunds, newest first."""
    page = wallets.list_transactions(session, _wallet(session, actor, account_id), limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, wallets.transaction_out)


@router.post("/accounts/{account_id}/wallet/top-ups", status_code=201, response_model=s.WalletTransactionOut,
             tags=["wallets"])
def top_up_wallet(account_id: AccountId, body: s.WalletTopUp, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Money received into the wallet (a pack of that amount). The account's balance
    does not move. 404 no_wallet; 409 account_terminated."""
    return ctx.run(lambda db, actor: wallets.transaction_out(wallets.top_up(db, account_id, body, actor=actor)),
                   status_code=201)


@router.post("/accounts/{account_id}/wallet/refunds", status_code=201, response_model=s.WalletTransactionOut,
             tags=["wallets"])
def refund_wallet(account_id: AccountId, body: s.WalletRefund, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Money given back to the customer, with a reason. 409 wallet_balance_too_low
    (nothing moves)."""
    return ctx.run(lambda db, actor: wallets.transaction_out(wallets.refund(db, account_id, body, actor=actor)),
                   status_code=201)


@router.post("/invoices/{invoice_id}/pay-from-wallet", status_code=201, response_model=ins.PaymentOut,
             tags=["wallets"])
def pay_invoice_from_wallet(invoice_id: InvoiceId, body: s.WalletPay, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Pay a posted invoice from its account's wallet (all it has due unless `amount`):
    a payment of method wallet, allocated to it. 409 invoice_not_open, wallet_balance_too_low; 422
    overpayment."""
    return ctx.run(lambda db, actor: payments.payment_out(db, wallets.pay_invoice(db, invoice_id, body,
                                                                                  actor=actor)), status_code=201)


# --- payment preferences ---

@router.post("/payment-preferences", status_code=201, response_model=s.PreferenceOut, tags=["payment preferences"])
def create_preference(body: s.PreferenceCreate, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. 422 opt_in_card_or_wallet (only card and wallet preferences are opted in),
    gateway_required; 409 no_wallet, preference_exists, account_terminated."""
    return ctx.run(lambda db, actor: payment_preferences.preference_out(
        db, payment_preferences.create_preference(db, body, actor=actor)), status_code=201)


@router.get("/payment-preferences", response_model=ListOf[s.PreferenceOut], tags=["payment preferences"])
def list_preferences(account_id: str = Query(max_length=40, description=(
                         "Whose payment preferences: the account's id (required).")), actor: Actor = Depends(get_actor),
                     session: Session = Depends(read_session)):
    """The account's payment preferences, oldest first."""
    account = accounts.get_account(session, actor.workspace_id, account_id)
    rows = payment_preferences.preferences_of(session, account.id)
    return list_of(rows, None, lambda p: payment_preferences.preference_out(session, p))


@router.get("/payment-preferences/{preference_id}", response_model=s.PreferenceOut, tags=["payment preferences"])
def get_preference(preference_id: PreferenceId, actor: Actor = Depends(get_actor),
                   session: Session = Depends(read_session)):
    return payment_preferences.preference_out(
        session, payment_preferences.get_preference(session, actor.workspace_id, preference_id))


@router.patch("/payment-preferences/{preference_id}", response_model=s.PreferenceOut, tags=["payment preferences"])
def update_preference(preference_id: PreferenceId, body: s.PreferenceUpdate,
                      ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Opt in or out, choose the default card, stop using it (active false)."""
    return ctx.run(lambda db, actor: payment_preferences.preference_out(
        db, payment_preferences.update_preference(db, preference_id, body, actor=actor)))


@router.post("/payment-preferences/{preference_id}/cards", status_code=201, response_model=s.CardOut,
             tags=["payment preferences"])
def register_card(preference_id: PreferenceId, body: s.CardRegister, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Register a card with the preference's gateway from the gateway's token of it
    (Stripe: pm_...); only the gateway's ids, the brand, the last four digits and the expiry are kept. 422 with
    the gateway's code (card_declined, ...) when it refuses; 409 gateway_not_configured."""
    def run(db, actor):
        card = payment_preferences.register_card(db, preference_id, body, actor=actor)
        out = payment_preferences.preference_out(db, payment_preferences.get_preference(db, actor.workspace_id,
                                                                                          preference_id))
        return next(c for c in out.cards if c.id == card.id)
    return ctx.run(run, status_code=201)


@router.post("/payment-preferences/{preference_id}/cards/{card_id}/remove", response_model=s.PreferenceOut,
             tags=["payment preferences"])
def remove_card(preference_id: PreferenceId, card_id: CardId, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. The card is no longer used (another becomes the default)."""
    return ctx.run(lambda db, actor: payment_preferences.preference_out(
        db, payment_preferences.remove_card(db, preference_id, card_id, actor=actor)))


@router.get("/gateway-charges", response_model=ListOf[s.ChargeOut], tags=["payment preferences"])
def list_charges(account_id: str | None = Query(default=None, max_length=40, description=(
                     "Only the charges of this account (its id).")),
                 invoice_id: str | None = Query(default=None, max_length=40, description=(
                     "Only the charges made to pay this invoice (its id).")), limit: int | None = Limit,
                 cursor: str | None = Cursor, actor: Actor = Depends(get_actor),
                 session: Session = Depends(read_session)):
    """Card charges made first (newest first): pending until the gateway answers, then succeeded or failed."""
    page = payment_preferences.list_charges(session, actor=actor, account_id=account_id, invoice_id=invoice_id,
                                            limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, payment_preferences.charge_out)


@router.get("/gateway-charges/{charge_id}", response_model=s.ChargeOut, tags=["payment preferences"])
def get_charge(charge_id: ChargeId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return payment_preferences.charge_out(get_in_workspace(session, GatewayCharge, actor.workspace_id, charge_id,
                                                           label="gateway charge"))
