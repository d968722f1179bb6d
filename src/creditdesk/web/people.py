"""People and structure: customers, offices, users and teams created and changed from the back office,
project contacts, and a consumption reversed (issue 17).

Every write calls the service the API calls (parties.service, credits.projects, credits.consumptions) under
a one-time key (web/once.py), so the rules are the API's: who may create or change whom (a manager only
within their offices, never granting what they do not hold) is decided there, never here. A refusal comes
back on the form, next to the field it is about, in words (no permission codes, no schema messages), with
the status the API answers (403 for a permission, 422 for bad input) and nothing written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from creditdesk.credits import consumptions, governance
from creditdesk.credits import schemas as cs
from creditdesk.credits.models import Consumption, CreditType, Pack, Project
from creditdesk.credits.projects import project_contact_ids, update_project
from creditdesk.credits.repository import CONSUME
from creditdesk.errors import CreditdeskError
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import PERMISSIONS, ROLES, Customer, Office, Team, User
from creditdesk.repository import get_in_workspace
from creditdesk.web import core, forms, once, repository
from creditdesk.web.core import (
    WebRoute,
    WebUser,
    csrf_form,
    current_user,
    db_of,
    fmt_amount,
    reading,
    redirect,
    render,
    safe_next,
)
from creditdesk.web.presenters import Names

router = APIRouter(route_class=WebRoute, include_in_schema=False)
# Registered before the clients router: /customers/new is not the customer "new".
fixed = APIRouter(route_class=WebRoute, include_in_schema=False)

PAGE_SIZE = 50

PERMISSION_LABELS = {
    "send_sms": "Send SMS",
    "manage_office_credits": "Manage office SMS credits",
    "manage_packs": "Manage packs",
    "consume_credits": "Consume credits",
    "manage_users": "Manage users",
}
PERMISSION_HINTS = {
    "send_sms": "sends SMS messages; SMS credits can be bought for or moved to them",
    "manage_office_credits": "buys and moves SMS credits for the users of their offices",
    "manage_packs": "grants, corrects and voids packs; reverses consumptions",
    "consume_credits": "consumes credits on projects and creates projects",
    "manage_users": "with the manager role: creates and changes the users of their offices",
}
ROLE_LABELS = {"member": "Member", "manager": "Manager", "master": "Master (may do everything)"}
assert set(PERMISSION_LABELS) == set(PERMISSIONS) and set(ROLE_LABELS) == set(ROLES)

# Pages show permissions by their label (user page, settings): {{ permission_label(code) }}.
core._env.globals["permission_label"] = lambda code: PERMISSION_LABELS.get(code, code)

FIELD_LABELS = {
    "name": "Name", "email": "Email", "external_ref": "External reference", "notes": "Notes",
    "language": "Language",
    "customer_id": "Customer", "role": "Role", "permissions": "Permissions", "primary_office_id": "Primary office",
    "additional_office_ids": "Additional offices", "password": "Password", "current_password": "Current password",
    "is_active": "Active", "office_id": "Office", "member_ids": "Members", "contact_ids": "Project contacts",
    "reason": "Reason",
}
# Service error codes -> the field they are about.
CODE_FIELDS = {
    "email_taken": "email", "email_required": "email", "invalid_email": "email", "contact_has_no_login": "password",
    "current_password_required": "current_password", "current_password_wrong": "current_password",
    "cannot_deactivate_self": "is_active", "office_outside_your_offices": "additional_office_ids",
}


class FieldErrors(Exception):
    """Form errors by field name ("" for the form as a whole)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def words(message: str) -> str:
    """A service message as a person reads it: permission codes and field names in words."""
    for code, label in PERMISSION_LABELS.items():
        message = re.sub(rf"\b{code}\b", f"“{label}”", message)
    return message.replace(" (current_password)", "").replace(" (user_id)", "")


def _sentence(err: dict, label: str) -> str:
    if err.get("type") == "string_pattern_mismatch" and label == "Language":
        return "Language is not a language code (like en, de or fr-CA)."
    return forms.sentence(err, label)


