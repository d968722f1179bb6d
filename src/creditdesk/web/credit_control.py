"""Credit control in the back office: the account page's Actions menu (Change credit terms, Suspend, Reactivate,
Terminate, Write off), the credit limit status on the accounts list and page, and Finance > Credit ratings and
Override rules. Every form calls the credit control services the API calls (who may is decided there; the
menu only hides what they would refuse), once (web/once.py), errors next to their field.

Money is typed in major units ("1500.00") and stored in minor units (web.catalog.parse_money)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from creditdesk import currencies
from creditdesk.billing import accounts, credit_control, lifecycle, settings
from creditdesk.billing import credit_schemas as cs
from creditdesk.billing.credit_models import SPEND_EVENTS, SUSPENSION_REASONS
from creditdesk.billing.models import BillingAccount
from creditdesk.errors import CreditdeskError, NotFound, NotPermitted
from creditdesk.parties import service as parties
from creditdesk.web import forms, once
from creditdesk.web.catalog import FieldErrors, errors_of, parse_money, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

EVENT_LABELS = {"invoice_post": "Posting an invoice", "purchase": "A purchase",
                "subscription_activate": "Activating a subscription", "service_add": "Adding a service",
                "wallet_debit": "A wallet debit", "credit_consume_on_account": "Consuming credits bought on account"}
REASON_LABELS = {"dispute": "Dispute", "credit_check": "Credit check"}


def _may(check, actor) -> bool:
    try:
        check(actor)
    except NotPermitted:
        return False
    return True


def may_finance(user: WebUser) -> bool:
    return _may(lambda a: settings.require_finance(a, "change credit control"), user.actor)


def may_suspend(user: WebUser) -> bool:
    return _may(lambda a: parties.require_manager(a, "suspend accounts"), user.actor)


def account_actions(user: WebUser, account: BillingAccount) -> list[tuple[str, str]]:
    """(label, path) of the Actions menu: what the account's status allows and the user may do."""
    if account.status == "terminated":
        return []
    finance, manager = may_finance(user), may_suspend(user)
    base = f"/accounts/{account.id}"
    actions = []
    if finance:
        actions.append(("Change credit terms", f"{base}/credit-terms"))
    if manager and account.status == "active":
        actions.append(("Suspend", f"{base}/suspend"))
    if manager and account.status == "suspended":
        actions.append(("Reactivate", f"{base}/reactivate"))
    if finance:
        actions += [("Write off", f"{base}/write-off"), ("Terminate", f"{base}/terminate")]
    return actions


def account_context(session, user: WebUser, account: BillingAccount) -> dict:
    """What the account page shows of credit control (finance.account_page)."""
    rating = credit_control.get_rating(session, user.workspace_id, account.credit_rating_id) \
        if account.credit_rating_id else None
    return {"credit": credit_control.credit_state(session, account), "rating": rating,
            "account_actions": account_actions(user, account), "reason_labels": REASON_LABELS}


# --- the account actions -------------------------------------------------------------------------------

ACTIONS = {
    "credit-terms": "Change credit terms",
    "suspend": "Suspend account",
    "reactivate": "Reactivate account",
    "terminate": "Terminate account",
    "write-off": "Write off account",
}


