"""Credits: the active packs report (seed 000 "Credit Pack Content Plan Tracking") with its CSV export,
the pack page with its credit history, and the corrections: status label and notes, change holder,
void, grant, and bulk import from CSV. Every change goes through the credits services."""

from __future__ import annotations

import base64
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData, UploadFile

from creditdesk import csvexport
from creditdesk.credits import importer, reads
from creditdesk.credits import schemas as s
from creditdesk.credits import governance, packs, transfers
from creditdesk.credits.models import CreditType, Pack
from creditdesk.errors import CreditdeskError, InvalidInput, NotPermitted
from creditdesk.ledger.models import LedgerAccount
from creditdesk.parties import service as parties
from creditdesk.web import forms, once, repository
from creditdesk.web.core import (
    SOURCE_LABELS,
    WebRoute,
    WebUser,
    csrf_form,
    current_user,
    db_of,
    reading,
    end_of,
    fmt_amount,
    fmt_date,
    parse_amount,
    parse_date,
    redirect,
    render,
    render_fragment,
    safe_next,
    start_of,
)
from creditdesk.web.presenters import Names, credit_types, holder_choices, pack_rows

router = APIRouter(route_class=WebRoute, include_in_schema=False)
# Fixed paths under /packs/ (new, import) are matched before /packs/{pack_id}: mount() includes this first.
fixed = APIRouter(route_class=WebRoute, include_in_schema=False)

REPORT_SORTS = {"expires_at": "Expiry", "remaining": "Remaining", "name": "Name", "created": "Created",
                "quantity": "Original", "priority": "Priority"}
FILTER_KEYS = ("q", "credit_type", "office_id", "status_label", "remaining_min", "remaining_max", "expires_from",
               "expires_to", "left_below", "not_started", "sort", "order")
TRAIL_KEPT = 20  # previous pages remembered in the URL for "Previous" (keyset pages cannot go back by themselves)
PAGE_SIZES = (25, 50, 100, 200)


# --- the active packs report ----------------------------------------------------------------------

@dataclass
class ReportFilters:
    echo: dict  # what the form shows and the links carry (as typed)
    kwargs: dict  # what list_packs gets
    errors: list[str]


def report_filters(request: Request, types: dict, where=None) -> ReportFilters:
    """The report's filters from the URL (a view can be bookmarked and shared). `where`: the workspace's time
    zone, in which the expiry dates are days."""
    from datetime import UTC

    where = where or UTC
    params = request.query_params
    echo = {k: (params.get(k) or "").strip()[:200] for k in FILTER_KEYS}
    errors: list[str] = []
    kwargs: dict = {"status": ["active"]}
    if echo["q"]:
        kwargs["q"] = echo["q"]
    if echo["credit_type"]:
        if echo["credit_type"] in types:
            kwargs["credit_type"] = echo["credit_type"]
        else:
            errors.append(f"Unknown credit type {echo['credit_type']!r}.")
    if echo["office_id"]:
        kwargs["office_id"] = echo["office_id"]
    if echo["status_label"]:
        kwargs["status_label"] = echo["status_label"]
    # Remaining is typed in the credit type's own unit (1.5 hours), so the scale must be known.
    scales = {ct.scale for ct in types.values()}
    if echo["remaining_min"] or echo["remaining_max"]:
        if "credit_type" in kwargs:
            scale = types[kwargs["credit_type"]].scale
        elif len(scales) == 1:
            scale = scales.pop()
        else:
            scale = None
            errors.append("Choose a credit type to filter by remaining balance: credit types count in "
                          "different units.")
        if scale is not None:
            for key, label in (("remaining_min", "Remaining from"), ("remaining_max", "Remaining to")):
                if echo[key]:
                    try:
                        kwargs[key] = parse_amount(echo[key], scale, label=label, allow_zero=True)
                    except InvalidInput as exc:
                        errors.append(exc.message)
    for key, label, convert in (("expires_from", "Expires from", start_of), ("expires_to", "Expires to", end_of)):
        try:
            day = parse_date(echo[key], label=label)
        except InvalidInput as exc:
            errors.append(exc.message)
            continue
        if day:
            kwargs[key] = convert(day, where)
    if "expires_from" in kwargs and "expires_to" in kwargs and kwargs["expires_from"] > kwargs["expires_to"]:
        errors.append(f"Expires from ({echo['expires_from']}) is after Expires to ({echo['expires_to']}): swap them.")
    if "remaining_min" in kwargs and "remaining_max" in kwargs and kwargs["remaining_min"] > kwargs["remaining_max"]:
        errors.append(f"Remaining from ({echo['remaining_min']}) is more than Remaining to "
                      f"({echo['remaining_max']}): swap them.")
    if echo["left_below"]:
        if echo["left_below"].isdigit() and 1 <= int(echo["left_below"]) <= 100:
            kwargs["left_below"] = int(echo["left_below"])
        else:
            errors.append("Less than ... % left: a whole percentage from 1 to 100.")
    if echo["not_started"]:
        echo["not_started"] = "1"
        kwargs["not_started"] = True
    if echo["sort"] not in REPORT_SORTS:
        echo["sort"] = "expires_at"
    if echo["order"] not in ("asc", "desc"):
        echo["order"] = "asc"
    kwargs["sort"] = echo["sort"]
    kwargs["descending"] = echo["order"] == "desc"
    return ReportFilters(echo, kwargs, errors)


