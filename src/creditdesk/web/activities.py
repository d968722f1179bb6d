"""Activities in the back office (seed 002, CRM > Activities): the non-completed activities (filters by
assignee, type and overdue; a My activities tab), Schedule an activity (also from the customer page, whose
Activities section lists the customer's), the activity page with Start / Complete / Cancel, and the activity
types. Every form calls activities.service, the functions the API calls, once (web.once)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk.activities import schemas as s
from creditdesk.activities import service as activities
from creditdesk.activities.models import Activity, ActivityType
from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.models import BillingAccount
from creditdesk.catalog.models import Product
from creditdesk.errors import CreditdeskError, NotPermitted
from creditdesk.parties.models import Customer, Office, Team, User
from creditdesk.parties.service import require_manager
from creditdesk.repository import get_in_workspace
from creditdesk.web import forms, once
from creditdesk.web.catalog import FieldErrors, errors_of, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

STATUS_LABELS = {"open": "Open", "in_progress": "In progress", "completed": "Completed", "cancelled": "Cancelled"}
SERVICE_ROWS = 3


# --- what the pages show ---------------------------------------------------------------------------------

def _names(session, workspace_id: str, rows: list[Activity]) -> dict:
    """Names of the customers, types, users and units the rows name, in one query each."""
    def by_id(model, ids):
        ids = {i for i in ids if i}
        return {o.id: o for o in session.scalars(select(model).where(model.workspace_id == workspace_id,
                                                                     model.id.in_(ids)))} if ids else {}
    return {"customers": by_id(Customer, (a.customer_id for a in rows)),
            "types": by_id(ActivityType, (a.type_id for a in rows)),
            "users": by_id(User, (a.assignee_user_id for a in rows)),
            "offices": by_id(Office, (a.unit_id for a in rows if a.unit_kind == "office")),
            "teams": by_id(Team, (a.unit_id for a in rows if a.unit_kind == "team"))}


def _choices(session, workspace_id: str) -> dict:
    """The pickers of the forms and filters: types, staff, the workspace's own units, service products."""
    return {
        "types": list(session.scalars(select(ActivityType).where(ActivityType.workspace_id == workspace_id)
                                      .order_by(ActivityType.name).limit(500))),
        "staff": list(session.scalars(select(User).where(User.workspace_id == workspace_id, User.is_staff.is_(True),
                                                         User.is_active.is_(True)).order_by(User.name).limit(1000))),
        "offices": list(session.scalars(select(Office).where(Office.workspace_id == workspace_id,
                                                             Office.customer_id.is_(None)).order_by(Office.name))),
        "teams": list(session.scalars(select(Team).where(Team.workspace_id == workspace_id).order_by(Team.name))),
        "services": list(session.scalars(select(Product).where(
            Product.workspace_id == workspace_id, Product.kind.in_(activities.SERVICE_KINDS),
            Product.active.is_(True)).order_by(Product.name).limit(1000))),
    }


def customer_section(session, user: WebUser, customer_id: str) -> dict:
    """The customer page's Activities section (clients.customer_page)."""
    rows = activities.list_activities(session, actor=user.actor, customer_id=customer_id, limit=200).items
    return {"customer_activities": rows, "activity_names": _names(session, user.workspace_id, rows),
            "may_schedule": activities.may_manage(user.actor), "status_labels": STATUS_LABELS,
            "is_overdue": activities.is_overdue}


@router.get("/activities", response_class=HTMLResponse)
def activities_page(request: Request, user: WebUser = Depends(current_user)):
    q = request.query_params
    tab = "mine" if q.get("tab") == "mine" else "all"
    assignee = (q.get("assignee") or "").strip()[:40] or None
    type_code = (q.get("type") or "").strip()[:100] or None
    overdue = q.get("overdue") == "1"
    with reading(db_of(request)) as session:
        page = activities.list_activities(
            session, actor=user.actor, status=list(activities.NOT_DONE), mine=tab == "mine",
            assignee_user_id=assignee if tab == "all" else None, type=type_code, overdue=overdue, limit=200,
            cursor=q.get("cursor") or None)
        names = _names(session, user.workspace_id, page.items)
        choices = _choices(session, user.workspace_id)
    filters = {"tab": tab if tab == "mine" else None, "assignee": assignee, "type": type_code,
               "overdue": "1" if overdue else None}
    return render(request, "activities.html", nav="crm", rows=page.items, names=names, choices=choices, tab=tab,
                  filters=filters, next_cursor=page.next_cursor, status_labels=STATUS_LABELS,
                  is_overdue=activities.is_overdue, may_schedule=activities.may_manage(user.actor))


# --- schedule an activity ----------------------------------------------------------------------------