def checked(model: type[BaseModel], data: dict) -> BaseModel:
    """The API's request schema built from the form; its errors by field, in sentences."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            loc = err.get("loc") or ("",)
            name = str(loc[0])
            errors.setdefault(name if name in FIELD_LABELS else "",
                              _sentence(err, FIELD_LABELS.get(name, name.replace("_", " ").capitalize())))
        raise FieldErrors(errors) from None


def field_of(exc: CreditdeskError) -> str:
    if exc.code in CODE_FIELDS:
        return CODE_FIELDS[exc.code]
    if exc.details.get("field") in FIELD_LABELS:
        return exc.details["field"]
    if "cannot grant permissions" in exc.message:
        return "permissions"
    if "own role" in exc.message or "create or change master users" in exc.message:
        return "role"
    return ""


def save(request: Request, user: WebUser, form: FormData, action: Callable, page: Callable[[dict, int], Response]
         ) -> Response:
    """Do the write once (one-time key); a refusal shows the form again with the error by its field and the
    API's status, nothing written."""
    try:
        return once.run(request, user, form, action)
    except FieldErrors as exc:
        return page(exc.errors, 422)
    except CreditdeskError as exc:
        status = exc.http_status if exc.http_status in (403, 404, 409, 422) else 422
        return page({field_of(exc): words(exc.message)}, status)


def _cursor(request: Request) -> str | None:
    return (request.query_params.get("cursor") or "")[:500] or None


# --- customers ----------------------------------------------------------------------------------------

CUSTOMER_FIELDS = ("name", "email", "external_ref", "notes", "language")


def _customer_page(request: Request, values: dict, *, customer: Customer | None = None, errors: dict | None = None,
                   status_code: int = 200) -> HTMLResponse:
    return render(request, "customer_form.html", nav="clients", values=values, customer=customer,
                  errors=errors or {}, status_code=status_code)


def _customer_data(form: FormData) -> tuple[dict, dict]:
    values = {k: forms.text(form, k, limit=10_000 if k == "notes" else 400) for k in CUSTOMER_FIELDS}
    data = {"name": values["name"], "email": values["email"] or None, "external_ref": values["external_ref"] or None,
            "notes": values["notes"], "language": values["language"].strip() or None}
    return values, data


@fixed.get("/customers/new", response_class=HTMLResponse)
def new_customer_form(request: Request, user: WebUser = Depends(current_user)):
    parties.require_manager(user.actor, "create customers")
    return _customer_page(request, {k: "" for k in CUSTOMER_FIELDS})


