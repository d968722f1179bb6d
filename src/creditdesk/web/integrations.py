"""Settings > Integrations in the back office: HubSpot (the client secret, the winning deal stage, the deal
property naming the holder), the mappings (HubSpot company -> customer or office, HubSpot product or SKU ->
credit package), and the review queue of deals that did not become a pack, with Retry (after mapping) and
Dismiss. Every form calls integrations.deals, the functions the API calls, once (web/once.py); masters
change settings and mappings, whoever may grant packs retries and dismisses, every staff user reads."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk.catalog.models import Product
from creditdesk.credits import governance
from creditdesk.errors import CreditdeskError, NotPermitted
from creditdesk.integrations import deals
from creditdesk.integrations import schemas as s
from creditdesk.parties.models import Customer, Office
from creditdesk.parties.service import require_master
from creditdesk.web import forms, once
from creditdesk.web.catalog import errors_of, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
PAGE = "/settings/integrations"


def _may_grant(user: WebUser) -> bool:
    try:
        governance.require_grant(user.actor)
    except NotPermitted:
        return False
    return True


def _page(request: Request, user: WebUser, *, errors: dict | None = None, values: dict | None = None,
          status_code: int = 200) -> HTMLResponse:
    status = request.query_params.get("status") or "open"
    status = status if status in ("open", "resolved", "dismissed", "all") else "open"
    ws = user.workspace_id
    with reading(db_of(request)) as session:
        settings = deals.settings_out(deals.settings_row(session, ws))
        mappings = [deals.mapping_out(session, m)
                    for m in deals.list_mappings(session, actor=user.actor, limit=500).items]
        queue = [deals.review_out(i) for i in deals.list_review_items(
            session, actor=user.actor, status=None if status == "all" else status, limit=200).items]
        packages = session.execute(select(Product.code, Product.name).where(
            Product.workspace_id == ws, Product.kind == "credit_package").order_by(Product.code)).all()
        customers = session.execute(select(Customer.id, Customer.name).where(Customer.workspace_id == ws)
                                    .order_by(Customer.name).limit(500)).all()
        offices = session.execute(select(Office.id, Office.name).where(Office.workspace_id == ws)
                                  .order_by(Office.name).limit(500)).all()
    names = {i: n for i, n in list(customers) + list(offices)}
    return render(request, "integrations.html", nav="settings", settings=settings, mappings=mappings, queue=queue,
                  status=status, packages=packages, customers=customers, offices=offices, holder_names=names,
                  can_write=user.actor.is_master, can_grant=_may_grant(user), errors=errors or {},
                  values=values or {}, workspace_id=ws, status_code=status_code)


def _act(request: Request, user: WebUser, form: FormData, action, values: dict | None = None, *,
         grant: bool = False) -> HTMLResponse:
    # Who may is said first (403), before the form's one-time key is looked at.
    if grant:
        governance.require_grant(user.actor)
    else:
        require_master(user.actor, "change the HubSpot settings and mappings")
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _page(request, user, errors=errors_of(exc), values=values,
                     status_code=exc.http_status if exc.http_status >= 400 else 422)


@router.get(PAGE, response_class=HTMLResponse)
def integrations_page(request: Request, user: WebUser = Depends(current_user)):
    return _page(request, user)


@router.post(f"{PAGE}/hubspot", response_class=HTMLResponse)
def save_settings(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {"client_secret": forms.text(form, "client_secret", limit=200) or None,
              "won_stage": forms.text(form, "won_stage", limit=100) or "closedwon",
              "holder_property": forms.text(form, "holder_property", limit=100) or None,
              "enabled": form.get("enabled") == "on"}

    def action(session) -> once.Done:
        deals.update_settings(session, validated(s.HubspotSettingsIn, values), actor=user.actor)
        return once.Done(PAGE, flash="HubSpot settings saved.")
    return _act(request, user, form, action, values={**values, "client_secret": None})


@router.post(f"{PAGE}/mappings", response_class=HTMLResponse)
def add_mapping(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    kind = forms.text(form, "kind", limit=20)
    target = forms.text(form, "holder", limit=60)
    holder_kind, _, holder_id = target.partition(":")
    values = {"kind": kind, "external_id": forms.text(form, "external_id", limit=200),
              "note": forms.text(form, "note", limit=500)}
    if kind == "company":
        values["holder"] = {"kind": holder_kind, "id": holder_id} if holder_id else None
    else:
        values["product"] = forms.text(form, "product", limit=100) or None

    def action(session) -> once.Done:
        row = deals.create_mapping(session, validated(s.MappingCreate, values), actor=user.actor)
        return once.Done(PAGE, flash=f"HubSpot {row.kind} {row.external_id} mapped.")
    return _act(request, user, form, action, values=values)


@router.post(PAGE + "/mappings/{mapping_id}/delete", response_class=HTMLResponse)
def delete_mapping(mapping_id: str, request: Request, user: WebUser = Depends(current_user),
                   form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        row = deals.delete_mapping(session, mapping_id, actor=user.actor)
        return once.Done(PAGE, flash=f"Mapping of HubSpot {row.kind} {row.external_id} removed.")
    return _act(request, user, form, action)


@router.post(PAGE + "/review/{item_id}/retry", response_class=HTMLResponse)
def retry(item_id: str, request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        row = deals.retry_review_item(session, item_id, actor=user.actor)
        return once.Done(PAGE, flash=f"Deal {row.deal_id} made its pack.")
    return _act(request, user, form, action, grant=True)


@router.post(PAGE + "/review/{item_id}/dismiss", response_class=HTMLResponse)
def dismiss(item_id: str, request: Request, user: WebUser = Depends(current_user),
            form: FormData = Depends(csrf_form)):
    reason = forms.text(form, "reason", limit=2000) or "Dismissed in the back office"

    def action(session) -> once.Done:
        row = deals.dismiss_review_item(session, item_id, s.DismissIn(reason=reason), actor=user.actor)
        return once.Done(PAGE, flash=f"Deal {row.deal_id} dismissed: it makes no pack.")
    return _act(request, user, form, action, grant=True)
