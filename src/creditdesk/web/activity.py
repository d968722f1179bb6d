"""Activity log (the audit events, filterable, as CSV) and Settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from creditdesk import audit, clock, csvexport, timezones
from creditdesk.credits import credit_types
from creditdesk.errors import CreditdeskError, InvalidInput, NotPermitted
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import Workspace
from creditdesk.web import forms, repository
from creditdesk.web.core import (
    WebRoute,
    WebUser,
    csrf_form,
    current_user,
    db_of,
    fmt_amount,
    reading,
    next_day,
    parse_date,
    read_session,
    redirect,
    render,
    session_for,
    set_session,
    start_of,
)
from creditdesk.web.presenters import Names

router = APIRouter(route_class=WebRoute, include_in_schema=False)

COMMON_ACTIONS = ["pack.create", "pack.update", "pack.change_holder", "pack.void", "pack.expire",
                  "consumption.create", "consumption.reverse", "credit_transfer.create", "hold.create",
                  "hold.capture", "hold.release", "project.create", "project.update", "customer.create",
                  "office.create", "user.create", "user.update", "api_key.create", "workspace.update"]
VERBS = {"create": "created", "update": "changed", "delete": "deleted", "void": "voided", "expire": "expired",
         "change_holder": "holder changed", "reverse": "reversed", "capture": "captured", "release": "released",
         "write_off": "written off", "post": "posted", "suspend": "suspended", "reactivate": "reactivated",
         "terminate": "terminated", "credit": "credited", "pay": "paid", "allocate": "allocated", "revoke": "revoked",
         "sms_credit_mode": "SMS credit mode changed", "sms_settings": "SMS settings changed", "login": "logged in",
         "logout": "logged out", "complete": "completed", "start": "started", "cancel": "cancelled",
         "send": "sent", "fail": "failed", "failed": "failed", "paid": "paid", "payment_failed": "payment failed",
         "activate": "activated", "resume": "resumed", "bill": "billed", "open": "opened", "import": "imported",
         "acquire": "acquired", "return": "returned", "transfer": "transferred", "set": "set",
         "batch": "batch billed", "dismiss": "dismissed", "resolve": "resolved", "rotate_secret": "secret rotated",
         "disable": "disabled", "replay": "replayed", "line_add": "line added", "line_update": "line changed",
         "line_delete": "line removed", "line_credits": "line paid with credits",
         "line_credits_remove": "credits taken off a line", "member_add": "member added",
         "member_remove": "member removed", "credit_limit_override": "credit limit overridden",
         "credit_terms_change": "credit terms changed", "pricing_agreement": "pricing agreement set",
         "billed_to_parent": "billed to the parent account", "funded_lines_split": "funded lines split",
         "card_register": "card registered", "card_remove": "card removed", "deactivate": "switched off",
         "timeout": "timed out", "close": "closed", "correct": "corrected", "password_rehash": "password rehashed",
         "retry": "to be retried", "succeeded": "succeeded", "add_service": "service added",
         "remove_service": "service removed", "change_quantity": "quantity changed", "low": "fell below its threshold"}
# Object words people write otherwise than the code ("Sms purchase" -> "SMS purchase").
NOUNS = {"sms": "SMS", "api": "API", "crm": "CRM", "hubspot": "HubSpot"}


def action_label(action: str) -> str:
    """An audit action in words: "account.write_off" -> "Account written off" (the code stays in the title)."""
    what, _, verb = action.partition(".")
    words = [NOUNS.get(word, word) for word in what.split("_")]
    noun = " ".join(words)
    noun = noun[:1].upper() + noun[1:]
    return f"{noun} {VERBS.get(verb, verb.replace('_', ' '))}".strip()


OBJECT_TYPES = ["pack", "consumption", "credit_transfer", "hold", "project", "customer", "office", "user", "team",
                "api_key", "credit_type", "workspace", "account", "invoice", "credit_note", "payment", "refund",
                "subscription", "wallet", "asset", "activity", "product", "price", "sms_purchase", "sms_message",
                "sms_transfer", "balance_threshold", "communication", "webhook_endpoint"]


def object_type_label(kind: str) -> str:
    """The object filter's words: "sms_purchase" -> "SMS purchase"."""
    words = " ".join(NOUNS.get(word, word) for word in kind.split("_"))
    return words[:1].upper() + words[1:]
OBJECT_URLS = {"pack": "/packs/{}", "project": "/projects/{}", "office": "/offices/{}", "user": "/users/{}",
               "customer": "/customers/{}", "account": "/accounts/{}", "invoice": "/invoices/{}",
               "subscription": "/subscriptions/{}", "asset": "/assets/{}", "activity": "/activities/{}"}