@fixed.post("/customers/new", response_class=HTMLResponse)
def new_customer(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values, data = _customer_data(form)

    def page(errors, status):
        return _customer_page(request, values, errors=errors, status_code=status)

    def write(session) -> once.Done:
        customer = parties.create_customer(session, checked(ps.CustomerCreate, data), actor=user.actor)
        return once.Done(f"/customers/{customer.id}", flash=f"Created customer {customer.name}.")
    return save(request, user, form, write, page)


@router.get("/customers/{customer_id}/edit", response_class=HTMLResponse)
def edit_customer_form(customer_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        customer = get_in_workspace(session, Customer, user.workspace_id, customer_id)
    parties.require_manager(user.actor, "change customers")
    values = {k: getattr(customer, k) or "" for k in CUSTOMER_FIELDS}
    return _customer_page(request, values, customer=customer)


@router.post("/customers/{customer_id}/edit", response_class=HTMLResponse)
def edit_customer(customer_id: str, request: Request, user: WebUser = Depends(current_user),
                  form: FormData = Depends(csrf_form)):
    with reading(db_of(request)) as session:
        customer = get_in_workspace(session, Customer, user.workspace_id, customer_id)
    values, data = _customer_data(form)

    def page(errors, status):
        return _customer_page(request, values, customer=customer, errors=errors, status_code=status)

    def write(session) -> once.Done:
        changed = parties.update_customer(session, customer_id, checked(ps.CustomerUpdate, data), actor=user.actor)
        return once.Done(f"/customers/{customer_id}", flash=f"Saved customer {changed.name}.")
    return save(request, user, form, write, page)


# --- offices ------------------------------------------------------------------------------------------

def _office_page(request: Request, user: WebUser, values: dict, *, office: Office | None = None,
                 errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        customers = parties.list_customers(session, actor=user.actor, limit=500).items
        people, customer = [], None
        if office is not None:
            people = parties.users_of_office(session, user.workspace_id, office.id)
            customer = session.get(Customer, office.customer_id) if office.customer_id else None
    customers = sorted(customers, key=lambda c: (c.name.lower(), c.id))
    return render(request, "office_form.html", nav="clients", values=values, office=office, customer=customer,
                  customers=customers, people=people, errors=errors or {}, status_code=status_code)


@fixed.get("/offices/new", response_class=HTMLResponse)
def new_office_form(request: Request, user: WebUser = Depends(current_user)):
    parties.require_manager(user.actor, "create offices")
    customer_id = (request.query_params.get("customer_id") or "")[:40]
    return _office_page(request, user, {"name": "", "email": "", "customer_id": customer_id})


@fixed.post("/offices/new", response_class=HTMLResponse)
def new_office(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {k: forms.text(form, k, limit=400) for k in ("name", "email", "customer_id")}

    def page(errors, status):
        return _office_page(request, user, values, errors=errors, status_code=status)

    def write(session) -> once.Done:
        data = checked(ps.OfficeCreate, {"name": values["name"], "email": values["email"] or None,
                                         "customer_id": values["customer_id"] or None})
        office = parties.create_office(session, data, actor=user.actor)
        return once.Done(f"/offices/{office.id}", flash=f"Created office {office.name}.")
    return save(request, user, form, write, page)


@router.get("/offices/{office_id}/edit", response_class=HTMLResponse)
def edit_office_form(office_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        office = get_in_workspace(session, Office, user.workspace_id, office_id)
    parties.require_manager(user.actor, "change offices")
    return _office_page(request, user, {"name": office.name, "email": office.email or "",
                                        "customer_id": office.customer_id or ""}, office=office)


@router.post("/offices/{office_id}/edit", response_class=HTMLResponse)
def edit_office(office_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    with reading(db_of(request)) as session:
        office = get_in_workspace(session, Office, user.workspace_id, office_id)
    values = {"name": forms.text(form, "name", limit=400), "email": forms.text(form, "email", limit=400),
              "customer_id": office.customer_id or ""}

    def page(errors, status):
        return _office_page(request, user, values, office=office, errors=errors, status_code=status)

    def write(session) -> once.Done:
        data = checked(ps.OfficeUpdate, {"name": values["name"], "email": values["email"] or None})
        changed = parties.update_office(session, office_id, data, actor=user.actor)
        return once.Done(f"/offices/{office_id}", flash=f"Saved office {changed.name}.")
    return save(request, user, form, write, page)


# --- users --------------------------------------------------------------------------------------------

@router.get("/users", response_class=HTMLResponse)
def users(request: Request, user: WebUser = Depends(current_user)):
    params = request.query_params
    q = (params.get("q") or "").strip()[:200]
    role = params.get("role") if params.get("role") in ROLES else ""
    kind = params.get("kind") if params.get("kind") in ("staff", "contact") else ""
    with reading(db_of(request)) as session:
        page = parties.list_users(session, actor=user.actor, limit=PAGE_SIZE, cursor=_cursor(request),
                                  q=q or None, role=role or None,
                                  is_staff={"staff": True, "contact": False}.get(kind))
        names = Names(session, user.workspace_id)
        names.load("office", {u.primary_office_id for u in page.items if u.primary_office_id})
        offices = {u.id: names.get("office", u.primary_office_id) if u.primary_office_id else "" for u in page.items}
    return render(request, "users.html", nav="settings", people=page.items, offices=offices,
                  next_cursor=page.next_cursor, first_page=not _cursor(request), q=q, role=role, kind=kind,
                  role_labels=ROLE_LABELS, permission_labels=PERMISSION_LABELS)


def _user_page(request: Request, user: WebUser, values: dict, *, person: User | None = None,
               errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        offices = repository.offices_by_customer(session, user.workspace_id)
    return render(request, "user_form.html", nav="settings", values=values, person=person, offices=offices,
                  errors=errors or {}, role_labels=ROLE_LABELS, permission_labels=PERMISSION_LABELS,
                  permission_hints=PERMISSION_HINTS, is_self=person is not None and person.id == user.id,
                  status_code=status_code)


def _user_values(form: FormData) -> dict:
    return {
        "kind": "contact" if forms.text(form, "kind") == "contact" else "staff",
        "name": forms.text(form, "name", limit=400), "email": forms.text(form, "email", limit=400),
        "role": forms.text(form, "role", limit=40) or "member",
        "permissions": [str(v)[:60] for v in form.getlist("permissions")][:20],
        "primary_office_id": forms.text(form, "primary_office_id", limit=40),
        "additional_office_ids": [str(v)[:40] for v in form.getlist("additional_office_ids")][:200],
        "is_active": forms.text(form, "is_active") == "yes",
        # Passwords as typed (spaces included), never shown again.
        "password": str(form.get("password") or "")[:300],
        "current_password": str(form.get("current_password") or "")[:1000],
    }


@fixed.get("/users/new", response_class=HTMLResponse)
def new_user_form(request: Request, user: WebUser = Depends(current_user)):
    parties.require_user_manager(user.actor)
    params = request.query_params
    office_id = (params.get("office_id") or "")[:40]
    return _user_page(request, user, {"kind": "contact" if params.get("kind") == "contact" else "staff",
                                      "name": "", "email": "", "role": "member", "permissions": [],
                                      "primary_office_id": office_id, "additional_office_ids": [],
                                      "is_active": True})


@fixed.post("/users/new", response_class=HTMLResponse)
def new_user(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = _user_values(form)
    staff = values["kind"] == "staff"

    def page(errors, status):
        return _user_page(request, user, {**values, "password": ""}, errors=errors, status_code=status)

    def write(session) -> once.Done:
        data = checked(ps.UserCreate, {
            "name": values["name"], "email": values["email"] or None, "is_staff": staff,
            "role": values["role"] if staff else "member", "permissions": values["permissions"] if staff else [],
            "primary_office_id": values["primary_office_id"] or None,
            "additional_office_ids": values["additional_office_ids"], "password": values["password"] or None})
        person = parties.create_user(session, data, actor=user.actor)
        kind = "user" if staff else "contact"
        return once.Done(f"/users/{person.id}", flash=f"Created {kind} {person.name}.")
    return save(request, user, form, write, page)


def _load_person(request: Request, user: WebUser, user_id: str) -> tuple[User, list[str]]:
    with reading(db_of(request)) as session:
        person = get_in_workspace(session, User, user.workspace_id, user_id)
        additional = parties.additional_office_ids(session, person.id)
    return person, additional


@router.get("/users/{user_id}/edit", response_class=HTMLResponse)
def edit_user_form(user_id: str, request: Request, user: WebUser = Depends(current_user)):
    person, additional = _load_person(request, user, user_id)
    if person.id != user.id:
        parties.require_user_manager(user.actor)  # the rest (whom, what) is the service's, at saving
    return _user_page(request, user, {
        "kind": "staff" if person.is_staff else "contact", "name": person.name, "email": person.email or "",
        "role": person.role, "permissions": list(person.permissions or []),
        "primary_office_id": person.primary_office_id or "", "additional_office_ids": additional,
        "is_active": person.is_active}, person=person)


def user_changes(person: User, additional: list[str], values: dict) -> dict:
    """The fields the form changes, as a PATCH would send them: only what differs, so that saving one's own
    name does not ask for rights over one's own role, offices or permissions."""
    changes: dict = {}
    if values["name"] != person.name:
        changes["name"] = values["name"]
    if (values["email"] or "").lower() != (person.email or "").lower():
        changes["email"] = values["email"] or None
    if person.is_staff:
        if values["role"] != person.role:
            changes["role"] = values["role"]
        if set(values["permissions"]) != set(person.permissions or []):
            changes["permissions"] = values["permissions"]
        if values["password"]:
            changes["password"] = values["password"]
    elif values["password"]:
        changes["password"] = values["password"]  # the service says contacts have no login
    if (values["primary_office_id"] or None) != person.primary_office_id:
        changes["primary_office_id"] = values["primary_office_id"] or None
    if set(values["additional_office_ids"]) != set(additional):
        changes["additional_office_ids"] = values["additional_office_ids"]
    if values["is_active"] != person.is_active:
        changes["is_active"] = values["is_active"]
    if changes.keys() & {"email", "password"} and values["current_password"]:
        changes["current_password"] = values["current_password"]
    return changes


@router.post("/users/{user_id}/edit", response_class=HTMLResponse)
def edit_user(user_id: str, request: Request, user: WebUser = Depends(current_user),
              form: FormData = Depends(csrf_form)):
    person, additional = _load_person(request, user, user_id)
    values = _user_values(form)
    values["kind"] = "staff" if person.is_staff else "contact"
    if person.id == user.id:
        values["is_active"] = person.is_active  # no "Active" box on one's own form
    changes = user_changes(person, additional, values)

    def page(errors, status):
        return _user_page(request, user, {**values, "password": "", "current_password": ""}, person=person,
                          errors=errors, status_code=status)

    if not changes:
        return redirect(request, f"/users/{user_id}", flash="Nothing to save: nothing was changed.")

    def write(session) -> once.Done:
        changed = parties.update_user(session, user_id, checked(ps.UserUpdate, changes), actor=user.actor)
        return once.Done(f"/users/{user_id}", flash=f"Saved {changed.name}.")
    return save(request, user, form, write, page)


# --- teams --------------------------------------------------------------------------------------------

@router.get("/teams", response_class=HTMLResponse)
def teams(request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        page = parties.list_teams(session, actor=user.actor, limit=PAGE_SIZE, cursor=_cursor(request))
        names = Names(session, user.workspace_id)
        members = {t.id: parties.team_member_ids(session, t.id) for t in page.items}
        names.load("office", {t.office_id for t in page.items if t.office_id})
        names.load("user", {m for ids in members.values() for m in ids})
        rows = [{"team": t, "office": names.get("office", t.office_id) if t.office_id else "",
                 "members": [names.get("user", m) for m in members[t.id]]} for t in page.items]
    return render(request, "teams.html", nav="settings", rows=rows, next_cursor=page.next_cursor,
                  first_page=not _cursor(request))


def _team_page(request: Request, user: WebUser, values: dict, *, team: Team | None = None,
               errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        offices = repository.offices_by_customer(session, user.workspace_id)
        people = repository.users_for_select(session, user.workspace_id)
    return render(request, "team_form.html", nav="settings", values=values, team=team, offices=offices,
                  people=people, errors=errors or {}, status_code=status_code)


def _team_values(form: FormData) -> dict:
    return {"name": forms.text(form, "name", limit=400), "office_id": forms.text(form, "office_id", limit=40),
            "member_ids": [str(v)[:40] for v in form.getlist("member_ids")][:1000]}


@fixed.get("/teams/new", response_class=HTMLResponse)
def new_team_form(request: Request, user: WebUser = Depends(current_user)):
    parties.require_manager(user.actor, "create teams")
    return _team_page(request, user, {"name": "", "office_id": (request.query_params.get("office_id") or "")[:40],
                                      "member_ids": []})


@fixed.post("/teams/new", response_class=HTMLResponse)
def new_team(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = _team_values(form)

    def page(errors, status):
        return _team_page(request, user, values, errors=errors, status_code=status)

    def write(session) -> once.Done:
        data = checked(ps.TeamCreate, {"name": values["name"], "office_id": values["office_id"] or None,
                                       "member_ids": values["member_ids"]})
        team = parties.create_team(session, data, actor=user.actor)
        return once.Done(f"/teams/{team.id}", flash=f"Created team {team.name}.")
    return save(request, user, form, write, page)


@router.get("/teams/{team_id}", response_class=HTMLResponse)
def team_page(team_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        team = get_in_workspace(session, Team, user.workspace_id, team_id)
        members = parties.team_member_ids(session, team.id)
    return _team_page(request, user, {"name": team.name, "office_id": team.office_id or "", "member_ids": members},
                      team=team)


@router.post("/teams/{team_id}", response_class=HTMLResponse)
def edit_team(team_id: str, request: Request, user: WebUser = Depends(current_user),
              form: FormData = Depends(csrf_form)):
    with reading(db_of(request)) as session:
        team = get_in_workspace(session, Team, user.workspace_id, team_id)
    values = _team_values(form)

    def page(errors, status):
        return _team_page(request, user, values, team=team, errors=errors, status_code=status)

    def write(session) -> once.Done:
        data = checked(ps.TeamUpdate, {"name": values["name"], "office_id": values["office_id"] or None,
                                       "member_ids": values["member_ids"]})
        changed = parties.update_team(session, team_id, data, actor=user.actor)
        return once.Done(f"/teams/{team_id}", flash=f"Saved team {changed.name}.")
    return save(request, user, form, write, page)


# --- project contacts -----------------------------------------------------------------------------------

def _contacts_page(request: Request, user: WebUser, project: Project, selected: list[str], *,
                   errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        office = session.get(Office, project.office_id)
        people = repository.users_for_select(session, user.workspace_id)
    return render(request, "project_contacts.html", nav="projects", project=project, office=office, people=people,
                  selected=selected, errors=errors or {}, status_code=status_code)


@router.get("/projects/{project_id}/contacts", response_class=HTMLResponse)
def project_contacts_form(project_id: str, request: Request, user: WebUser = Depends(current_user)):
    governance.require_consume(user.actor)
    with reading(db_of(request)) as session:
        project = get_in_workspace(session, Project, user.workspace_id, project_id)
        selected = project_contact_ids(session, project.id)
    return _contacts_page(request, user, project, selected)


@router.post("/projects/{project_id}/contacts", response_class=HTMLResponse)
def project_contacts(project_id: str, request: Request, user: WebUser = Depends(current_user),
                     form: FormData = Depends(csrf_form)):
    with reading(db_of(request)) as session:
        project = get_in_workspace(session, Project, user.workspace_id, project_id)
    selected = [str(v)[:40] for v in form.getlist("contact_ids")][:200]

    def page(errors, status):
        return _contacts_page(request, user, project, selected, errors=errors, status_code=status)

    def write(session) -> once.Done:
        update_project(session, project_id, checked(cs.ProjectUpdate, {"contact_ids": selected}), actor=user.actor)
        count = len(set(selected))
        return once.Done(f"/projects/{project_id}",
                         flash=f"Saved the contacts of {project.name}: {count} contact{'s' if count != 1 else ''}.")
    return save(request, user, form, write, page)


# --- reverse a consumption ---------------------------------------------------------------------------------

def _consumption(session, user: WebUser, consumption_id: str) -> Consumption:
    c = get_in_workspace(session, Consumption, user.workspace_id, consumption_id)
    governance.require_visible(session, user.actor, c.credit_type_id, [(c.context_kind, c.context_id)],
                               label="consumption", object_id=c.id)
    return c


def _reverse_page(request: Request, user: WebUser, consumption_id: str, *, reason: str = "",
                  errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        c = _consumption(session, user, consumption_id)
        out = consumptions.consumption_out(session, c)
        ct = session.get(CreditType, c.credit_type_id)
        pack_names = repository.names(session, user.workspace_id, Pack, {line.pack_id for line in out.lines})
        names = Names(session, user.workspace_id)
        if c.actor_id:
            names.load("user", {c.actor_id})
        context = _context_label(session, user, c)
    default_back = f"/projects/{c.context_id}" if c.context_kind == "project" else "/credits"
    return render(request, "reverse.html", nav="projects" if c.context_kind == "project" else "credits",
                  c=out, scale=ct.scale if ct else 0, unit=ct.code if ct else "", pack_names=pack_names,
                  actor=names.get("user", c.actor_id) if c.actor_id else "system", context=context,
                  back=safe_next(request.query_params.get("back"), default_back), reason=reason,
                  errors=errors or {}, status_code=status_code)


def _context_label(session, user: WebUser, c: Consumption) -> str:
    if c.context_kind == "project":
        project = session.get(Project, c.context_id)
        return f"Project {project.name}" if project else "A project"
    if c.context_kind in ("office", "user", "customer"):
        return f"{c.context_kind.capitalize()} {Names(session, user.workspace_id).get(c.context_kind, c.context_id)}"
    return f"{c.context_kind.replace('_', ' ').capitalize()} {c.context_id}"


@router.get("/consumptions/{consumption_id}/reverse", response_class=HTMLResponse)
def reverse_form(consumption_id: str, request: Request, user: WebUser = Depends(current_user)):
    governance.require_manage_packs(user.actor, "reverse consumptions")
    return _reverse_page(request, user, consumption_id)


@router.post("/consumptions/{consumption_id}/reverse", response_class=HTMLResponse)
def reverse(consumption_id: str, request: Request, user: WebUser = Depends(current_user),
            form: FormData = Depends(csrf_form)):
    governance.require_manage_packs(user.actor, "reverse consumptions")  # before asking for a reason
    reason = forms.text(form, "reason", limit=2000)
    back = safe_next(forms.text(form, "back", limit=1000), "/credits")

    def page(errors, status):
        return _reverse_page(request, user, consumption_id, reason=reason, errors=errors, status_code=status)

    if not reason:
        return page({"reason": "Give the reason for reversing: it is kept in the activity log."}, 422)

    def write(session) -> once.Done:
        c = consumptions.reverse_consumption(session, consumption_id, actor=user.actor, reason=reason)
        ct = session.get(CreditType, c.credit_type_id)
        scale = ct.scale if ct else 0
        lines = consumptions.operation_lines(session, c.id, CONSUME)
        pack_names = repository.names(session, user.workspace_id, Pack, {line["pack_id"] for line in lines})
        to = ", ".join(f"{pack_names.get(line['pack_id'], line['pack_id'])} ({fmt_amount(line['amount'], scale)})"
                       for line in lines)
        return once.Done(back, flash=f"Reversed the consumption of {fmt_amount(c.amount, scale)} "
                                     f"{ct.code if ct else ''}: the credits went back to {to}.")
    return save(request, user, form, write, page)
