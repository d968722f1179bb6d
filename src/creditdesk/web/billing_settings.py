"""Settings > Billing: the workspace's billing settings (default currency, multi-currency and the enabled
currencies, default credit terms, accounting periods), the seller details printed on invoices and SMS receipts,
and the conversion rates. The page for what was only PATCH /v1/billing/settings, PATCH /v1/sms/settings
{"seller"} and POST /v1/conversion-rates.

Every form calls the service the API calls (billing.settings.update_settings, sms.service.update_settings,
billing.settings.create_rate), so who may change them is the API's rule (settings.require_finance, masters):
the forms are shown only to those the service lets through, and a forged post is refused by the service
(403). Everyone may read the page, as everyone may GET /v1/billing/settings.

Each form reads every field first and shows every problem next to its field at once; the service's own
refusals (the credit period outside its range, a rate that exists) are placed next to the field they are
about, in words. Nothing is written while a form has an error."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from creditdesk import amounts, currencies
from creditdesk.billing import schemas as bs
from creditdesk.billing import settings
from creditdesk.billing.models import BillingSettings
from creditdesk.errors import CreditdeskError, InvalidInput, NotPermitted
from creditdesk.parties.models import Workspace
from creditdesk.sms import schemas as sms_schemas
from creditdesk.sms import service as sms
from creditdesk.web import forms, once
from creditdesk.web.catalog import FieldErrors, errors_of, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, redirect, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PAGE = "/settings/billing"
FREQUENCY_LABELS = {"monthly": "Monthly", "quarterly": "Quarterly", "yearly": "Yearly"}
SETTINGS_FIELDS = ("default_currency", "multi_currency", "enabled_currencies", "credit_period_days", "min_days",
                   "max_days", "period_frequency", "period_start")
SELLER_FIELDS = ("seller_name", "seller_address", "seller_tax_id", "seller_email")
RATE_FIELDS = ("from_currency", "to_currency", "rate", "valid_from")
_RATE_TEXT = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
MAX_DAYS = 3650  # bs.Days

# The services' refusals, in words and next to their field (their own messages name API fields).
PLAIN = {
    "default_currency_required": ("default_currency", "Choose the default currency: every account needs one."),
    "invalid_credit_terms": ("credit_period_days", "The credit period must lie between the shortest and the "
                                                   "longest period an account may have."),
    "period_settings_locked": ("", "The accounting periods are already set, and they are set once: nothing was "
                                   "changed."),
    "same_currency": ("to_currency", "Choose two different currencies."),
}


def may_change(user: WebUser) -> bool:
    """The API's rule, asked of the service's own check (hides the forms from those it would refuse)."""
    try:
        settings.require_finance(user.actor, "change billing settings")
    except NotPermitted:
        return False
    return True


def _currency_error(code: str) -> str:
    return f"{code or 'This'} is not a currency code: type three letters, like AUD, EUR or USD."


def _settings_values(row: BillingSettings | None) -> dict:
    if row is None:
        return {"default_currency": "", "multi_currency": False, "enabled_currencies": "",
                "credit_period_days": str(settings.DEFAULT_CREDIT_PERIOD_DAYS),
                "min_days": str(settings.DEFAULT_CREDIT_PERIOD_DAYS),
                "max_days": str(settings.DEFAULT_CREDIT_PERIOD_DAYS),
                "period_frequency": "", "period_start": ""}
    return {"default_currency": row.default_currency, "multi_currency": row.multi_currency,
            "enabled_currencies": ", ".join(row.enabled_currencies or []),
            "credit_period_days": str(row.credit_period_days), "min_days": str(row.credit_period_min_days),
            "max_days": str(row.credit_period_max_days), "period_frequency": row.period_frequency or "",
            "period_start": row.period_start.isoformat() if row.period_start else ""}


def _seller_values(seller: dict) -> dict:
    return {"seller_name": seller.get("name") or "", "seller_address": seller.get("address") or "",
            "seller_tax_id": seller.get("tax_id") or "", "seller_email": seller.get("email") or ""}


def _page(request: Request, user: WebUser, *, form: str | None = None, values: dict | None = None,
          errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    """The page; `form` names the form whose posted `values` and `errors` are shown (the others show what is
    stored)."""
    params = request.query_params
    with reading(db_of(request)) as session:
        row = settings.get_settings(session, user.workspace_id)
        workspace = session.get(Workspace, user.workspace_id)
        seller = sms.sms_settings(workspace)["seller"]
        page = settings.list_rates(session, actor=user.actor, limit=50, cursor=params.get("cursor") or None)
    shown = {"settings": _settings_values(row), "seller": _seller_values(seller),
             "rate": {"from_currency": "", "to_currency": row.default_currency if row else "", "rate": "",
                      "valid_from": ""}}
    all_errors: dict[str, dict] = {"settings": {}, "seller": {}, "rate": {}}
    if form is not None:
        shown[form] = values or {}
        all_errors[form] = errors or {}
    return render(request, "billing_settings.html", nav="settings", billing=row, seller=seller,
                  rates=page.items, next_cursor=page.next_cursor, rate_text=settings.rate_text,
                  allowed=settings.allowed_currencies(row) if row else [], values=shown, errors=all_errors,
                  frequencies=FREQUENCY_LABELS, may_change=may_change(user), status_code=status_code,
                  currency_codes=sorted(currencies.known_codes()))


@router.get(PAGE, response_class=HTMLResponse)
def billing_settings_page(request: Request, user: WebUser = Depends(current_user)):
    return _page(request, user)


def _save(request: Request, user: WebUser, form_name: str, values: dict, write: Callable[[], Response]) -> Response:
    """Run a form's write; its problems come back next to their fields with the values typed. A refusal by
    role is the service's 403, as through the API."""
    try:
        return write()
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.code in PLAIN:
            field, message = PLAIN[exc.code]
            errors = {field: message}
        else:
            errors = errors_of(exc)
        return _page(request, user, form=form_name, values=values, errors=errors,
                     status_code=exc.http_status if exc.http_status in (409, 422) else 422)