def _page_size(request: Request) -> int:
    try:
        size = int(request.query_params.get("limit") or 50)
    except ValueError:
        size = 50
    return size if size in PAGE_SIZES else 50


TOTALS_CAP = 20_000  # past this many packs the report says "more than" instead of adding them up


def report_presets(today) -> list[tuple[str, str, dict]]:
    """(id, label, filters) of the report's one-click views."""
    from datetime import timedelta

    return [("expiring-30", "Expiring in 30 days", {"expires_from": today.isoformat(),
                                                     "expires_to": (today + timedelta(days=30)).isoformat()}),
            ("left-20", "Under 20 % left", {"left_below": "20"}),
            ("not-started", "Not started", {"not_started": "1"})]


@router.get("/credits", response_class=HTMLResponse)
def report(request: Request, user: WebUser = Depends(current_user)):
    from creditdesk import clock, timezones

    db = db_of(request)
    cursor = request.query_params.get("cursor") or None
    trail = [c for c in (request.query_params.get("trail") or "").split(",") if c][-TRAIL_KEPT:]
    try:
        page_number = max(1, int(request.query_params.get("page") or 1))
    except ValueError:
        page_number = 1
    if not cursor:
        page_number, trail = 1, []
    limit = _page_size(request)
    today = timezones.local_day(clock.now(), user.zone)
    with reading(db) as session:
        types = credit_types(session, user.actor)
        filters = report_filters(request, types, user.zone)
        rows, next_cursor, totals = [], None, None
        if not filters.errors:
            try:
                page = reads.list_packs(session, actor=user.actor, limit=limit, cursor=cursor, **filters.kwargs)
            except InvalidInput as exc:  # a stale or hand-made cursor
                filters.errors.append(exc.message)
            else:
                rows = pack_rows(session, user.actor, page.items)
                next_cursor = page.next_cursor
                counted = {k: v for k, v in filters.kwargs.items() if k not in ("sort", "descending")}
                count, capped, by_type = reads.pack_totals(session, actor=user.actor, cap=TOTALS_CAP, **counted)
                totals = {"count": count, "capped": capped,
                          "by_type": [(types[code].name if code in types else code, fmt_amount(left, _scale(types, code)),
                                       fmt_amount(total, _scale(types, code)), code, n)
                                      for code, (n, left, total) in by_type.items()]}
        choices = holder_choices(session, user.workspace_id)
        labels = reads.status_labels(session, actor=user.actor, status=["active"])
    first = (page_number - 1) * limit + 1
    position = {"first": first, "last": first + len(rows) - 1, "page": page_number}
    # Previous: the cursor before this one (the first page has none); the trail is what lies before it.
    previous = None
    if cursor:
        previous = {"cursor": trail[-1] if trail and page_number > 2 else "",
                    "trail": ",".join(trail[:-1]) if page_number > 2 else "", "page": page_number - 1}
        if page_number > 2 and not trail:  # the trail was cut: back to the start
            previous = {"cursor": "", "trail": "", "page": 1}
    following = None
    if next_cursor:
        following = {"cursor": next_cursor, "trail": ",".join([*trail, cursor][-TRAIL_KEPT:]) if cursor else "",
                     "page": page_number + 1}
    presets = report_presets(today)
    active = next((pid for pid, _, values in presets
                   if all(filters.echo.get(k) == v for k, v in values.items())), None)
    return render(request, "credits.html", nav="credits", rows=rows, filters=filters.echo, errors=filters.errors,
                  print_summary=_filters_in_words(filters.echo, types, choices["offices"]),
                  next_cursor=next_cursor, cursor=cursor, limit=limit, types=types, offices=choices["offices"],
                  labels=labels, sorts=REPORT_SORTS, page_sizes=PAGE_SIZES, totals=totals, position=position,
                  previous=previous, following=following, presets=presets, active_preset=active,
                  now=clock.now(), today=today,
                  here=request.url.path + (f"?{request.url.query}" if request.url.query else ""))


def _scale(types: dict, code: str) -> int:
    return types[code].scale if code in types else 0


EXPORT_COLUMNS = ["pack_id", "name", "holder_kind", "holder", "customer", "credit_type", "remaining", "held",
                  "original", "expires", "status", "status_label", "notes", "relationship_manager",
                  "project_manager", "source", "external_ref", "projects"]


@router.get("/credits/export.csv")
def export_report(request: Request, user: WebUser = Depends(current_user)):
    """The filtered report as CSV, streamed page by page (one short read transaction per page)."""
    db = db_of(request)
    with reading(db) as session:
        filters = report_filters(request, credit_types(session, user.actor), user.zone)
    if filters.errors:
        raise InvalidInput(" ".join(filters.errors), code="invalid_filters")

    def rows() -> Iterator[list]:
        cursor = None
        while True:
            with reading(db) as session:  # one short read per page; rows are sent after it ends
                page = reads.list_packs(session, actor=user.actor, limit=500, cursor=cursor, **filters.kwargs)
                batch = []
                for row in pack_rows(session, user.actor, page.items):
                    v = row.view
                    batch.append([
                        v.id, v.name, v.holder["kind"], row.holder.name, row.customer_name, v.credit_type,
                        csvexport.amount(v.remaining, row.scale), csvexport.amount(v.held, row.scale),
                        csvexport.amount(v.quantity, row.scale), fmt_date(v.expires_at, user.zone), v.status,
                        v.status_label, v.notes, row.relationship_manager, row.project_manager, v.source,
                        v.external_ref or "", "; ".join(name for _, name in row.projects)])
            yield from batch
            cursor = page.next_cursor
            if not cursor:
                return

    return csvexport.response(EXPORT_COLUMNS, rows(), filename="active-credit-packs.csv", bom=True)


