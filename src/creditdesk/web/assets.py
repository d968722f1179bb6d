"""Account assets in the back office (seed 004): the account page's Assets section (current assets with
Transfer ownership and Return actions, an Import form, and the assets it owned before), the asset page with
its history, and Finance > Assets. Every form calls billing.assets, the functions the API calls, once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk.billing import accounts, assets
from creditdesk.billing import asset_schemas as s
from creditdesk.billing.models import BillingAccount
from creditdesk.errors import CreditdeskError, NotPermitted
from creditdesk.parties.service import require_manager
from creditdesk.web import forms, once
from creditdesk.web.catalog import validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

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


def _act(request: Request, user: WebUser, form: FormData, account_id: str, action) -> HTMLResponse:
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        # The reason in plain words, with the way back to the account; nothing changed.
        message = "; ".join(exc.errors.values()) if hasattr(exc, "errors") else exc.message
        return render(request, "asset_error.html", nav="finance", account_id=account_id, message=message,
                      status_code=exc.http_status if exc.http_status >= 400 else 422)


@router.post("/accounts/{account_id}/assets/transfer", response_class=HTMLResponse)
def transfer(account_id: str, request: Request, user: WebUser = Depends(current_user),
             form: FormData = Depends(csrf_form)):
    asset_ids = [str(v) for v in form.getlist("asset_id")][:200]

    def action(session) -> once.Done:
        data = validated(s.AssetTransfer, {"asset_ids": asset_ids, "to_account_id": forms.text(form, "to_account_id"),
                                           "note": forms.text(form, "note", limit=2000)})
        moved = assets.transfer_assets(session, data, actor=user.actor)
        to = accounts.get_account(session, user.workspace_id, data.to_account_id)
        return _back(account_id, f"{len(moved)} asset(s) transferred to {to.number} · {to.name}.")
    return _act(request, user, form, account_id, action)


@router.post("/accounts/{account_id}/assets/return", response_class=HTMLResponse)
def return_goods(account_id: str, request: Request, user: WebUser = Depends(current_user),
                 form: FormData = Depends(csrf_form)):
    asset_ids = [str(v) for v in form.getlist("asset_id")][:200]

    def action(session) -> once.Done:
        data = validated(s.AssetReturn, {"asset_ids": asset_ids, "note": forms.text(form, "note", limit=2000)})
        stock_in, returned = assets.return_assets(session, data, actor=user.actor)
        return _back(account_id, f"{len(returned)} asset(s) returned to the warehouse (stock-in {stock_in}).")
    return _act(request, user, form, account_id, action)


@router.post("/accounts/{account_id}/assets/import", response_class=HTMLResponse)
def import_item(account_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        data = validated(s.AssetImport, {
            "account_id": account_id, "description": forms.text(form, "description", limit=500),
            "serial_number": forms.text(form, "serial_number", limit=200) or None,
            "warranty_ends_on": forms.text(form, "warranty_ends_on", limit=20) or None,
            "note": forms.text(form, "note", limit=2000)})
        asset = assets.import_asset(session, data, actor=user.actor)
        return _back(account_id, f"Imported {asset.description} (owned by the customer).")
    return _act(request, user, form, account_id, action)


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
