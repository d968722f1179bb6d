"""Account assets in the back office (seed 004): the account page's Assets section (current assets with
Transfer ownership and Return actions, an Import form, and the assets it owned before), the asset page with
its history, and Finance > Assets. Every form calls billing.assets, the functions the API calls, once."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk.billing import accounts, assets
from creditdesk.billing import asset_schemas as s
from creditdesk.billing.models import BillingAccount
from creditdesk.errors import CreditdeskError, NotFound, NotPermitted
from creditdesk.parties.service import require_manager
from creditdesk.web import forms, once
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render
from creditdesk.web.catalog import FieldErrors
from creditdesk.web.finance import Problems, form_errors, render_account

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def may_manage(user: WebUser) -> bool:
    try:
        require_manager(user.actor, "manage assets")
    except NotPermitted:
        return False
    return True


def account_context(session, user: WebUser, account: BillingAccount) -> dict:
    """What the account page shows of its assets (finance.account_page)."""
    current = assets.list_assets(session, actor=user.actor, account_id=account.id, limit=200).items
    before = assets.list_assets(session, actor=user.actor, owned_before_by=account.id, limit=200).items
    others = list(session.scalars(select(BillingAccount).where(
        BillingAccount.workspace_id == account.workspace_id, BillingAccount.id != account.id,
        BillingAccount.status != "terminated").order_by(BillingAccount.number).limit(500)))
    return {"account_assets": current, "assets_owned_before": before, "asset_targets": others,
            "may_manage_assets": may_manage(user)}


def _back(account_id: str, message: str) -> once.Done:
    return once.Done(f"/accounts/{account_id}#account-assets", flash=message)


LABELS = {"asset_id": "Assets", "to_account_id": "Transfer ownership to", "note": "Note", "description": "Item",
          "serial_number": "Serial number", "warranty_ends_on": "Warranty until"}
WHERE = {"asset_ids": "asset_id"}
# Refusals about the chosen assets that name no field.
BY_CODE = {"asset_customer_owned": "asset_id", "asset_returned": "asset_id", "duplicate_asset": "asset_id"}


def _act(request: Request, user: WebUser, form: FormData, account_id: str, form_id: str, action) -> HTMLResponse:
    """One form of the Assets section, once; refused, the account page again with what was chosen and typed and
    every problem next to its field; nothing changed."""
    require_manager(user.actor, "manage assets")  # before the key: a member gets 403
    values = {name: forms.text(form, name, limit=2000) for name in form.keys()
              if name not in ("csrf_token", once.FIELD, "asset_id")}
    values["asset_id"] = [str(v) for v in form.getlist("asset_id")][:200]
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if isinstance(exc, NotFound) and exc.details.get("object_id") in values["asset_id"]:
            errors = {"asset_id": "One of the chosen assets no longer exists: reload the page and choose again."}
        else:
            errors = form_errors(exc, values={k: v for k, v in values.items() if k != "asset_id"}, labels=LABELS,
                                 by_code=BY_CODE, fields=WHERE)
        return render_account(request, user, account_id, form=form_id, values=values, errors=errors,
                              status_code=exc.http_status if exc.http_status >= 400 else 422)


def _chosen(problems: Problems, asset_ids: list[str]) -> None:
    if not asset_ids:
        problems.add("asset_id", "Choose one or more assets (tick them in the list).")


@router.post("/accounts/{account_id}/assets/transfer", response_class=HTMLResponse)
def transfer(account_id: str, request: Request, user: WebUser = Depends(current_user),
             form: FormData = Depends(csrf_form)):
    asset_ids = [str(v) for v in form.getlist("asset_id")][:200]

    def action(session) -> once.Done:
        problems = Problems(LABELS)
        _chosen(problems, asset_ids)
        if not forms.text(form, "to_account_id"):
            problems.add("to_account_id", "Choose the account that becomes the owner.")
        data = problems.schema(s.AssetTransfer, {
            "asset_ids": asset_ids, "to_account_id": forms.text(form, "to_account_id"),
            "note": forms.text(form, "note", limit=5000)}, where=WHERE)
        problems.check()
        moved = assets.transfer_assets(session, data, actor=user.actor)
        to = accounts.get_account(session, user.workspace_id, data.to_account_id)
        return _back(account_id, f"{len(moved)} asset(s) transferred to {to.number} · {to.name}.")
    return _act(request, user, form, account_id, "assets-actions", action)


@router.post("/accounts/{account_id}/assets/return", response_class=HTMLResponse)
def return_goods(account_id: str, request: Request, user: WebUser = Depends(current_user),
                 form: FormData = Depends(csrf_form)):
    asset_ids = [str(v) for v in form.getlist("asset_id")][:200]

    def action(session) -> once.Done:
        problems = Problems(LABELS)
        _chosen(problems, asset_ids)
        data = problems.schema(s.AssetReturn, {"asset_ids": asset_ids, "note": forms.text(form, "note", limit=5000)},
                               where=WHERE)
        problems.check()
        stock_in, returned = assets.return_assets(session, data, actor=user.actor)
        return _back(account_id, f"{len(returned)} asset(s) returned to the warehouse (stock-in {stock_in}).")
    return _act(request, user, form, account_id, "assets-actions", action)


def _warranty(form) -> date | None:
    raw = forms.text(form, "warranty_ends_on", limit=20)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FieldErrors({"warranty_ends_on": "Warranty until is not a date (use the date picker, or "
                                               "YYYY-MM-DD)."}) from None


@router.post("/accounts/{account_id}/assets/import", response_class=HTMLResponse)
def import_item(account_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        problems = Problems(LABELS)
        if not forms.text(form, "description", limit=1000):
            problems.add("description", "Say what the item is (e.g. Modem).")
        warranty = problems.read("warranty_ends_on", lambda: _warranty(form))
        data = problems.schema(s.AssetImport, {
            "account_id": account_id, "description": forms.text(form, "description", limit=1000),
            "serial_number": forms.text(form, "serial_number", limit=1000) or None,
            "warranty_ends_on": warranty, "note": forms.text(form, "note", limit=5000)})
        problems.check()
        asset = assets.import_asset(session, data, actor=user.actor)
        return _back(account_id, f"Imported {asset.description} (owned by the customer).")
    return _act(request, user, form, account_id, "asset-import", action)


@router.get("/assets/{asset_id}", response_class=HTMLResponse)
def asset_page(asset_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        asset = assets.get_asset(session, user.workspace_id, asset_id)
        out = assets.asset_out(session, asset, with_history=True)
        ids = {asset.account_id} | {i for e in out.history for i in (e.from_account_id, e.to_account_id) if i}
        names = {a.id: a for a in session.scalars(select(BillingAccount).where(BillingAccount.id.in_(ids)))}
    return render(request, "asset.html", nav="finance", asset=out, account_of=names)


@router.get("/finance/assets", response_class=HTMLResponse)
def assets_page(request: Request, user: WebUser = Depends(current_user)):
    status = request.query_params.get("status") or None
    status = status if status in ("active", "returned") else None
    with reading(db_of(request)) as session:
        page = assets.list_assets(session, actor=user.actor, status=status, limit=200,
                                  cursor=request.query_params.get("cursor") or None)
        rows = [assets.asset_out(session, a) for a in page.items]
        names = {a.id: a for a in session.scalars(select(BillingAccount).where(
            BillingAccount.id.in_({r.account_id for r in rows})))} if rows else {}
    return render(request, "assets.html", nav="finance", rows=rows, account_of=names, status=status,
                  next_cursor=page.next_cursor)