# --- one pack --------------------------------------------------------------------------------------

def _load_pack(session, user: WebUser, pack_id: str):
    pack = reads.get_visible_pack(session, actor=user.actor, pack_id=pack_id)
    account = session.get(LedgerAccount, pack.ledger_account_id)
    return pack, account


def _filters_in_words(echo: dict, types: dict, offices: list) -> str:
    """The report's filters as a printed page says them ("active packs, credit type Work hours, expiring
    2026-12-01 to 2026-12-31"): a printout shows what it is a list of."""
    said = []
    if echo.get("q"):
        said.append(f'search "{echo["q"]}"')
    if echo.get("credit_type"):
        ct = types.get(echo["credit_type"])
        said.append(f"credit type {ct.name if ct else echo['credit_type']}")
    if echo.get("office_id"):
        said.append("office " + next((label for oid, label in offices if oid == echo["office_id"]), echo["office_id"]))
    if echo.get("status_label"):
        said.append(f'status label "{echo["status_label"]}"')
    if echo.get("remaining_min") or echo.get("remaining_max"):
        said.append(f"remaining {echo.get('remaining_min') or '…'} to {echo.get('remaining_max') or '…'}")
    if echo.get("left_below"):
        said.append(f"under {echo['left_below']} % left")
    if echo.get("not_started"):
        said.append("not started yet")
    if echo.get("expires_from") or echo.get("expires_to"):
        said.append(f"expiring {echo.get('expires_from') or '…'} to {echo.get('expires_to') or '…'}")
    return ("active packs, " + ", ".join(said)) if said else "all active packs"


def history_rows(session, user: WebUser, pack_id: str, names: Names) -> list[dict]:
    entries = reads.pack_history(session, actor=user.actor, pack_id=pack_id)
    names.load("user", {e.actor_id for e in entries if e.actor_id})
    project_ids = {e.reference.id for e in entries if e.reference.kind == "project" and e.reference.id}
    names.load("project", project_ids)
    pack = session.get(Pack, pack_id)
    # Invoice lines (credits spent on an invoice, a package bought on one) by their invoice's number.
    line_ids = {e.reference.id for e in entries if e.reference.kind == "invoice_line" and e.reference.id}
    if pack.source == "purchase" and (pack.external_ref or "").startswith("inl_"):
        line_ids.add(pack.external_ref)
    invoice_lines = _invoice_lines(session, user.workspace_id, line_ids)
    reversible = set()
    if governance.can_manage_packs(user.actor):  # the service decides at reversal (governed types: masters)
        reversible = repository.posted_consumption_ids(
            session, user.workspace_id, {e.operation_id for e in entries if e.kind == "consume"})
    reasons = _reversal_reasons(session, user.workspace_id,
                                {e.operation_id for e in entries if e.kind == "reversal" and e.operation_id})
    out = []
    for e in entries:
        ref = e.reference
        link_text, link = None, ref.url
        if ref.kind == "pack" and ref.id == pack_id and e.kind != "grant":
            link = None  # an expiry or a void of the pack itself: nothing to point at (never "Granted manually")
        elif ref.kind == "project" and ref.id:
            link_text = f"Project: {names.get('project', ref.id)}"
        elif ref.kind == "pack" and ref.id == pack_id:
            # The pack's own grant: say where it came from rather than link the page to itself.
            link = None
            if pack.source == "purchase" and pack.external_ref and \
                    pack.internal_key == f"sms_purchase:{pack.external_ref}":  # the purchase's own pack
                link, link_text = f"/sms/purchases/{pack.external_ref}", "SMS purchase (receipt)"
            elif pack.external_ref in invoice_lines:  # a credit package bought on an invoice
                invoice_id, label = invoice_lines[pack.external_ref]
                link, link_text = f"/invoices/{invoice_id}", f"Bought on {label}"
            else:
                link_text = SOURCE_LABELS.get(pack.source, pack.source or "")
                if pack.external_ref:
                    link_text += f" {pack.external_ref}"
        elif ref.kind == "sms_message" and ref.id:
            link, link_text = "/sms/messages", "SMS message"
        elif ref.kind == "invoice_line" and ref.id in invoice_lines:
            invoice_id, label = invoice_lines[ref.id]
            link, link_text = f"/invoices/{invoice_id}", label.capitalize()
        elif ref.kind and ref.id:
            # A reference the caller gave ("invoice INV-2026-0043") is shown; one of our own ids (xfer_01m8...)
            # means nothing to a person.
            words = ref.kind.replace('_', ' ').capitalize()
            link_text = words if _INTERNAL_ID.fullmatch(ref.id) else f"{words} {ref.id}"
        detail = []
        if e.kind == "reversal" and reasons.get(e.operation_id):
            detail.append(f"Reason: {reasons[e.operation_id]}")
        for key, change in (e.detail or {}).items():
            if key == "reason":
                if change:
                    detail.append(f"Reason: {change}")
            elif key == "held":
                continue
            elif isinstance(change, dict):
                before, after = change.get("before"), change.get("after")
                if key == "holder_id":
                    continue  # shown through holder_kind/holder below
                detail.append(f"{key.replace('_', ' ')}: {before or '—'} → {after or '—'}")
        if e.kind == "holder_change" and e.detail:
            before_id = (e.detail.get("holder_id") or {}).get("before")
            after_id = (e.detail.get("holder_id") or {}).get("after")
            kinds = e.detail.get("holder_kind") or {}
            before_kind = kinds.get("before") or pack.holder_kind
            after_kind = kinds.get("after") or pack.holder_kind
            detail = [f"From {names.get(before_kind, before_id)} to {names.get(after_kind, after_id)}"] + [
                d for d in detail if not d.startswith(("holder kind", "customer id"))]
        out.append({"entry": e, "actor": names.get("user", e.actor_id) if e.actor_id else "system",
                    "link": link, "link_text": link_text, "detail": detail,
                    "held": (e.detail or {}).get("held"),
                    "reverse": (f"/consumptions/{e.operation_id}/reverse?back=/packs/{pack_id}"
                                if e.kind == "consume" and e.operation_id in reversible else None)})
    return out