def object_labels(session, workspace_id: str, names, events) -> dict[tuple[str, str], str]:
    """What a person calls each event's object (a name, a number), read once per type for the page; the id stays
    in the link's title."""
    from sqlalchemy import select

    from creditdesk.billing.invoice_models import Invoice
    from creditdesk.billing.models import BillingAccount
    from creditdesk.billing.subscription_models import Subscription
    from creditdesk.credits.models import Pack

    wanted: dict[str, set[str]] = {}
    for e in events:
        wanted.setdefault(e.object_type, set()).add(e.object_id)
    labels: dict[tuple[str, str], str] = {}
    for kind in ("office", "user", "customer", "project"):
        for object_id in wanted.get(kind, ()):
            labels[(kind, object_id)] = names.get(kind, object_id)
    from creditdesk.billing.asset_models import Asset
    from creditdesk.billing.invoice_models import CreditNote
    from creditdesk.catalog.models import Product
    from creditdesk.credits.models import CreditType
    from creditdesk.parties.models import Team
    from creditdesk.sms.models import SmsPurchase

    queries = {"pack": (Pack, lambda r: r.name), "account": (BillingAccount, lambda r: f"{r.number} · {r.name}"),
               "invoice": (Invoice, lambda r: r.number or "draft"), "subscription": (Subscription, lambda r: r.number),
               "credit_note": (CreditNote, lambda r: r.number), "product": (Product, lambda r: r.name),
               "credit_type": (CreditType, lambda r: r.name), "team": (Team, lambda r: r.name),
               "asset": (Asset, lambda r: r.description or r.serial_number),
               "sms_purchase": (SmsPurchase, lambda r: f"receipt SMS-{r.number:06d}" if r.number else "purchase")}
    # Not named here: API keys, messages and webhook endpoints, whose names, recipients and URLs are not every
    # reader's to see (a manager sees other users' keys by id only).
    for kind, (model, label) in queries.items():
        ids = wanted.get(kind)
        if ids:
            for row in session.scalars(select(model).where(model.workspace_id == workspace_id, model.id.in_(ids))):
                labels[(kind, row.id)] = label(row) or ""
    return labels
FILTERS = ("action", "object_type", "object_id", "actor_id", "since", "until")


def object_id_of(session, workspace_id: str, text: str) -> str:
    """The id of the invoice, credit note, account or subscription whose number this is (people type numbers);
    anything else as typed."""
    from sqlalchemy import func, select

    from creditdesk.billing.invoice_models import CreditNote, Invoice
    from creditdesk.billing.models import BillingAccount
    from creditdesk.billing.subscription_models import Subscription

    if "_" in text:  # ids are prefix_...; numbers never have an underscore
        return text
    for model in (Invoice, CreditNote, BillingAccount, Subscription):
        found = session.scalar(select(model.id).where(model.workspace_id == workspace_id,
                                                      func.upper(model.number) == text.upper()).limit(1))
        if found:
            return found
    return text


def log_filters(request: Request) -> tuple[dict, dict]:
    params = request.query_params
    echo = {k: (params.get(k) or "").strip()[:100] for k in FILTERS}
    kwargs = {k: echo[k] or None for k in ("action", "object_type", "object_id", "actor_id")}
    where = request.state.web_user.zone
    kwargs["since"] = start_of(parse_date(echo["since"], label="From"), where)
    kwargs["until"] = next_day(parse_date(echo["until"], label="To"), where)  # "to" the whole day
    return echo, kwargs


NAMING_KEYS = ("name", "override_rule_name", "event", "reason")


# Fields of audit rows that are amounts: money in the row's currency, or credits in its credit type's unit.
MONEY_FIELDS = {"amount", "total", "subtotal", "tax_total", "amount_due", "amount_paid", "amount_credited",
                "amount_written_off", "balance", "credit_limit", "price_paid", "unit_price", "written_off",
                "unallocated", "opening_balance", "credits_value"}
CREDIT_FIELDS = {"quantity", "remaining", "available", "held", "threshold", "balance_moved", "top_up_quantity"}