def _action_page(request: Request, user: WebUser, account_id: str, action: str, values: dict, *,
                 errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        account = accounts.get_account(session, user.workspace_id, account_id)
        billing = settings.get_settings(session, user.workspace_id)
        ratings = credit_control.all_ratings(session, user.workspace_id)
        credit = credit_control.credit_state(session, account)
        pending = lifecycle.pending_transactions(session, account) if action == "terminate" else 0
    return render(request, "credit_action.html", nav="finance", account=account, action=action,
                  title=ACTIONS[action], values=values, errors=errors or {}, billing=billing, ratings=ratings,
                  credit=credit, pending=pending, reasons=SUSPENSION_REASONS, reason_labels=REASON_LABELS,
                  status_code=status_code)


def _require(user: WebUser, action: str) -> None:
    """The services' own check, before any form is shown or read (the services check again)."""
    if action not in ACTIONS:
        raise NotFound("No such page.")
    if action in ("suspend", "reactivate"):
        parties.require_manager(user.actor, f"{action} accounts")
    else:
        settings.require_finance(user.actor, ACTIONS[action].lower())


@router.get("/accounts/{account_id}/{action}", response_class=HTMLResponse)
def action_form(account_id: str, action: str, request: Request, user: WebUser = Depends(current_user)):
    _require(user, action)
    values: dict = {"reason": "dispute" if action == "suspend" else ""}
    if action == "credit-terms":
        with reading(db_of(request)) as session:
            account = accounts.get_account(session, user.workspace_id, account_id)
        values = {"credit_period_days": str(account.credit_period_days),
                  "credit_rating_id": account.credit_rating_id or "",
                  "credit_limit": currencies.to_major(account.credit_limit, account.currency)
                  if account.credit_limit is not None else ""}
    return _action_page(request, user, account_id, action, values)


def _credit_terms_body(account: BillingAccount, values: dict) -> cs.CreditTermsChange:
    errors: dict[str, str] = {}
    fields: dict = {"credit_rating_id": values["credit_rating_id"] or None}
    try:
        days = forms.integer(values, "credit_period_days", label="Credit period (days)")
        if days is not None:
            fields["credit_period_days"] = days
    except CreditdeskError as exc:
        errors["credit_period_days"] = exc.message
    try:
        fields["credit_limit"] = parse_money(values["credit_limit"], account.currency, field="credit_limit") \
            if values["credit_limit"] else None
    except FieldErrors as exc:
        errors.update(exc.errors)
    if errors:
        raise FieldErrors(errors)
    return validated(cs.CreditTermsChange, fields)


@router.post("/accounts/{account_id}/{action}", response_class=HTMLResponse)
def action_submit(account_id: str, action: str, request: Request, user: WebUser = Depends(current_user),
                  form: FormData = Depends(csrf_form)) -> Response:
    _require(user, action)
    values = {k: forms.text(form, k, limit=1000) for k in ("credit_period_days", "credit_rating_id", "credit_limit",
                                                            "reason", "note")}
    url = f"/accounts/{account_id}"

    def act(session) -> once.Done:
        account = accounts.get_account(session, user.workspace_id, account_id)
        note = values["note"] or None
        if action == "credit-terms":
            credit_control.change_credit_terms(session, account_id, _credit_terms_body(account, values),
                                               actor=user.actor)
            return once.Done(url, flash=f"Changed the credit terms of {account.number}.")
        if action == "suspend":
            lifecycle.suspend(session, account_id, values["reason"], actor=user.actor, note=note)
            return once.Done(url, flash=f"Suspended {account.number} ({REASON_LABELS.get(values['reason'])}).")
        if action == "reactivate":
            lifecycle.reactivate(session, account_id, actor=user.actor, note=note)
            return once.Done(url, flash=f"Reactivated {account.number}.")
        if action == "terminate":
            lifecycle.terminate(session, account_id, actor=user.actor, note=note)
            return once.Done(url, flash=f"Terminated {account.number}.")
        out = lifecycle.write_off(session, account_id, values["reason"], actor=user.actor)
        return once.Done(url, flash=f"Wrote off {currencies.format_money(out.amount, out.currency)} on "
                                    f"{account.number}.")

    try:
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return _action_page(request, user, account_id, action, values, errors=errors_of(exc),
                            status_code=exc.http_status if exc.http_status in (409, 422) else 422)


# --- Finance > Credit ratings --------------------------------------------------------------------------

def _ratings_page(request: Request, user: WebUser, *, values: dict | None = None, errors: dict | None = None,
                  status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        ratings = credit_control.ratings_out(session, credit_control.all_ratings(session, user.workspace_id))
        billing = settings.get_settings(session, user.workspace_id)
    shown = sorted(set(settings.allowed_currencies(billing) if billing else []) |
                   {c for r in ratings for c in r.limits})
    return render(request, "credit_ratings.html", nav="finance", ratings=ratings, currencies=shown,
                  to_major=currencies.to_major, values=values or {}, errors=errors or {},
                  can_write=may_finance(user), status_code=status_code)


@router.get("/finance/credit-ratings", response_class=HTMLResponse)
def ratings_page(request: Request, user: WebUser = Depends(current_user)):
    return _ratings_page(request, user)


def _limits(form: FormData) -> dict[str, int]:
    """limit_AUD=1500.00 ... -> {"AUD": 150000}; an empty box: no limit in that currency."""
    limits, errors = {}, {}
    for key in form.keys():
        if not key.startswith("limit_"):
            continue
        code, text = key.removeprefix("limit_")[:3].upper(), forms.text(form, key, limit=40)
        if not text:
            continue
        try:
            limits[code] = parse_money(text, currencies.check_currency(code), field=f"limit_{code}")
        except FieldErrors as exc:
            errors.update(exc.errors)
        except CreditdeskError as exc:
            errors[f"limit_{code}"] = exc.message
    if errors:
        raise FieldErrors(errors)
    return limits


@router.post("/finance/credit-ratings", response_class=HTMLResponse)
def save_rating(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    """A new rating (no rating_id) or new limits and name of one."""
    rating_id = forms.text(form, "rating_id", limit=40)
    values = {"rating_id": rating_id, "code": forms.text(form, "code", limit=100),
              "name": forms.text(form, "name", limit=300),
              **{k: forms.text(form, k, limit=40) for k in form.keys() if k.startswith("limit_")}}

    def act(session) -> once.Done:
        limits = _limits(form)
        if rating_id:
            out = credit_control.update_rating(session, rating_id, validated(
                cs.CreditRatingUpdate, {"name": values["name"], "limits": limits}), actor=user.actor)
            return once.Done("/finance/credit-ratings", flash=f"Saved credit rating {out.code}.")
        out = credit_control.create_rating(session, validated(
            cs.CreditRatingCreate, {"code": values["code"], "name": values["name"], "limits": limits}),
            actor=user.actor)
        return once.Done("/finance/credit-ratings", flash=f"Created credit rating {out.code}.")

    try:
        settings.require_finance(user.actor, "change credit ratings")
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return _ratings_page(request, user, values=values, errors=errors_of(exc), status_code=422)


# --- Finance > Override rules --------------------------------------------------------------------------

def _rules_page(request: Request, user: WebUser, *, values: dict | None = None, errors: dict | None = None,
                status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        rules = credit_control.list_rules(session, actor=user.actor, limit=500).items
        ratings = credit_control.all_ratings(session, user.workspace_id)
    return render(request, "override_rules.html", nav="finance", rules=rules, ratings=ratings,
                  rating_codes={r.id: r.code for r in ratings}, events=SPEND_EVENTS, event_labels=EVENT_LABELS,
                  values=values or {"events": []}, errors=errors or {}, can_write=may_finance(user),
                  status_code=status_code)


@router.get("/finance/override-rules", response_class=HTMLResponse)
def rules_page(request: Request, user: WebUser = Depends(current_user)):
    return _rules_page(request, user)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@router.post("/finance/override-rules", response_class=HTMLResponse)
def new_rule(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {"name": forms.text(form, "name", limit=300), "events": [str(e)[:40] for e in form.getlist("events")][:10],
              "classifications": forms.text(form, "classifications", limit=2000),
              "credit_rating_ids": [str(r)[:40] for r in form.getlist("credit_rating_ids")][:50],
              "kyc_profiles": forms.text(form, "kyc_profiles", limit=2000)}

    def act(session) -> once.Done:
        body = validated(cs.OverrideRuleCreate, {
            "name": values["name"], "events": values["events"], "classifications": _split(values["classifications"]),
            "credit_rating_ids": values["credit_rating_ids"], "kyc_profiles": _split(values["kyc_profiles"])})
        rule = credit_control.create_rule(session, body, actor=user.actor)
        return once.Done("/finance/override-rules", flash=f"Created override rule {rule.name}.")

    try:
        settings.require_finance(user.actor, "change override credit limit rules")
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _rules_page(request, user, values=values, errors=errors_of(exc), status_code=422)


@router.post("/finance/override-rules/{rule_id}/active", response_class=HTMLResponse)
def toggle_rule(rule_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    active = form.get("active") == "yes"

    def act(session) -> once.Done:
        rule = credit_control.update_rule(session, rule_id, cs.OverrideRuleUpdate(active=active), actor=user.actor)
        return once.Done("/finance/override-rules",
                         flash=f"{'Activated' if active else 'Deactivated'} override rule {rule.name}.")
    return once.run(request, user, form, act)