_INTERNAL_ID = re.compile(r"[a-z]{2,8}_[0-9a-z]{20,}")


def _reversal_reasons(session, workspace_id: str, consumption_ids: set[str]) -> dict[str, str]:
    """consumption id -> the reason given when it was reversed (kept in its audit row)."""
    if not consumption_ids:
        return {}
    from sqlalchemy import select

    from creditdesk.audit import AuditEvent

    rows = session.scalars(select(AuditEvent).where(
        AuditEvent.workspace_id == workspace_id, AuditEvent.action == "consumption.reverse",
        AuditEvent.object_id.in_(sorted(consumption_ids))))
    return {row.object_id: (row.after or {}).get("reason") or "" for row in rows}


def _invoice_lines(session, workspace_id: str, line_ids: set[str]) -> dict[str, tuple[str, str]]:
    """line id -> (invoice id, "invoice INV-000012, line 2") for lines of this workspace."""
    if not line_ids:
        return {}
    from sqlalchemy import select

    from creditdesk.billing.invoice_models import Invoice, InvoiceLine

    rows = session.execute(select(InvoiceLine.id, InvoiceLine.position, Invoice.id, Invoice.number)
                           .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
                           .where(Invoice.workspace_id == workspace_id, InvoiceLine.id.in_(sorted(line_ids))))
    return {line_id: (invoice_id, f"invoice {number or '(draft)'}, line {position}")
            for line_id, position, invoice_id, number in rows}



KIND_LABELS = {"grant": "Granted", "consume": "Consumed", "hold": "Held", "capture": "Captured",
               "release": "Released", "reversal": "Returned (reversal)", "transfer_in": "Transferred in",
               "transfer_out": "Transferred out", "expire": "Expired (breakage)", "void": "Voided (breakage)",
               "holder_change": "Holder changed", "voided": "Voided", "edited": "Edited", "expired": "Expired"}