# --- currencies, credit terms, accounting periods ------------------------------------------------

def settings_request(values: dict, current: BillingSettings | None) -> bs.BillingSettingsUpdate:
    """The settings form as the API's body: every field read, every problem collected, then the schema."""
    errors: dict[str, str] = {}
    body: dict = {"multi_currency": values["multi_currency"]}
    default = values["default_currency"].upper()
    if default:
        try:
            body["default_currency"] = currencies.check_currency(default)
        except InvalidInput:
            errors["default_currency"] = _currency_error(values["default_currency"])
    elif current is None:
        errors["default_currency"] = "Choose the default currency: every account needs one."
    enabled, unknown = [], []
    for code in re.split(r"[\s,;]+", values["enabled_currencies"]):
        if not code:
            continue
        try:
            enabled.append(currencies.check_currency(code))
        except InvalidInput:
            unknown.append(code)
    if unknown:
        errors["enabled_currencies"] = (f"Not currency codes: {', '.join(unknown[:10])}. Type three-letter codes, "
                                        "like EUR, USD, separated by commas or spaces.")
    elif len(set(enabled)) > 50:
        errors["enabled_currencies"] = "Enable at most 50 currencies."
    body["enabled_currencies"] = sorted(set(enabled))
    terms: dict = {}
    for name, label in (("credit_period_days", "The credit period"), ("min_days", "The shortest credit period"),
                        ("max_days", "The longest credit period")):
        raw = values[name]
        if not raw:
            errors[name] = f"{label} is required (in days, like 30)."
            continue
        try:
            days = amounts.parse_amount(raw, 0, label=label, allow_zero=True)
        except InvalidInput:
            errors[name] = f"{label} must be a whole number of days, like 30."
            continue
        if days > MAX_DAYS:
            errors[name] = f"{label} can be at most {MAX_DAYS} days."
            continue
        terms[name] = days
    if len(terms) == 3:
        body["credit_terms"] = terms
    if current is None or current.period_frequency is None:
        frequency, start = values["period_frequency"], values["period_start"]
        day = None
        if start:
            try:
                day = date.fromisoformat(start)
            except ValueError:
                errors["period_start"] = "The first period's start is not a date (use the date picker, or YYYY-MM-DD)."
        if frequency and frequency not in FREQUENCY_LABELS:
            errors["period_frequency"] = "Choose how often periods close from the list."
        elif frequency and not start:
            errors["period_start"] = "Choose the day the first accounting period starts."
        elif start and not frequency:
            errors["period_frequency"] = "Choose how often periods close, or leave the start empty."
        if frequency and day is not None:
            body["accounting_periods"] = {"frequency": frequency, "start_date": day}
    elif values["period_frequency"] or values["period_start"]:
        # Not on the form once set: a stale page or a hand-made post. The service refuses it in words.
        body["accounting_periods"] = {"frequency": values["period_frequency"] or current.period_frequency,
                                      "start_date": values["period_start"] or current.period_start}
    if errors:
        raise FieldErrors(errors)
    try:
        return validated(bs.BillingSettingsUpdate, body)
    except FieldErrors as exc:
        exc.errors = {_settings_field(key): message for key, message in exc.errors.items()}
        raise


