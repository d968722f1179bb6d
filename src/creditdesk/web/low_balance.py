"""Settings > Low balance in the back office: the thresholds below which a holder's balance of a credit type
sends balance.low (and the low-balance email, and an automatic top-up when one is set), and the latest crossings.
Every staff user reads; masters set and remove thresholds, through the services the API's
/v1/balance-thresholds calls (the same rule: credits.low_balance refuses anyone else). Amounts are typed and
shown in the credit type's unit ("5" hours), never in its smallest unit."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk.credits import low_balance, reads
from creditdesk.credits import schemas as s
from creditdesk.credits.credit_types import credit_type
from creditdesk.errors import CreditdeskError, InvalidInput, NotPermitted
from creditdesk.web import forms, once
from creditdesk.web.catalog import FieldErrors, errors_of, validated
from creditdesk.web.core import (WebRoute, WebUser, csrf_form, current_user, db_of, fmt_amount, parse_amount,
                                 reading, render)
from creditdesk.web.presenters import credit_types, holder_choices

router = APIRouter(route_class=WebRoute, include_in_schema=False)

FIELDS = ("credit_type", "holder", "threshold", "top_up_package", "top_up_count")
DEFAULT_HOLDER = "any"  # the picker's value for "every holder without a threshold of its own"


def _top_up_packages(session, workspace_id: str) -> list[tuple[str, str, str]]:
    """(code, name, credit type code) of the active credit packages: the top-ups a threshold can order."""
    from creditdesk.catalog.models import Product
    from creditdesk.credits.models import CreditType

    rows = session.execute(select(Product.code, Product.name, CreditType.code).join(
        CreditType, CreditType.id == Product.credit_type_id).where(
        Product.workspace_id == workspace_id, Product.kind == "credit_package", Product.active.is_(True))
        .order_by(Product.name)).all()
    return [tuple(r) for r in rows]


def _rows(session, user: WebUser, types: dict) -> tuple[list[dict], list[dict]]:
    from creditdesk.catalog.models import Product

    thresholds = []
    for row in low_balance.list_thresholds(session, actor=user.actor):
        ct = credit_type(session, row.credit_type_id)
        product = session.get(Product, row.top_up_product_id) if row.top_up_product_id else None
        is_default = (row.holder_kind, row.holder_id) == low_balance.ANY
        thresholds.append({
            "id": row.id, "credit_type": ct.code, "type_name": ct.name, "active": row.active,
            "holder": "Every holder without its own threshold" if is_default
            else reads.holder_label(session, row.holder_kind, row.holder_id),
            "holder_kind": None if is_default else row.holder_kind,
            "threshold": fmt_amount(row.threshold, ct.scale),
            "top_up": f"{row.top_up_count} × {product.name}" if product else "",
        })
    crossings = []
    for c in low_balance.list_crossings(session, actor=user.actor, limit=20).items:
        ct = credit_type(session, c.credit_type_id)
        crossings.append({
            "at": c.created_at, "holder": reads.holder_label(session, c.holder_kind, c.holder_id),
            "type_name": ct.name, "threshold": fmt_amount(c.threshold, ct.scale),
            "before": fmt_amount(c.balance_before, ct.scale), "after": fmt_amount(c.balance_after, ct.scale),
            "top_up_note": c.top_up_note, "top_up_invoice_id": c.top_up_invoice_id})
    return thresholds, crossings


def _page(request: Request, user: WebUser, *, values: dict | None = None, errors: dict | None = None,
          status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        types = credit_types(session, user.actor)
        thresholds, crossings = _rows(session, user, types)
        choices = holder_choices(session, user.workspace_id) if user.actor.is_master else {}
        packages = _top_up_packages(session, user.workspace_id) if user.actor.is_master else []
    return render(request, "low_balance.html", nav="settings", thresholds=thresholds, crossings=crossings,
                  types=types, choices=choices, packages=packages, can_write=user.actor.is_master,
                  values=values or {"holder": DEFAULT_HOLDER, "top_up_count": "1"}, errors=errors or {},
                  status_code=status_code)


@router.get("/settings/low-balance", response_class=HTMLResponse)
def low_balance_page(request: Request, user: WebUser = Depends(current_user)):
    return _page(request, user)


def threshold_request(form: FormData, types: dict) -> s.ThresholdSet:
    """The form read field by field, every problem next to its field at once; then the schema's checks."""
    errors: dict[str, str] = {}
    code = forms.text(form, "credit_type", limit=40)
    if code not in types:
        errors["credit_type"] = "Choose a credit type."
    holder_text = forms.text(form, "holder", limit=100)
    holder = None
    if holder_text != DEFAULT_HOLDER:
        try:
            kind, holder_id = forms.holder_value(holder_text)
            holder = {"kind": kind, "id": holder_id}
        except InvalidInput as exc:
            errors["holder"] = exc.message
    threshold = None
    if code in types:
        try:
            threshold = parse_amount(forms.text(form, "threshold"), types[code].scale, label="Threshold")
        except InvalidInput as exc:
            errors["threshold"] = exc.message
    count_text = forms.text(form, "top_up_count", limit=10) or "1"
    count = int(count_text) if count_text.isdigit() else None
    if count is None or not 1 <= count <= 100:
        errors["top_up_count"] = "Type a whole number of packages from 1 to 100."
    package = forms.text(form, "top_up_package", limit=100) or None
    if errors:
        raise FieldErrors(errors)
    return validated(s.ThresholdSet, {"credit_type": code, "holder": holder, "threshold": threshold,
                                      "top_up_package": package, "top_up_count": count,
                                      "active": form.get("active", "on") == "on"})


@router.post("/settings/low-balance", response_class=HTMLResponse)
def set_threshold(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {name: forms.text(form, name, limit=200) for name in FIELDS}
    try:
        low_balance.require_master(user.actor)
        with reading(db_of(request)) as session:
            types = credit_types(session, user.actor)
        data = threshold_request(form, types)

        def act(session) -> once.Done:
            row = low_balance.set_threshold(session, data, actor=user.actor)
            ct = types[data.credit_type]
            return once.Done("/settings/low-balance", flash=(
                f"Saved: below {fmt_amount(row.threshold, ct.scale)} {ct.name} a balance is low."))
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            errors = {"holder" if "holder" in exc.code else "": exc.message}
        else:
            errors = errors_of(exc)
        return _page(request, user, values=values, errors=errors, status_code=422)


@router.post("/settings/low-balance/{threshold_id}/remove", response_class=HTMLResponse)
def remove_threshold(threshold_id: str, request: Request, user: WebUser = Depends(current_user),
                     form: FormData = Depends(csrf_form)):
    def act(session) -> once.Done:
        deleted = low_balance.delete_threshold(session, threshold_id, actor=user.actor)
        return once.Done("/settings/low-balance", flash="Threshold removed." if deleted else (
            "Threshold switched off (kept, because balances have already crossed it)."))
    return once.run(request, user, form, act)
