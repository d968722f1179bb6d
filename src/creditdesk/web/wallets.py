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
from creditdesk.web.catalog import parse_money
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render
from creditdesk.web.finance import Problems, form_errors, render_account

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


LABELS = {"amount": "Amount", "method": "Received by", "reference": "Reference", "reason": "Reason",
          "kind": "Pay by", "opt_in_purchases": "Opt in for purchases",
          "opt_in_subscriptions": "Opt in for subscriptions",
          "card_token": "Gateway card token", "active": "In use"}
# Refusals about one field that do not name it.
BY_CODE = {"wallet_balance_too_low": "amount", "gateway_required": "kind", "gateway_not_for_kind": "kind",
           "no_wallet": "kind", "preference_exists": "kind"}


def _values(form: FormData) -> dict:
    return {name: forms.text(form, name, limit=500) for name in form.keys()
            if name not in ("csrf_token", once.FIELD)}


def _act(request: Request, user: WebUser, form: FormData, back: str, action) -> HTMLResponse:
    """A form whose refusal is shown on a page of its own (Pay from wallet, on the invoice page)."""
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


def _on_account(request: Request, user: WebUser, form: FormData, account_id, form_id: str, action) -> HTMLResponse:
    """A form of the account page's Wallet or Payment preferences section, once; refused, the account page again
    with that form's values and every problem next to its field (`account_id` may be a function of the session:
    a preference's account)."""
    require_manager(user.actor, "manage wallets and payment preferences")  # before the key: a member gets 403
    values = _values(form)
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        errors = form_errors(exc, values=values, labels=LABELS, by_code=BY_CODE)
        if callable(account_id):
            with reading(db_of(request)) as session:
                account_id = account_id(session)
        return render_account(request, user, account_id, form=form_id, values=values, errors=errors,
                              status_code=exc.http_status if exc.http_status >= 400 else 422)


@router.post("/accounts/{account_id}/wallet/open", response_class=HTMLResponse)
def open_wallet(account_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        wallets.open_wallet(session, account_id, actor=user.actor)
        return _back(account_id, "account-wallet", "Wallet opened.")
    return _on_account(request, user, form, account_id, "wallet-open", action)


def _money_request(session, user: WebUser, account_id: str, form: FormData, model, fields: dict):
    """A top-up or refund form: the amount in the account's currency and the other fields, every problem at
    once."""
    account = accounts.get_account(session, user.workspace_id, account_id)
    problems = Problems(LABELS)
    amount = problems.read("amount", lambda: parse_money(forms.text(form, "amount", limit=30), account.currency,
                                                         field="amount"))
    if amount == 0:
        problems.add("amount", "The amount must be more than zero.")
    data = problems.schema(model, {"amount": amount if amount is not None else 1, **fields})
    problems.check()
    return account, data


@router.post("/accounts/{account_id}/wallet/top-up", response_class=HTMLResponse)
def top_up(account_id: str, request: Request, user: WebUser = Depends(current_user),
           form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        account, data = _money_request(session, user, account_id, form, ws.WalletTopUp, {
            "method": forms.text(form, "method", limit=20) or "bank_transfer",
            "reference": forms.text(form, "reference", limit=1000)})
        wallets.top_up(session, account_id, data, actor=user.actor)
        return _back(account_id, "account-wallet",
                     f"Wallet topped up by {currencies.format_money(data.amount, account.currency)}.")
    return _on_account(request, user, form, account_id, "wallet-top-up", action)


@router.post("/accounts/{account_id}/wallet/refund", response_class=HTMLResponse)
def refund(account_id: str, request: Request, user: WebUser = Depends(current_user),
           form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        account, data = _money_request(session, user, account_id, form, ws.WalletRefund, {
            "reason": forms.text(form, "reason", limit=1000),
            "method": forms.text(form, "method", limit=20) or "bank_transfer"})
        wallets.refund(session, account_id, data, actor=user.actor)
        return _back(account_id, "account-wallet",
                     f"Refunded {currencies.format_money(data.amount, account.currency)} from the wallet.")
    return _on_account(request, user, form, account_id, "wallet-refund", action)


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


def _account_of_preference(user: WebUser, preference_id: str):
    def find(session) -> str:
        return payment_preferences.get_preference(session, user.workspace_id, preference_id).account_id
    return find


@router.post("/accounts/{account_id}/payment-preferences", response_class=HTMLResponse)
def add_preference(account_id: str, request: Request, user: WebUser = Depends(current_user),
                   form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        kind = forms.text(form, "kind", limit=20)
        problems = Problems(LABELS)
        data = problems.schema(ws.PreferenceCreate, {
            "account_id": account_id, "kind": kind, "gateway": "stripe" if kind == "card" else None,
            "opt_in_subscriptions": form.get("opt_in_subscriptions") == "1",
            "opt_in_purchases": form.get("opt_in_purchases") == "1"})
        problems.check()
        pref = payment_preferences.create_preference(session, data, actor=user.actor)
        return _back(account_id, "account-payment-preferences",
                     f"Payment preference added: {payment_preferences.describe(session, pref)}.")
    return _on_account(request, user, form, account_id, "preference-add", action)


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
    return _on_account(request, user, form, _account_of_preference(user, preference_id), f"pref-{preference_id}",
                       action)


@router.post("/payment-preferences/{preference_id}/cards", response_class=HTMLResponse)
def register_card(preference_id: str, request: Request, user: WebUser = Depends(current_user),
                  form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        pref = payment_preferences.get_preference(session, user.workspace_id, preference_id)
        problems = Problems(LABELS)
        token = forms.text(form, "card_token", limit=200)
        if not token:
            problems.add("card_token", "Paste the card token the gateway's card form gave (like pm_1AbC…).")
        elif not token.replace("_", "").isalnum() or not token.isascii():
            problems.add("card_token", "A card token has letters, digits and _ only (like pm_1AbC…); card numbers "
                                       "are never typed here.")
        data = problems.schema(ws.CardRegister, {"card_token": token})
        problems.check()
        card = payment_preferences.register_card(session, preference_id, data, actor=user.actor)
        return _back(pref.account_id, "account-payment-preferences",
                     f"Card registered: {card.brand.title()} ending {card.last4}.")
    return _on_account(request, user, form, _account_of_preference(user, preference_id),
                       f"card-register-{preference_id}", action)


@router.post("/payment-preferences/{preference_id}/cards/{card_id}/remove", response_class=HTMLResponse)
def remove_card(preference_id: str, card_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        pref = payment_preferences.remove_card(session, preference_id, card_id, actor=user.actor)
        return _back(pref.account_id, "account-payment-preferences", "Card removed.")
    return _on_account(request, user, form, _account_of_preference(user, preference_id), f"card-remove-{card_id}",
                       action)