def _settings_field(key: str) -> str:
    return {"credit_terms": "credit_period_days", "accounting_periods": "period_start"}.get(key, key)


@router.post(PAGE, response_class=HTMLResponse)
def save_settings(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {name: forms.text(form, name, limit=600) for name in SETTINGS_FIELDS if name != "multi_currency"}
    values["multi_currency"] = form.get("multi_currency") == "on"

    def write() -> Response:
        settings.require_finance(user.actor, "change billing settings")  # before reading: a member gets 403
        with reading(db_of(request)) as session:
            current = settings.get_settings(session, user.workspace_id)
        data = settings_request(values, current)
        db_of(request).write(lambda session: settings.update_settings(session, data, actor=user.actor))
        return redirect(request, PAGE, flash="Billing settings saved.")
    return _save(request, user, "settings", values, write)


# --- seller details --------------------------------------------------------------------------------

@router.post(f"{PAGE}/seller", response_class=HTMLResponse)
def save_seller(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {name: forms.text(form, name, limit=2000) for name in SELLER_FIELDS}

    def write() -> Response:
        try:
            seller = validated(sms_schemas.SellerDetails, {
                "name": values["seller_name"], "address": values["seller_address"],
                "tax_id": values["seller_tax_id"] or None, "email": values["seller_email"] or None})
        except FieldErrors as exc:
            exc.errors = {(f"seller_{key}" if key else key): _seller_message(key, message)
                          for key, message in exc.errors.items()}
            raise
        data = sms_schemas.SmsSettingsUpdate(seller=seller)
        db_of(request).write(lambda session: sms.update_settings(session, data, actor=user.actor))
        return redirect(request, PAGE, flash="Seller details saved: new invoices and receipts print them.")
    return _save(request, user, "seller", values, write)


def _seller_message(key: str, message: str) -> str:
    labels = {"name": "Name", "address": "Address", "tax_id": "Tax id", "email": "Email"}
    better = {"name": "Business name", "address": "Address", "tax_id": "Tax number", "email": "Email"}
    label = labels.get(key)
    return better[key] + message[len(label):] if label and message.startswith(label) else message


# --- conversion rates -------------------------------------------------------------------------------

def rate_request(values: dict) -> bs.ConversionRateCreate:
    errors: dict[str, str] = {}
    codes = {}
    for name, label in (("from_currency", "From"), ("to_currency", "To")):
        try:
            codes[name] = currencies.check_currency(values[name])
        except InvalidInput:
            errors[name] = (f"{label}: choose a currency." if not values[name]
                            else _currency_error(values[name]))
    if len(codes) == 2 and codes["from_currency"] == codes["to_currency"]:
        errors["to_currency"] = PLAIN["same_currency"][1]
    raw = values["rate"].replace(",", "")
    if not raw:
        errors["rate"] = "Type the rate, like 1.635."
    elif not _RATE_TEXT.match(raw):
        errors["rate"] = "Type the rate as a number, like 1.635 (a dot for decimals)."
    else:
        try:
            settings.parse_rate(raw)
        except InvalidInput as exc:
            errors["rate"] = exc.message
    day = None
    if not values["valid_from"]:
        errors["valid_from"] = "Choose the first day the rate applies."
    else:
        try:
            day = date.fromisoformat(values["valid_from"])
        except ValueError:
            errors["valid_from"] = "Valid from is not a date (use the date picker, or YYYY-MM-DD)."
    if errors:
        raise FieldErrors(errors)
    return validated(bs.ConversionRateCreate, {**codes, "rate": raw, "valid_from": day})


@router.post(f"{PAGE}/rates", response_class=HTMLResponse)
def add_rate(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {name: forms.text(form, name, limit=100) for name in RATE_FIELDS}
    values["from_currency"] = values["from_currency"].upper()
    values["to_currency"] = values["to_currency"].upper()

    def write() -> Response:
        settings.require_finance(user.actor, "set conversion rates")  # before the key: a member gets 403
        data = rate_request(values)

        def create(session) -> once.Done:
            try:
                rate = settings.create_rate(session, data, actor=user.actor)
            except CreditdeskError as exc:
                if exc.code == "conversion_rate_exists":
                    raise FieldErrors({"valid_from": (
                        f"There is already a {data.from_currency} to {data.to_currency} rate from {data.valid_from}. "
                        "A rate is never changed (amounts converted name it): add one from another day.")}) from None
                raise
            return once.Done(PAGE + "#rates", flash=(f"Added the rate 1 {rate.from_currency} = "
                                                     f"{settings.rate_text(rate.rate_scaled)} {rate.to_currency} "
                                                     f"from {rate.valid_from}."))
        return once.run(request, user, form, create)
    return _save(request, user, "rate", values, write)