def _form_page(request: Request, user: WebUser, values: dict, *, errors: dict | None = None,
               status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        choices = _choices(session, user.workspace_id)
        customer = None
        accounts = []
        if values.get("customer_id"):
            customer = session.scalar(select(Customer).where(Customer.workspace_id == user.workspace_id,
                                                             Customer.id == values["customer_id"]))
        if customer is not None:
            accounts = list(session.scalars(select(BillingAccount).where(
                BillingAccount.workspace_id == user.workspace_id, BillingAccount.customer_id == customer.id,
                BillingAccount.status == "active").order_by(BillingAccount.number)))
        customers = [] if customer is not None else list(session.scalars(select(Customer).where(
            Customer.workspace_id == user.workspace_id).order_by(Customer.name).limit(1000)))
    return render(request, "activity_form.html", nav="crm", values=values, errors=errors or {}, choices=choices,
                  customer=customer, customers=customers, accounts=accounts, service_rows=SERVICE_ROWS,
                  status_code=status_code)


@router.get("/activities/new", response_class=HTMLResponse)
def new_activity_form(request: Request, user: WebUser = Depends(current_user)):
    require_manager(user.actor, "schedule activities")
    values: dict = {"add_type_services": True}
    customer_id = (request.query_params.get("customer_id") or "").strip()[:40]
    if customer_id:
        with reading(db_of(request)) as session:
            customer = get_in_workspace(session, Customer, user.workspace_id, customer_id, label="customer")
        # The contact is pre-filled from the customer; the person scheduling may change it.
        values.update(customer_id=customer.id, contact_name=customer.name, contact_email=customer.email or "")
    return _form_page(request, user, values)


def _when(form: FormData, name: str, where=UTC) -> str | None:
    """A datetime-local field: a wall-clock time where the business is (`where`, the workspace's time zone)."""
    text = forms.text(form, name, limit=40)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise FieldErrors({name: "Type a date and time like 2027-03-01 09:00."}) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=where)).astimezone(UTC).isoformat()


def _form_values(form: FormData) -> dict:
    values = {name: forms.text(form, name, limit=4000) for name in (
        "customer_id", "type", "account_id", "contact_name", "contact_phone", "contact_email", "link_kind",
        "link_id", "details", "starts_at", "estimated_completion_at", "expected_completion_at", "unit",
        "assignee_user_id")}
    values["add_type_services"] = bool(form.get("add_type_services"))
    values["services"] = [(forms.text(form, f"service_{n}", limit=100), forms.text(form, f"quantity_{n}", limit=20))
                          for n in range(SERVICE_ROWS)]
    return values


def _body(session, user: WebUser, form: FormData, values: dict) -> dict:
    unit_kind, _, unit_id = values["unit"].partition(":")
    rows = [{"product": p, "quantity": q or "1"} for p, q in values["services"] if p]
    body = {"customer_id": values["customer_id"], "type": values["type"], "details": values["details"],
            "account_id": values["account_id"] or None, "assignee_user_id": values["assignee_user_id"] or None,
            "contact": {"name": values["contact_name"], "phone": values["contact_phone"] or None,
                        "email": values["contact_email"] or None} if values["contact_name"] else None,
            "link": {"kind": values["link_kind"], "id": values["link_id"]} if values["link_id"] else None,
            "unit": {"kind": unit_kind, "id": unit_id} if unit_id else None,
            "starts_at": _when(form, "starts_at", user.zone),
            "estimated_completion_at": _when(form, "estimated_completion_at", user.zone),
            "expected_completion_at": _when(form, "expected_completion_at", user.zone)}
    if values["add_type_services"] and values["type"]:
        # The type's services, then the rows (a row naming one of them sets its quantity).
        activity_type = session.scalar(select(ActivityType).where(ActivityType.workspace_id == user.workspace_id,
                                                                  ActivityType.id == values["type"]))
        named = {r["product"] for r in rows}
        defaults = [{"product": pid, "quantity": "1"} for pid in (activity_type.service_product_ids or [])
                    if pid not in named] if activity_type else []
        body["services"] = defaults + rows
    else:
        body["services"] = rows
    return body