def amount_formatter(units: dict[str, tuple[str, int]]):
    """(event, key, value) -> the amount as people read it ("10.00 hours", "$1,234.56"), or None when the
    field is not an amount or its unit is not known (then the raw value is shown)."""
    from creditdesk import currencies

    def fmt(event, key: str, value):
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        row = {**(event.before or {}), **(event.after or {})}
        credits = event.object_type in ("consumption", "hold", "credit_transfer")
        if key in CREDIT_FIELDS or (credits and key in ("amount", "amount_requested", "captured")):
            ref = row.get("unit") or row.get("credit_type") or row.get("credit_type_id")
            if isinstance(ref, str) and ref in units:
                code, scale = units[ref]
                return f"{fmt_amount(value, scale)} {code}"
            return None
        if key in MONEY_FIELDS:
            currency = row.get("currency")
            if isinstance(currency, str) and currency in currencies.known_codes():
                return currencies.format_money(value, currency)
        return None
    return fmt


def changes(event, fmt=None) -> list[str]:
    """What changed, in one line per field (before -> after); creations list nothing but their name. `fmt`
    (amount_formatter) shows amounts in their unit; without it (the CSV export) values stay as stored."""
    before, after = event.before or {}, event.after or {}

    def show(key, value) -> str:
        formatted = fmt(event, key, value) if fmt is not None else None
        return formatted if formatted is not None else _short(value)
    if not before:
        # A creation or a one-off event: what names it (an override names its rule and the event it let through).
        return [f"{key.replace('_', ' ')}: {show(key, after[key])}" for key in NAMING_KEYS if after.get(key)]
    out = []
    for key, value in after.items():
        if key in ("updated_at",) or before.get(key) == value or key not in before:
            continue
        out.append(f"{key.replace('_', ' ')}: {show(key, before.get(key))} → {show(key, value)}")
    for key in ("reason", "balance_moved"):
        if key in after and key not in before and after[key] not in ("", None):
            out.append(f"{key.replace('_', ' ')}: {show(key, after[key])}")
    return out


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


@router.get("/activity", response_class=HTMLResponse)
def activity(request: Request, user: WebUser = Depends(current_user)):
    cursor = request.query_params.get("cursor") or None
    error = None
    events, next_cursor = [], None
    try:
        echo, kwargs = log_filters(request)
    except InvalidInput as exc:
        echo, kwargs, error = {k: (request.query_params.get(k) or "")[:100] for k in FILTERS}, None, exc.message
    with reading(db_of(request)) as session:
        if kwargs is not None:
            if kwargs.get("object_id"):  # a document's number (INV-000012) finds its rows as its id does
                kwargs["object_id"] = object_id_of(session, user.workspace_id, kwargs["object_id"])
            try:
                page = audit.list_audit_events(session, actor=user.actor, limit=50, cursor=cursor, **kwargs)
            except NotPermitted:
                raise
            except InvalidInput as exc:
                error = exc.message
            else:
                events, next_cursor = page.items, page.next_cursor
        else:
            audit.list_audit_events(session, actor=user.actor, limit=1)  # members: 403 even with bad filters
        names = Names(session, user.workspace_id)
        names.load("user", {e.actor_id for e in events if e.actor_id})
        labels = object_labels(session, user.workspace_id, names, events)
        types = credit_types.list_credit_types(session, actor=user.actor)
        fmt = amount_formatter({**{ct.code: (ct.code, ct.scale) for ct in types},
                                **{ct.id: (ct.code, ct.scale) for ct in types}})
        rows = [{"e": e, "actor": names.get("user", e.actor_id) if e.actor_id else e.actor_kind,
                 "label": labels.get((e.object_type, e.object_id)),
                 "url": OBJECT_URLS.get(e.object_type, "").format(e.object_id) or None, "changes": changes(e, fmt)}
                for e in events]
        staff = [(u.id, u.name) for u in parties.list_users(session, actor=user.actor, is_staff=True,
                                                              limit=500).items]
    last_30 = {"since": (clock.now().astimezone(user.zone) - timedelta(days=30)).strftime("%Y-%m-%d")}
    return render(request, "activity.html", nav="activity", rows=rows, filters=echo, next_cursor=next_cursor,
                  cursor=cursor, error=error, actions=COMMON_ACTIONS,
                  object_types=[(k, object_type_label(k)) for k in OBJECT_TYPES], type_words=object_type_label,
                  staff=staff,
                  action_label=action_label,
                  last_30=last_30)


CSV_COLUMNS = ["id", "at", "actor_kind", "actor_id", "actor", "api_key_id", "action", "object_type", "object_id",
               "changes", "before", "after"]


