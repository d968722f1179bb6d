"""Wallets and payment preferences in the back office (seed 004): the account page's Wallet section (balance,
open, top up, refund, recent transactions) and Payment preferences section (add one, opt in or out, register a
card from the gateway's token, remove a card), and Pay from wallet on the invoice page. Every form calls
billing.wallets or billing.payment_preferences, the functions the API calls, once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from creditdesk import currencies
from creditdesk.billing import accounts, invoices, payment_preferences, wallets
from creditdesk.billing import wallet_schemas as ws
from creditdesk.billing.models import BillingAccount
from creditdesk.errors import CreditdeskError, NotPermitted
from creditdesk.parties.service import require_manager
from creditdesk.web import forms, once
from creditdesk.web.catalog import parse_money, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def may_manage(user: WebUser) -> bool:
    try:
        require_manager(user.actor, "manage wallets")
    except NotPermitted:
        return False
    return True


def account_context(session, user: WebUser, account: BillingAccount) -> dict:
    """What the account page shows of its wallet and payment preferences (finance.account_page)."""
    wallet = wallets.wallet_of(session, account.id)
    prefs = payment_preferences.preferences_of(session, account.id)
    return {
        "wallet": wallet,
        "wallet_balance": wallets.balance(session, wallet) if wallet is not None else None,
        "wallet_transactions": wallets.list_transactions(session, wallet, limit=10).items if wallet else [],
        "payment_preferences": [(p, payment_preferences.describe(session, p), payment_preferences.cards_of(session, p.id))
                                for p in prefs],
        "card_charges": payment_preferences.list_charges(session, actor=user.actor, account_id=account.id,
                                                         limit=10).items,
        "may_manage_wallet": may_manage(user),
        "wallet_money": lambda amount: currencies.format_money(amount, account.currency),
    }


def _back(account_id: str, anchor: str, message: str) -> once.Done:
    return once.Done(f"/accounts/{account_id}#{anchor}", flash=message)


def _act(request: Request, user: WebUser, form: FormData, back: str, action) -> HTMLResponse:
    require_manager(user.actor, "manage wallets and payment preferences")  # before the key: a member gets 403
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        # The reason in plain words, with the way back; nothing changed.
        message = "; ".join(exc.errors.values()) if hasattr(exc, "errors") else exc.message
        return render(request, "action_error.html", nav="finance", back=back, message=message,
                      status_code=exc.http_status if exc.http_status >= 400 else 422)


@router.post("/accounts/{account_id}/wallet/open", response_class=HTMLResponse)
def open_wallet(account_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        wallets.open_wallet(session, account_id, actor=user.actor)
        return _back(account_id, "account-wallet", "Wallet opened.")
    return _act(request, user, form, f"/accounts/{account_id}#account-wallet", action)


@router.post("/accounts/{account_id}/wallet/top-up", response_class=HTMLResponse)
def top_up(account_id: str, request: Request, user: WebUser = Depends(current_user),
           form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        account = accounts.get_account(session, user.workspace_id, account_id)
        amount = parse_money(forms.text(form, "amount", limit=30), account.currency, field="amount")
        data = validated(ws.WalletTopUp, {"amount": amount, "method": forms.text(form, "method", limit=20)
                                          or "bank_transfer", "reference": forms.text(form, "reference", limit=200)})
        wallets.top_up(session, account_id, data, actor=user.actor)
        return _back(account_id, "account-wallet",
                     f"Wallet topped up by {currencies.format_money(amount, account.currency)}.")
    return _act(request, user, form, f"/accounts/{account_id}#account-wallet", action)


@router.post("/accounts/{account_id}/wallet/refund", response_class=HTMLResponse)
def refund(account_id: str, request: Request, user: WebUser = Depends(current_user),
           form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        account = accounts.get_account(session, user.workspace_id, account_id)
        amount = parse_money(forms.text(form, "amount", limit=30), account.currency, field="amount")
        data = validated(ws.WalletRefund, {"amount": amount, "reason": forms.text(form, "reason", limit=500),
                                           "method": forms.text(form, "method", limit=20) or "bank_transfer"})
        wallets.refund(session, account_id, data, actor=user.actor)
        return _back(account_id, "account-wallet",
                     f"Refunded {currencies.format_money(amount, account.currency)} from the wallet.")
    return _act(request, user, form, f"/accounts/{account_id}#account-wallet", action)


@router.post("/invoices/{invoice_id}/pay-from-wallet", response_class=HTMLResponse)
def pay_from_wallet(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
                    form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        invoice = invoices.get_invoice(session, user.workspace_id, invoice_id)
        wallet = wallets.wallet_of(session, invoice.account_id)
        have = wallets.balance(session, wallet) if wallet is not None else 0
        amount = min(have, invoice.amount_due) or None
        pay = wallets.pay_invoice(session, invoice_id, ws.WalletPay(amount=amount), actor=user.actor)
        return once.Done(f"/invoices/{invoice_id}",
                         flash=f"Paid {currencies.format_money(pay.amount, pay.currency)} from the wallet.")
    return _act(request, user, form, f"/invoices/{invoice_id}", action)


@router.post("/accounts/{account_id}/payment-preferences", response_class=HTMLResponse)
def add_preference(account_id: str, request: Request, user: WebUser = Depends(current_user),
                   form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        kind = forms.text(form, "kind", limit=20)
        data = validated(ws.PreferenceCreate, {
            "account_id": account_id, "kind": kind, "gateway": "stripe" if kind == "card" else None,
            "opt_in_subscriptions": form.get("opt_in_subscriptions") == "1",
            "opt_in_purchases": form.get("opt_in_purchases") == "1"})
        pref = payment_preferences.create_preference(session, data, actor=user.actor)
        return _back(account_id, "account-payment-preferences",
                     f"Payment preference added: {payment_preferences.describe(session, pref)}.")
    return _act(request, user, form, f"/accounts/{account_id}#account-payment-preferences", action)


@router.post("/payment-preferences/{preference_id}/update", response_class=HTMLResponse)
def update_preference(preference_id: str, request: Request, user: WebUser = Depends(current_user),
                      form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        pref = payment_preferences.get_preference(session, user.workspace_id, preference_id)
        data = ws.PreferenceUpdate(opt_in_subscriptions=form.get("opt_in_subscriptions") == "1",
                                   opt_in_purchases=form.get("opt_in_purchases") == "1",
                                   active=form.get("active") == "1")
        payment_preferences.update_preference(session, preference_id, data, actor=user.actor)
        return _back(pref.account_id, "account-payment-preferences", "Payment preference saved.")
    return _act(request, user, form, "/finance/accounts", action)


@router.post("/payment-preferences/{preference_id}/cards", response_class=HTMLResponse)
def register_card(preference_id: str, request: Request, user: WebUser = Depends(current_user),
                  form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        pref = payment_preferences.get_preference(session, user.workspace_id, preference_id)
        data = validated(ws.CardRegister, {"card_token": forms.text(form, "card_token", limit=100)})
        card = payment_preferences.register_card(session, preference_id, data, actor=user.actor)
        return _back(pref.account_id, "account-payment-preferences",
                     f"Card registered: {card.brand.title()} ending {card.last4}.")
    return _act(request, user, form, "/finance/accounts", action)


@router.post("/payment-preferences/{preference_id}/cards/{card_id}/remove", response_class=HTMLResponse)
def remove_card(preference_id: str, card_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        pref = payment_preferences.remove_card(session, preference_id, card_id, actor=user.actor)
        return _back(pref.account_id, "account-payment-preferences", "Card removed.")
    return _act(request, user, form, "/finance/accounts", action)