@router.post("/activities/new", response_class=HTMLResponse)
def schedule_activity(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = _form_values(form)

    def action(session) -> once.Done:
        data = validated(s.ActivityCreate, _body(session, user, form, values))
        activity = activities.schedule(session, data, actor=user.actor)
        return once.Done(f"/activities/{activity.id}", flash="Activity scheduled.")
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _form_page(request, user, values, errors=errors_of(exc),
                          status_code=exc.http_status if exc.http_status >= 400 else 422)


# --- one activity --------------------------------------------------------------------------------------

def _activity_page(request: Request, user: WebUser, activity_id: str, *, error: str | None = None,
                   status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        activity = activities.get_activity(session, user.workspace_id, activity_id)
        out = activities.activity_out(session, activity)
        names = _names(session, user.workspace_id, [activity])
        invoice = session.get(Invoice, activity.invoice_id) if activity.invoice_id else None
        account = session.get(BillingAccount, activity.account_id) if activity.account_id else None
        may_work = activities.may_work_on(user.actor, activity)
    return render(request, "activity_detail.html", nav="crm", activity=activity, out=out, names=names,
                  invoice=invoice, account=account, may_work=may_work, may_manage=activities.may_manage(user.actor),
                  status_labels=STATUS_LABELS, error=error, status_code=status_code)


@router.get("/activities/types", response_class=HTMLResponse)
def types_page(request: Request, user: WebUser = Depends(current_user)):
    return _types_page(request, user)


def _types_page(request: Request, user: WebUser, *, errors: dict | None = None, values: dict | None = None,
                status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        rows = activities.list_types(session, actor=user.actor, limit=500).items
        choices = _choices(session, user.workspace_id)
        products = {p.id: p for p in session.scalars(select(Product).where(
            Product.id.in_({i for t in rows for i in (t.service_product_ids or [])})))}
    return render(request, "activity_types.html", nav="crm", rows=rows, products=products, choices=choices,
                  may_manage=activities.may_manage(user.actor), errors=errors or {}, values=values or {},
                  status_code=status_code)


def _type_write(request: Request, user: WebUser, form: FormData, action, flash: str, key: str) -> HTMLResponse:
    def run(session) -> once.Done:
        action(session)
        return once.Done("/activities/types", flash=flash)
    try:
        return once.run(request, user, form, run)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        values = {"code": forms.text(form, "code", limit=100), "name": forms.text(form, "name", limit=200)}
        return _types_page(request, user, errors={f"{key}.{k}" if k else key: v for k, v in errors_of(exc).items()},
                          values={key: values}, status_code=exc.http_status if exc.http_status >= 400 else 422)


@router.post("/activities/types/new", response_class=HTMLResponse)
def new_type(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    services = [str(v) for v in form.getlist("services")][:50]

    def action(session):
        activities.create_type(session, validated(s.ActivityTypeCreate, {
            "code": forms.text(form, "code", limit=300), "name": forms.text(form, "name", limit=300),
            "services": services}), actor=user.actor)
    return _type_write(request, user, form, action, f"Created activity type {forms.text(form, 'code', limit=100)}.",
                       "new")


@router.post("/activities/types/{activity_type_id}", response_class=HTMLResponse)
def update_type(activity_type_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    services = [str(v) for v in form.getlist("services")][:50]

    def action(session):
        activities.update_type(session, activity_type_id, validated(s.ActivityTypeUpdate, {
            "name": forms.text(form, "name", limit=300), "active": bool(form.get("active")),
            "services": services}), actor=user.actor)
    return _type_write(request, user, form, action, "Activity type saved.", activity_type_id)


@router.get("/activities/{activity_id}", response_class=HTMLResponse)
def activity_page(activity_id: str, request: Request, user: WebUser = Depends(current_user)):
    return _activity_page(request, user, activity_id)


def _transition(request: Request, user: WebUser, form: FormData, activity_id: str, action, flash: str):
    def run(session) -> once.Done:
        action(session)
        return once.Done(f"/activities/{activity_id}", flash=flash)
    try:
        return once.run(request, user, form, run)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        # The reason in plain words on the activity's page; nothing changed.
        return _activity_page(request, user, activity_id, error=exc.message,
                              status_code=exc.http_status if exc.http_status >= 400 else 422)


@router.post("/activities/{activity_id}/start", response_class=HTMLResponse)
def start(activity_id: str, request: Request, user: WebUser = Depends(current_user),
          form: FormData = Depends(csrf_form)):
    return _transition(request, user, form, activity_id,
                       lambda session: activities.start(session, activity_id, actor=user.actor), "Activity started.")


@router.post("/activities/{activity_id}/complete", response_class=HTMLResponse)
def complete(activity_id: str, request: Request, user: WebUser = Depends(current_user),
             form: FormData = Depends(csrf_form)):
    return _transition(request, user, form, activity_id,
                       lambda session: activities.complete(session, activity_id, actor=user.actor),
                       "Activity completed (its services, if any, are billed on a posted invoice).")


@router.post("/activities/{activity_id}/cancel", response_class=HTMLResponse)
def cancel(activity_id: str, request: Request, user: WebUser = Depends(current_user),
           form: FormData = Depends(csrf_form)):
    reason = forms.text(form, "reason", limit=2000)
    return _transition(request, user, form, activity_id, lambda session: activities.cancel(
        session, activity_id, s.ActivityCancel(reason=reason), actor=user.actor), "Activity cancelled.")