@router.get("/activity/export.csv")
def activity_csv(request: Request, user: WebUser = Depends(current_user)):
    db = db_of(request)
    echo, kwargs = log_filters(request)
    with reading(db) as session:
        audit.list_audit_events(session, actor=user.actor, limit=1, **kwargs)  # refuse members before streaming

    def rows() -> Iterator[list]:
        cursor = None
        while True:
            with reading(db) as session:  # one short read per page; rows are sent after it ends
                page = audit.list_audit_events(session, actor=user.actor, limit=500, cursor=cursor, **kwargs)
                names = Names(session, user.workspace_id)
                names.load("user", {e.actor_id for e in page.items if e.actor_id})
                batch = [[e.id, e.created_at.isoformat(), e.actor_kind, e.actor_id or "",
                          names.get("user", e.actor_id) if e.actor_id else "", e.api_key_id or "",
                          e.action, e.object_type, e.object_id, "; ".join(changes(e)),
                          json.dumps(e.before, sort_keys=True) if e.before is not None else "",
                          json.dumps(e.after, sort_keys=True) if e.after is not None else ""]
                         for e in page.items]
            yield from batch
            cursor = page.next_cursor
            if not cursor:
                return

    stamp = clock.now().strftime("%Y%m%d")
    return csvexport.response(CSV_COLUMNS, rows(), filename=f"activity-{stamp}.csv", bom=True)


# --- settings -----------------------------------------------------------------------------------------

def _settings_page(request: Request, user: WebUser, *, error: str | None = None, status_code: int = 200):
    with reading(db_of(request)) as session:
        workspace = session.get(Workspace, user.workspace_id)
        types = credit_types.list_credit_types(session, actor=user.actor)
        keys = parties.list_api_keys(session, actor=user.actor, limit=200).items
        names = Names(session, user.workspace_id)
        names.load("user", {k.user_id for k in keys})
        key_rows = [(k, names.get("user", k.user_id)) for k in keys]
        offices = repository.offices_by_customer(session, user.workspace_id)
    return render(request, "settings.html", nav="settings", workspace=workspace, types=types, keys=key_rows,
                  own_offices=[o for o, c in offices if o.customer_id is None], error=error,
                  status_code=status_code, time_zones=timezones.known_names())


@router.get("/settings", response_class=HTMLResponse)
def settings(request: Request, user: WebUser = Depends(current_user)):
    return _settings_page(request, user)


@router.post("/settings/workspace", response_class=HTMLResponse)
def rename_workspace(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    try:
        data = forms.validated(ps.WorkspaceUpdate, name=forms.text(form, "name", limit=300),
                               time_zone=forms.text(form, "time_zone", limit=64) or None)
        db_of(request).write(lambda session: parties.update_workspace(session, data, actor=user.actor))
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _settings_page(request, user, error=exc.message, status_code=422)
    return redirect(request, "/settings", flash="Workspace saved.")


def _changed_own_login(request: Request, user: WebUser, data: ps.UserUpdate, flash: str):
    """Apply a change of one's own password or email (the service checks the current password), then
    carry this session on: the change ended every other session of the user."""
    db = db_of(request)
    try:
        updated = db.write(lambda session: parties.update_user(session, user.id, data, actor=user.actor))
    except CreditdeskError as exc:
        if exc.code == "current_password_wrong":
            return _settings_page(request, user, error="Your current password is not right.", status_code=422)
        if isinstance(exc, NotPermitted):
            raise
        return _settings_page(request, user, error=exc.message, status_code=422)
    response = redirect(request, "/settings", flash=flash)
    previous = read_session(request)
    set_session(response, request, session_for(updated, csrf=user.csrf, started=previous.get("at")))
    return response


@router.post("/settings/password", response_class=HTMLResponse)
def change_password(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    current, new, again = (str(form.get(k) or "")[:1000] for k in ("current", "new", "again"))
    error = None
    if not current:
        error = "Give your current password."
    elif len(new) < 10:
        error = "Choose a new password of at least 10 characters."
    elif new != again:
        error = "The two new passwords differ."
    if error:
        return _settings_page(request, user, error=error, status_code=422)
    try:
        data = forms.validated(ps.UserUpdate, password=new, current_password=current)
    except CreditdeskError as exc:
        return _settings_page(request, user, error=exc.message, status_code=422)
    return _changed_own_login(request, user, data, "Password changed. Your other sessions are logged out.")


@router.post("/settings/email", response_class=HTMLResponse)
def change_email(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    current, email = (str(form.get(k) or "")[:1000] for k in ("current", "email"))
    if not current:
        return _settings_page(request, user, error="Give your current password.", status_code=422)
    try:
        data = forms.validated(ps.UserUpdate, email=email.strip()[:320], current_password=current)
    except CreditdeskError as exc:
        return _settings_page(request, user, error=exc.message, status_code=422)
    return _changed_own_login(request, user, data, "Email changed: log in with it from now on. Your other "
                                                   "sessions are logged out.")
