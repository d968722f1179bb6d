"""Settings > Webhooks in the back office (masters): the endpoints (add, edit, enable or disable, rotate the
secret, delete), the delivery log with each attempt's status code, latency and response excerpt, and Replay.
Every form calls creditdesk.webhooks.service, the functions the API calls, once (web/once.py). A new or
rotated secret is shown on the page that answers the form, once; a repeat of the form does not show it."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from creditdesk.errors import CreditdeskError, NotPermitted
from creditdesk.web import forms, once
from creditdesk.web.catalog import errors_of, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render
from creditdesk.webhooks import schemas as s
from creditdesk.webhooks import service

router = APIRouter(route_class=WebRoute, include_in_schema=False)

BASE = "/settings/webhooks"


def _deliveries(session, user: WebUser, endpoint_id: str | None, limit: int = 50):
    return service.list_deliveries(session, actor=user.actor, endpoint_id=endpoint_id, limit=limit).items


def _page(request: Request, user: WebUser, *, values: dict | None = None, errors: dict | None = None,
          status_code: int = 200) -> HTMLResponse:
    service.require_master(user.actor, "manage webhooks")
    endpoint_id = (request.query_params.get("endpoint_id") or "")[:40] or None
    with reading(db_of(request)) as session:
        endpoints = service.list_endpoints(session, actor=user.actor)
        log = _deliveries(session, user, endpoint_id)
    return render(request, "webhooks.html", nav="settings", endpoints=endpoints, log=log,
                  urls={e.id: e.url for e in endpoints}, endpoint_id=endpoint_id, event_types=s.EVENT_TYPES,
                  values=values or {"event_types": []}, errors=errors or {}, status_code=status_code)


@router.get(BASE, response_class=HTMLResponse)
def webhooks_page(request: Request, user: WebUser = Depends(current_user)):
    return _page(request, user)


def _form_values(form: FormData) -> dict:
    return {"url": forms.text(form, "url", limit=2000), "description": forms.text(form, "description", limit=200),
            "event_types": [t for t in form.getlist("event_types") if isinstance(t, str)][:len(s.EVENT_TYPES)]}


def _secret_page(request: Request, endpoint, secret: str, what: str):
    return lambda: render(request, "webhook_secret.html", nav="settings", endpoint=endpoint, secret=secret,
                          what=what)


@router.post(f"{BASE}/endpoints", response_class=HTMLResponse)
def create_endpoint(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = _form_values(form)

    def act(session) -> once.Done:
        endpoint, secret = service.create_endpoint(session, validated(s.EndpointCreate, values), actor=user.actor)
        return once.Done(f"{BASE}/endpoints/{endpoint.id}", flash="Endpoint added.",
                         first=_secret_page(request, service.endpoint_out(endpoint), secret, "added"))

    try:
        service.require_master(user.actor, "manage webhooks")
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _page(request, user, values=values, errors=errors_of(exc), status_code=422)


def _endpoint_page(request: Request, user: WebUser, endpoint_id: str, *, values: dict | None = None,
                   errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    service.require_master(user.actor, "manage webhooks")
    with reading(db_of(request)) as session:
        endpoint = service.get_endpoint(session, user.workspace_id, endpoint_id)
        log = _deliveries(session, user, endpoint.id)
    return render(request, "webhook_endpoint.html", nav="settings", endpoint=endpoint, log=log,
                  event_types=s.EVENT_TYPES, urls={endpoint.id: endpoint.url},
                  values=values or {"url": endpoint.url, "description": endpoint.description,
                                    "event_types": endpoint.event_types, "enabled": endpoint.enabled},
                  errors=errors or {}, status_code=status_code)


@router.get(f"{BASE}/endpoints/{{endpoint_id}}", response_class=HTMLResponse)
def endpoint_page(endpoint_id: str, request: Request, user: WebUser = Depends(current_user)):
    return _endpoint_page(request, user, endpoint_id)


@router.post(f"{BASE}/endpoints/{{endpoint_id}}", response_class=HTMLResponse)
def update_endpoint(endpoint_id: str, request: Request, user: WebUser = Depends(current_user),
                    form: FormData = Depends(csrf_form)):
    values = {**_form_values(form), "enabled": form.get("enabled") == "on"}

    def act(session) -> once.Done:
        service.update_endpoint(session, endpoint_id, validated(s.EndpointUpdate, values), actor=user.actor)
        return once.Done(f"{BASE}/endpoints/{endpoint_id}", flash="Endpoint saved.")

    try:
        service.require_master(user.actor, "manage webhooks")
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return _endpoint_page(request, user, endpoint_id, values=values, errors=errors_of(exc), status_code=422)


def _act(request: Request, user: WebUser, form: FormData, back: str, action) -> HTMLResponse:
    service.require_master(user.actor, "manage webhooks")  # before the key: a member gets 403
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return render(request, "action_error.html", nav="settings", back=back, message=exc.message,
                      status_code=exc.http_status if exc.http_status >= 400 else 422)


@router.post(f"{BASE}/endpoints/{{endpoint_id}}/rotate-secret", response_class=HTMLResponse)
def rotate_secret(endpoint_id: str, request: Request, user: WebUser = Depends(current_user),
                  form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        endpoint, secret = service.rotate_secret(session, endpoint_id, actor=user.actor)
        return once.Done(f"{BASE}/endpoints/{endpoint_id}", flash="Secret rotated.",
                         first=_secret_page(request, service.endpoint_out(endpoint), secret, "rotated"))
    return _act(request, user, form, f"{BASE}/endpoints/{endpoint_id}", action)


@router.post(f"{BASE}/endpoints/{{endpoint_id}}/delete", response_class=HTMLResponse)
def delete_endpoint(endpoint_id: str, request: Request, user: WebUser = Depends(current_user),
                    form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        endpoint = service.delete_endpoint(session, endpoint_id, actor=user.actor)
        return once.Done(BASE, flash=f"Endpoint {endpoint.url} deleted.")
    return _act(request, user, form, f"{BASE}/endpoints/{endpoint_id}", action)


@router.get(f"{BASE}/deliveries/{{delivery_id}}", response_class=HTMLResponse)
def delivery_page(delivery_id: str, request: Request, user: WebUser = Depends(current_user)):
    service.require_master(user.actor, "manage webhooks")
    with reading(db_of(request)) as session:
        row = service.get_delivery(session, user.workspace_id, delivery_id)
        detail = service.delivery_detail(session, row)
        endpoint = service.endpoint_of(session, row)
    return render(request, "webhook_delivery.html", nav="settings", d=detail, endpoint=endpoint,
                  payload=json.dumps(detail.payload, indent=2))


@router.post(f"{BASE}/deliveries/{{delivery_id}}/replay", response_class=HTMLResponse)
def replay_delivery(delivery_id: str, request: Request, user: WebUser = Depends(current_user),
                    form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        row = service.replay(session, delivery_id, actor=user.actor)
        return once.Done(f"{BASE}/deliveries/{delivery_id}", flash=f"Replaying event {row.event_id}.")
    return _act(request, user, form, f"{BASE}/deliveries/{delivery_id}", action)