@router.get("/packs/{pack_id}", response_class=HTMLResponse)
def pack_page(pack_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        pack, account = _load_pack(session, user, pack_id)
        names = Names(session, user.workspace_id)
        row = pack_rows(session, user.actor, [(pack, account)], names=names)[0]
        history = history_rows(session, user, pack.id, names)
        origin = session.get(Pack, pack.origin_pack_id) if pack.origin_pack_id else None
    return render(request, "pack.html", nav="credits", row=row, history=history, kinds=KIND_LABELS, origin=origin,
                  back=safe_next(request.query_params.get("back"), "/credits"))


@router.get("/packs/{pack_id}/history", response_class=HTMLResponse)
def pack_history(pack_id: str, request: Request, user: WebUser = Depends(current_user)):
    """The credit history dialog's content (the report's eye icon); a full page without JavaScript."""
    with reading(db_of(request)) as session:
        pack, account = _load_pack(session, user, pack_id)
        names = Names(session, user.workspace_id)
        row = pack_rows(session, user.actor, [(pack, account)], names=names, with_projects=False)[0]
        history = history_rows(session, user, pack.id, names)
    if request.query_params.get("fragment"):
        # The user in the context: the template's date filters show moments in the workspace's time zone.
        return HTMLResponse(render_fragment("_history.html", row=row, history=history, kinds=KIND_LABELS,
                                            user=user))
    return render(request, "history.html", nav="credits", row=row, history=history, kinds=KIND_LABELS)


@router.post("/packs/{pack_id}/edit")
def edit_pack(pack_id: str, request: Request, user: WebUser = Depends(current_user),
              form: FormData = Depends(csrf_form)):
    """Status label and special notes (credit drives); audited by update_pack."""
    back = safe_next(forms.text(form, "next"), f"/packs/{pack_id}")
    fields = {name: forms.text(form, name, limit=20_000) for name in ("status_label", "notes") if name in form}
    if not fields:
        return redirect(request, back, flash="Nothing to change.", level="error")
    try:
        data = forms.validated(s.PackUpdate, **fields)
        pack = db_of(request).write(lambda session: packs.update_pack(session, pack_id, data, actor=user.actor))
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return redirect(request, back, flash=exc.message, level="error")
    what = " and ".join({"status_label": "status label", "notes": "notes"}[k] for k in fields)
    return redirect(request, back, flash=f"Saved the {what} of {pack.name}.")


# --- change holder and void (with a confirmation that says what will happen) -----------------------

# Where the service's refusals of a change of holder go on the form (by their code); the rest at the top.
CHANGE_HOLDER_FIELDS = {"not_found": "holder", "same_holder": "holder", "holder_id_required": "holder",
                        "recipient_cannot_send_sms": "holder", "invalid_sms_account": "holder",
                        "holder_required": "holder"}


def _holder_choices(session, user: WebUser, pack: Pack) -> dict:
    """The holder picker with only the holders the credit type's rules let this user move the pack to (SMS
    packs: governance.sms_receivers, the rule the move itself applies), so a refusal never waits for "Yes"."""
    choices = holder_choices(session, user.workspace_id)
    ct = session.get(CreditType, pack.credit_type_id)
    if not governance.is_governed(ct):
        return {**choices, "workspace": True, "governed": False}
    ref = packs.HolderRef
    candidates = [ref("workspace", user.workspace_id), *(ref("office", i) for i, _ in choices["offices"]),
                  *(ref("user", i) for i, _ in choices["users"])]
    allowed = {(h.kind, h.id) for h in governance.sms_receivers(
        session, user.actor, ct, ref(pack.holder_kind, pack.holder_id), candidates)}
    return {"offices": [(i, label) for i, label in choices["offices"] if ("office", i) in allowed],
            "users": [(i, label) for i, label in choices["users"] if ("user", i) in allowed],
            "workspace": ("workspace", user.workspace_id) in allowed, "governed": True}


def _with_message(errors: dict[str, str], fallback: str) -> tuple[str | None, dict[str, str]]:
    """The top message of a form and the messages of its fields."""
    errors = dict(errors)
    return errors.pop("", None) or (fallback if errors else None), errors


@router.get("/packs/{pack_id}/change-holder", response_class=HTMLResponse)
def change_holder_form(pack_id: str, request: Request, user: WebUser = Depends(current_user)):
    try:
        governance.require_manage_packs(user.actor, "change a pack's holder")
    except NotPermitted as exc:
        raise forms.worded(exc) from None
    with reading(db_of(request)) as session:
        pack, account = _load_pack(session, user, pack_id)
        row = pack_rows(session, user.actor, [(pack, account)])[0]
        choices = _holder_choices(session, user, pack)
    return render(request, "change_holder.html", nav="credits", row=row, choices=choices, confirm=None,
                  error=None, errors={}, selected="", reason="")


@router.post("/packs/{pack_id}/change-holder", response_class=HTMLResponse)
def change_holder(pack_id: str, request: Request, user: WebUser = Depends(current_user),
                  form: FormData = Depends(csrf_form)):
    try:
        governance.require_manage_packs(user.actor, "change a pack's holder")
    except NotPermitted as exc:
        raise forms.worded(exc) from None
    earlier = once.answered(request, user, form)  # this form (either step) was already done
    if earlier is not None:
        return earlier
    db = db_of(request)
    selected, reason = forms.text(form, "holder", limit=100), forms.text(form, "reason", limit=2000)
    confirmed = forms.text(form, "confirm") == "yes"
    errors: dict[str, str] = {}
    data = target = None
    words = {"not_found": "Choose the new holder from the list.", "holder_required": "Choose the new holder."}
    with reading(db) as session:
        pack, account = _load_pack(session, user, pack_id)
        row = pack_rows(session, user.actor, [(pack, account)])[0]
        choices = _holder_choices(session, user, pack)
        # Every field checked before answering: the holder, then the schema (the reason's length).
        try:
            kind, holder_id = forms.holder_value(selected)
        except InvalidInput as exc:
            kind, holder_id = None, None
            errors.update(forms.placed(exc, CHANGE_HOLDER_FIELDS, words=words))
        data, schema = forms.schema_errors(s.ChangeHolder, {
            "holder": {"kind": kind or "workspace", "id": holder_id}, "reason": reason}, fields={"holder": "holder"})
        for name, message in schema.items():
            errors.setdefault(name, message)
        if not errors:
            try:
                target = Names(session, user.workspace_id).holder(kind, holder_id or user.workspace_id)
                holder, _ = packs.resolve_holder(session, user.workspace_id, kind, holder_id)
                # The credit type's rules at the first step (SMS packs: who may hold them), not only at "Yes".
                governance.authorize_transfer(session, user.actor, session.get(CreditType, pack.credit_type_id),
                                              packs.HolderRef(pack.holder_kind, pack.holder_id), holder,
                                              what="change a pack's holder")
            except NotPermitted as exc:
                if exc.code in ("not_permitted", "pool_master_only"):  # the SMS rules: about the chosen holder
                    errors.update({"holder": forms.plain(exc.message)})
                else:
                    raise forms.worded(exc) from None
            except CreditdeskError as exc:
                errors.update(forms.placed(exc, CHANGE_HOLDER_FIELDS, words=words))
        if errors:
            data = target = None
    if data is not None and confirmed:
        def move(session) -> once.Done:
            moved = transfers.change_holder(session, pack_id, data, actor=user.actor)
            # What remained went to a new pack of the new holder; this pack keeps its history.
            return once.Done(f"/packs/{moved.id}",
                             flash=f"Moved {fmt_amount(moved.quantity, row.scale)} {row.view.credit_type} of "
                                   f"{row.view.name} from {row.holder.name} to {target.name}: they are in this "
                                   f"new pack now; the original keeps its history.")
        try:
            return once.run(request, user, form, move)
        except NotPermitted as exc:
            raise forms.worded(exc) from None
        except CreditdeskError as exc:
            errors = forms.placed(exc, CHANGE_HOLDER_FIELDS, words=words)
    error, errors = _with_message(errors, "Nothing was moved: correct the fields marked below.")
    # The confirmation carries the key of the form it confirms.
    return render(request, "change_holder.html", nav="credits", row=row, choices=choices,
                  confirm=target if not error else None, error=error, errors=errors, selected=selected,
                  reason=reason, once_key=once.key_of(form), status_code=200 if not error else 422)


@router.post("/packs/{pack_id}/void", response_class=HTMLResponse)
def void_pack(pack_id: str, request: Request, user: WebUser = Depends(current_user),
              form: FormData = Depends(csrf_form)):
    db = db_of(request)
    reason = forms.text(form, "reason", limit=2000)
    confirmed = forms.text(form, "confirm") == "yes"
    try:
        governance.require_manage_packs(user.actor, "void packs")
    except NotPermitted as exc:
        raise forms.worded(exc) from None
    earlier = once.answered(request, user, form)  # this form (either step) was already done
    if earlier is not None:
        return earlier
    with reading(db) as session:
        pack, account = _load_pack(session, user, pack_id)
        row = pack_rows(session, user.actor, [(pack, account)])[0]
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Give the reason for voiding: it is kept in the pack's history and the activity log."
    elif confirmed:
        def void(session) -> once.Done:
            packs.void_pack(session, pack_id, s.VoidPack(reason=reason), actor=user.actor)
            return once.Done(f"/packs/{pack_id}",
                             flash=f"Voided {row.view.name}: {fmt_amount(row.view.remaining, row.scale)} "
                                   f"{row.view.credit_type} went to breakage.")
        try:
            return once.run(request, user, form, void)
        except NotPermitted as exc:
            raise forms.worded(exc) from None
        except CreditdeskError as exc:
            errors = forms.placed(exc, fields={"reason": "reason"})
    error, errors = _with_message(errors, "Nothing was voided: correct the fields marked below.")
    # The confirmation carries the key of the form it confirms.
    return render(request, "void.html", nav="credits", row=row, reason=reason, error=error, errors=errors,
                  once_key=once.key_of(form), status_code=200 if not error else 422)


# --- grant a pack ----------------------------------------------------------------------------------

GRANT_FIELDS = ("holder", "credit_type", "quantity", "name", "price_paid", "currency", "is_paid", "source",
                "external_ref", "relationship_manager_id", "project_manager_id", "purchased_at", "starts_at",
                "expires_at", "expiry_months", "priority", "product_codes", "status_label", "notes",
                "idempotency_key")


def _grant_page(request: Request, user: WebUser, values: dict, *, error: str | None = None,
                errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        types = credit_types(session, user.actor)
        choices = holder_choices(session, user.workspace_id)
        staff = [(u.id, u.name) for u in parties.list_users(session, actor=user.actor, is_staff=True,
                                                              limit=500).items]
        from creditdesk.billing import settings as billing_settings

        billing = billing_settings.get_settings(session, user.workspace_id)
    if errors and not error:
        error = "Nothing was granted: correct the fields marked below."
    return render(request, "grant.html", nav="credits", values=values, error=error, errors=errors or {},
                  types=types, choices=choices,
                  currency_hint=(billing.default_currency if billing and billing.default_currency else "AUD"),
                  staff=staff, sources=[x for x in s.Source.__args__ if x != "transfer"], status_code=status_code)


@fixed.get("/packs/new", response_class=HTMLResponse)
def grant_form(request: Request, user: WebUser = Depends(current_user)):
    governance.require_grant(user.actor)
    values = {"source": "manual", "priority": "100", "is_paid": "auto"}
    holder = request.query_params.get("holder")
    if holder:
        values["holder"] = holder[:100]
    return _grant_page(request, user, values)


def grant_request(form, types: dict) -> s.PackCreate:
    """The grant form read field by field: every field's problem is collected (shown next to it, all at once);
    then the schema's own checks, each placed next to its field too."""
    from creditdesk.web.catalog import FieldErrors, validated

    errors: dict[str, str] = {}

    def read(name: str, parse):
        try:
            return parse()
        except InvalidInput as exc:
            errors[name] = exc.message
            return None
    holder = read("holder", lambda: forms.holder_value(forms.text(form, "holder", limit=100)))
    kind, holder_id = holder if holder else (None, None)
    code = forms.text(form, "credit_type", limit=40)
    if code not in types:
        errors["credit_type"] = "Choose a credit type."
    quantity = None
    if code in types:
        quantity = read("quantity", lambda: parse_amount(forms.text(form, "quantity"), types[code].scale,
                                                          label="Quantity"))
    currency = forms.text(form, "currency", limit=10).upper() or None
    price = forms.text(form, "price_paid")
    data: dict = {
        "holder": {"kind": kind, "id": holder_id}, "credit_type": code, "quantity": quantity,
        "name": forms.text(form, "name", limit=300), "source": forms.text(form, "source") or "manual",
        "status_label": forms.text(form, "status_label", limit=200), "notes": forms.text(form, "notes", limit=20_000),
        "priority": read("priority", lambda: forms.integer(form, "priority", label="Priority", default=100)),
        "idempotency_key": forms.optional(form, "idempotency_key"), "currency": currency,
        # Bare days: the grant reads them in the workspace's time zone (expiry: the end of that day).
        "purchased_at": read("purchased_at", lambda: parse_date(forms.text(form, "purchased_at"),
                                                                label="Purchased on")),
        "starts_at": read("starts_at", lambda: parse_date(forms.text(form, "starts_at"), label="Starts on")),
        "expires_at": read("expires_at", lambda: parse_date(forms.text(form, "expires_at"), label="Expires on")),
        "expiry_months": read("expiry_months", lambda: forms.integer(form, "expiry_months",
                                                                     label="Expiry in months")),
        "product_codes": forms.text(form, "product_codes", limit=5000).replace(",", " ").replace(";", " ").split(),
    }
    if data["priority"] is None:
        data["priority"] = 100
    if price:
        data["price_paid"] = read("price_paid", lambda: parse_amount(
            price, forms.currency_exponent(currency), label="Price paid", allow_zero=True))
    paid = forms.text(form, "is_paid")
    if paid in ("paid", "free"):
        data["is_paid"] = paid == "paid"
    for name in ("external_ref", "relationship_manager_id", "project_manager_id"):
        data[name] = forms.optional(form, name)
    if not data["name"]:
        errors["name"] = "Give the pack a name."
    if errors:
        raise FieldErrors(errors)
    try:
        return validated(s.PackCreate, data)
    except FieldErrors as exc:  # the schema's words, next to the same fields
        exc.errors = {("holder" if key.startswith("holder") else key): message for key, message in exc.errors.items()}
        raise


@fixed.post("/packs/new", response_class=HTMLResponse)
def grant(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    db = db_of(request)
    values = {name: forms.text(form, name, limit=20_000) for name in GRANT_FIELDS}
    try:
        with reading(db) as session:
            types = credit_types(session, user.actor)
        data = grant_request(form, types)

        def grant_one(session) -> once.Done:
            pack = packs.grant_pack(session, data, actor=user.actor)
            quantity = fmt_amount(pack.quantity, types[pack.unit].scale)
            return once.Done(f"/packs/{pack.id}", flash=f"Granted {pack.name}: {quantity} {pack.unit}.")
        return once.run(request, user, form, grant_one)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        from creditdesk.web.catalog import errors_of

        errors = errors_of(exc)
        return _grant_page(request, user, values, error=errors.pop("", None), errors=errors, status_code=422)


# --- bulk import from CSV ---------------------------------------------------------------------------

IMPORT_BATCH = 500
MAX_IMPORT_BYTES = 1_000_000  # the body limit (CREDITDESK_MAX_BODY_BYTES' default): a file the upload took


@dataclass
class ImportOutcome:
    """What an import wrote, exactly: it is shown only once its transaction has committed."""

    granted: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    skipped_unlisted: int = 0  # rows another import granted at the same moment (no line to show)

    def count(self, reason: str) -> int:
        return sum(1 for _, why in self.skipped if why.startswith(reason))

    def summary(self) -> str:
        parts = [f"{self.granted} pack{'s' if self.granted != 1 else ''} granted"]
        skipped = len(self.skipped) + self.skipped_unlisted
        if skipped:
            parts.append(f"{skipped} skipped")
        if self.errors:
            parts.append(f"{len(self.errors)} line{'s' if len(self.errors) != 1 else ''} refused")
        return ", ".join(parts) + "."


def _import_page(request: Request, *, outcome: ImportOutcome | None = None, error: str | None = None,
                 filename: str = "") -> HTMLResponse:
    return render(request, "import.html", nav="credits", columns=importer.COLUMNS, required=importer.REQUIRED,
                  report=outcome, error=error, filename=filename, skipped_before=importer.SKIPPED_BEFORE,
                  skipped_repeated=importer.SKIPPED_REPEATED, status_code=422 if error else 200)


@fixed.get("/packs/import", response_class=HTMLResponse)
def import_form(request: Request, user: WebUser = Depends(current_user)):
    governance.require_grant(user.actor)
    return _import_page(request)


@fixed.get("/packs/import/template.csv")
def import_template(request: Request, user: WebUser = Depends(current_user)):
    """The columns an office uses, with a sample row that imports as it is in this workspace."""
    with reading(db_of(request)) as session:
        text = importer.template_csv(session, user.workspace_id)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="packs-template.csv"'})


def _read_text(raw: bytes) -> tuple[str | None, str | None]:
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "The file is not UTF-8 text. Save it as CSV (UTF-8) and upload it again."
    if "\x00" in content:
        return None, "The file contains NUL characters; it does not look like a CSV file."
    if not content.strip():
        return None, "The file is empty."
    return content, None


def _check(content: str, units: importer.Units) -> tuple[importer.FileCheck | None, str | None]:
    """The whole file read and checked before anything is written, or why nothing of it can be."""
    check = importer.validate_file(io.StringIO(content, newline=""), units=units)
    if check.file_error:
        return None, f"Nothing was imported: {check.file_error}. Fix the file and upload it again."
    return check, None


def _signature(user: WebUser, filename: str, content: str) -> str:
    """What ties a confirmed import to the file its preview showed, for this user: an HMAC of the file under a key
    of its own derived from the server's secret (the page carries the file; a changed file fails the check)."""
    import hashlib
    import hmac

    from creditdesk.config import get_settings

    key = hashlib.sha256(b"creditdesk-import-preview\x00" + get_settings().secret_key.encode()).digest()
    message = "\x1f".join((user.workspace_id, user.actor.user_id or "", filename, content)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@fixed.post("/packs/import", response_class=HTMLResponse)
def import_packs(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    """Step 1, the preview: the whole file read and checked, then imported in a transaction that is rolled back,
    so the page shows exactly what the import would create, skip and refuse; nothing is written. The page
    carries the file, signed, to step 2."""
    governance.require_grant(user.actor)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _import_page(request, error="Choose a CSV file to upload.")
    filename = upload.filename
    content, error = _read_text(upload.file.read())
    if error:
        return _import_page(request, error=error, filename=filename)
    db = db_of(request)
    with reading(db) as session:
        units = importer.units_of(session, user.workspace_id)
    check, error = _check(content, units)
    if error:
        return _import_page(request, error=error, filename=filename)
    try:
        preview = importer.preview_rows(db, check.rows, actor=user.actor, skipped=check.skipped,
                                        batch_size=IMPORT_BATCH)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _import_page(request, error=exc.message, filename=filename)
    with reading(db) as session:
        names = Names(session, user.workspace_id)
        rows = [_preview_row(row, names, units, user.zone) for row in preview.to_create[:500]]
    return render(request, "import_preview.html", nav="credits", preview=preview, rows=rows, filename=filename,
                  content_b64=base64.b64encode(zlib.compress(content.encode(), 6)).decode(),
                  signature=_signature(user, filename, content))


def _preview_row(row: importer.Row, names, units: importer.Units, zone) -> dict:
    raw = row.raw
    scale = units.scales.get(raw["credit_type"] or "", 0)
    price = int(raw["price_paid"] or 0)
    currency = raw["currency"]
    from creditdesk import currencies

    return {"line": row.line, "holder": names.holder(raw["holder_kind"], raw["holder_id"] or names.workspace_id),
            "credit_type": raw["credit_type"], "quantity": fmt_amount(int(raw["quantity"]), scale),
            "name": raw["name"], "price": (fmt_amount(price, currencies.minor_units(currency)) + f" {currency}")
            if price and currency else "",
            # The moment the row resolves to, as the day people typed (2027-12-31 ends at 23:59:59 there).
            "expires": fmt_date(datetime.fromisoformat(raw["expires_at"]), zone) if raw["expires_at"]
            else (f"{raw['expiry_months']} months after purchase" if raw["expiry_months"] else "never")}


@fixed.post("/packs/import/confirm", response_class=HTMLResponse)
def confirm_import(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    """Step 2: the previewed file (checked against its signature) imported, once per form. Its rows are written
    in one transaction: the good ones granted, each bad one reported with its line and each skipped one with why.
    An upload is at most 1 MB (a few thousand rows): one transaction holds it."""
    import hmac

    governance.require_grant(user.actor)
    filename = forms.text(form, "filename", limit=300)
    # The file travels compressed (a 1 MB upload stays under the body limit) and base64-encoded (a form field's
    # line breaks would come back as CRLF); at most the upload limit once inflated.
    try:
        inflate = zlib.decompressobj()
        content = inflate.decompress(base64.b64decode(form.get("content") or "", validate=True),
                                     MAX_IMPORT_BYTES + 1)
        content = content.decode() if len(content) <= MAX_IMPORT_BYTES and inflate.eof else None
    except (ValueError, TypeError, UnicodeDecodeError, zlib.error):
        content = None
    if content is None or not hmac.compare_digest(
            _signature(user, filename, content), forms.text(form, "signature", limit=200)):
        return _import_page(request, error="This preview cannot be imported (it was changed, or made for someone "
                                           "else). Upload the file again.", filename=filename)
    with reading(db_of(request)) as session:
        units = importer.units_of(session, user.workspace_id)
    check, error = _check(content, units)
    if error:
        return _import_page(request, error=error, filename=filename)

    def write(session) -> once.Done:
        # A fresh outcome per attempt: db.write may run this again (PostgreSQL serialization retry).
        outcome = ImportOutcome(skipped=list(check.skipped))
        rows, skipped = importer.validate_against_workspace(session, user.workspace_id, check.rows)
        outcome.skipped.extend(skipped)
        report = importer.ImportReport()
        for start in range(0, len(rows), IMPORT_BATCH):
            importer.import_batch(session, rows[start:start + IMPORT_BATCH], actor=user.actor, report=report)
        outcome.granted, outcome.skipped_unlisted = report.granted, report.skipped
        outcome.errors = sorted(report.errors)
        outcome.skipped.sort()
        return once.Done("/packs/import", flash=f"Import of {filename}: {outcome.summary()}",
                         level="error" if outcome.errors else "success",
                         first=lambda: _import_page(request, outcome=outcome, filename=filename))

    try:
        return once.run(request, user, form, write)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _import_page(request, error=exc.message, filename=filename)
