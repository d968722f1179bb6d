"""Projects: the list, a new project, and the project page with its eligible packs in burn order, the
"why not" of the customer's other packs, and consuming credits on the project."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from creditdesk.credits import reads
from creditdesk.credits import schemas as s
from creditdesk.credits import consumptions, governance
from creditdesk.credits.projects import create_project, project_contact_ids
from creditdesk.credits.models import Pack, Project
from creditdesk.errors import CreditdeskError, InvalidInput, NotPermitted
from creditdesk.parties.models import Customer, Office
from creditdesk.repository import get_in_workspace
from creditdesk.web import forms, once, repository
from creditdesk.web.catalog import FieldErrors, errors_of
from creditdesk.web.core import (
    WebRoute,
    WebUser,
    csrf_form,
    current_user,
    db_of,
    reading,
    fmt_amount,
    parse_amount,
    redirect,
    render,
)
from creditdesk.web.presenters import Names, credit_types, near_miss_reasons, pack_rows

router = APIRouter(route_class=WebRoute, include_in_schema=False)
fixed = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.get("/projects", response_class=HTMLResponse)
def projects(request: Request, user: WebUser = Depends(current_user)):
    q = (request.query_params.get("q") or "").strip()[:200]
    office_id = (request.query_params.get("office_id") or "").strip()[:40]
    cursor = request.query_params.get("cursor") or None
    with reading(db_of(request)) as session:
        page = reads.list_projects(session, actor=user.actor, limit=50, cursor=cursor, office_id=office_id or None,
                                   q=q or None)
        offices = repository.offices_by_customer(session, user.workspace_id)
        names = Names(session, user.workspace_id)
        names.load("office", {p.office_id for p in page.items})
        office_names = {p.office_id: names.get("office", p.office_id) for p in page.items}
    return render(request, "projects.html", nav="projects", projects=page.items, next_cursor=page.next_cursor,
                  q=q, office_id=office_id, offices=offices, office_names=office_names)


def _project_form(request: Request, user: WebUser, values: dict, *, errors: dict | None = None,
                  status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        offices = repository.offices_by_customer(session, user.workspace_id)
        people = repository.users_for_select(session, user.workspace_id)
    errors = dict(errors or {})
    error = errors.pop("", None) or ("Nothing was created: correct the fields marked below." if errors else None)
    return render(request, "project_new.html", nav="projects", values=values, offices=offices, people=people,
                  error=error, errors=errors, status_code=status_code)


def _project_request(values: dict) -> s.ProjectCreate:
    """The new project form read field by field: every problem next to its field, all at once."""
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = "Give the project a name."
    if not values["office_id"]:
        errors["office_id"] = "Choose the office the project is for."
    data, schema = forms.schema_errors(s.ProjectCreate, values, labels={"office_id": "Office",
                                                                       "contact_ids": "Project contacts"})
    for name, message in schema.items():
        errors.setdefault(name, message)
    if errors:
        raise FieldErrors(errors)
    return data


@fixed.get("/projects/new", response_class=HTMLResponse)
def new_project_form(request: Request, user: WebUser = Depends(current_user)):
    try:
        governance.require_consume(user.actor)
    except NotPermitted as exc:
        raise forms.worded(exc) from None
    return _project_form(request, user, {"office_id": request.query_params.get("office_id", "")[:40],
                                         "contact_ids": []})


@fixed.post("/projects/new", response_class=HTMLResponse)
def new_project(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {"name": forms.text(form, "name", limit=300), "office_id": forms.text(form, "office_id", limit=40),
              "contact_ids": [str(v)[:40] for v in form.getlist("contact_ids")][:200]}
    try:
        data = _project_request(values)
        project = db_of(request).write(lambda session: create_project(session, data, actor=user.actor))
    except NotPermitted as exc:
        raise forms.worded(exc) from None
    except CreditdeskError as exc:
        if isinstance(exc, FieldErrors):
            errors = errors_of(exc)
        elif exc.code == "not_found":  # an office or a contact that is not (or no longer) in this workspace
            errors = {"contact_ids" if exc.details.get("object_id") in values["contact_ids"] else "office_id":
                      "Choose from the list: this one is not in the workspace (any more)."}
        else:
            errors = forms.placed(exc)
        return _project_form(request, user, values, errors=errors, status_code=422)
    return redirect(request, f"/projects/{project.id}", flash=f"Created project {project.name}.")


def _project_view(request: Request, user: WebUser, project_id: str, *, credit_type: str | None,
                  product_code: str | None, consume_values: dict | None = None, errors: dict | None = None,
                  status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        project = get_in_workspace(session, Project, user.workspace_id, project_id)
        office = session.get(Office, project.office_id)
        customer = session.get(Customer, office.customer_id) if office and office.customer_id else None
        names = Names(session, user.workspace_id)
        contacts = project_contact_ids(session, project.id)
        names.load("user", set(contacts))
        types = credit_types(session, user.actor)
        if credit_type not in types:
            # Default: the credit type of the pack that would burn first, else the first one there is.
            overview = reads.eligibility(session, actor=user.actor, context_kind="project", context_id=project.id,
                                         credit_type=None, product_code=product_code)
            credit_type = (overview.eligible[0].pack.credit_type if overview.eligible
                           else next(iter(types), None))
        result = None
        eligible, misses = [], []
        if credit_type:
            result = reads.eligibility(session, actor=user.actor, context_kind="project", context_id=project.id,
                                       credit_type=credit_type, product_code=product_code)
            ids = [e.pack.id for e in result.eligible] + [m.pack.id for m in result.not_eligible]
            loaded = repository.packs_with_accounts(session, user.workspace_id, ids)
            rows = {r.view.id: r for r in pack_rows(session, user.actor, loaded, names=names, with_projects=False)}
            eligible = [(e.burn_rank, rows[e.pack.id]) for e in result.eligible]
            # Packs of other credit types are not near misses of this one: they are listed apart.
            for m in result.not_eligible:
                if m.reasons == ["other_credit_type"]:
                    continue
                reasons = [r for r in m.reasons if r != "other_credit_type"] if m.pack.credit_type == credit_type \
                    else m.reasons
                misses.append((rows[m.pack.id], near_miss_reasons(rows[m.pack.id], reasons,
                                                                  wanted_unit=credit_type, zone=user.zone)))
        recent_consumptions = consumptions.list_consumptions(session, actor=user.actor, limit=50,
                                                             context_kind="project", context_id=project.id).items
        consumption_rows = []
        ct_by_id = {ct.id: ct for ct in types.values()}
        names.load("user", {c.actor_id for c in recent_consumptions if c.actor_id})
        for c in recent_consumptions:
            out = consumptions.consumption_out(session, c)
            ct = ct_by_id.get(c.credit_type_id)
            consumption_rows.append({"c": out, "scale": ct.scale if ct else 0,
                                     "actor": names.get("user", c.actor_id) or "system"})
        pack_names = repository.names(session, user.workspace_id, Pack,
                                      {line.pack_id for r in consumption_rows for line in r["c"].lines})
    scale = types[credit_type].scale if credit_type in types else 0
    errors = dict(errors or {})
    error = errors.pop("", None) or ("Nothing was consumed: correct the fields marked below." if errors else None)
    return render(request, "project.html", nav="projects", project=project, office=office, customer=customer,
                  contacts=[(cid, names.get("user", cid)) for cid in contacts], types=types,
                  credit_type=credit_type, product_code=product_code or "", result=result, eligible=eligible,
                  misses=misses, scale=scale, consumptions=consumption_rows, pack_names=pack_names,
                  consume=consume_values or {}, error=error, errors=errors, status_code=status_code)


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(project_id: str, request: Request, user: WebUser = Depends(current_user)):
    params = request.query_params
    return _project_view(request, user, project_id, credit_type=(params.get("credit_type") or "")[:40] or None,
                         product_code=(params.get("product_code") or "").strip()[:100] or None)


def _consume_request(project_id: str, values: dict, types: dict) -> s.ConsumeRequest:
    """The consume form read field by field: every problem next to its field, all at once (the credit type and
    product come from the choice above the form: a problem with them is said at the top)."""
    errors: dict[str, str] = {}
    credit_type = values["credit_type"]
    amount = None
    if credit_type not in types:
        errors[""] = "Choose a credit type above and press Show, then consume."
    if not values["amount"]:
        errors["amount"] = "Enter the amount to consume."
    elif credit_type in types:
        try:
            amount = parse_amount(values["amount"], types[credit_type].scale, label="Amount")
        except InvalidInput as exc:
            errors["amount"] = exc.message
    data, schema = forms.schema_errors(s.ConsumeRequest, {
        "context": {"kind": "project", "id": project_id}, "credit_type": credit_type or "-",
        "amount": amount if amount is not None else 1, "product_code": values["product_code"] or None,
        "reference": {"kind": "project", "id": project_id}, "allow_partial": values["allow_partial"] == "yes"},
        fields={"amount": "amount", "context": "", "credit_type": "", "product_code": "", "reference": "",
                "allow_partial": ""})
    for name, message in schema.items():
        errors.setdefault(name, message)
    if errors:
        raise FieldErrors(errors)
    return data


@router.post("/projects/{project_id}/consume", response_class=HTMLResponse)
def consume(project_id: str, request: Request, user: WebUser = Depends(current_user),
            form: FormData = Depends(csrf_form)):
    db = db_of(request)
    values = {k: forms.text(form, k, limit=200) for k in ("credit_type", "amount", "product_code", "allow_partial")}
    credit_type = values["credit_type"] or None
    product_code = values["product_code"] or None
    try:
        with reading(db) as session:
            get_in_workspace(session, Project, user.workspace_id, project_id)
            types = credit_types(session, user.actor)
        data = _consume_request(project_id, values, types)
        scale = types[credit_type].scale
        query = f"?credit_type={credit_type}" + (f"&product_code={product_code}" if product_code else "")

        def consume_once(session) -> once.Done:
            consumption = consumptions.consume(session, data, actor=user.actor)
            lines = consumption.lines
            names = repository.names(session, user.workspace_id, Pack, {line.pack_id for line in lines})
            paid_by = ", ".join(f"{names.get(line.pack_id, line.pack_id)} ({fmt_amount(line.amount, scale)})"
                                for line in lines)
            partial = (f" (of {fmt_amount(consumption.amount_requested, scale)} asked: not enough left)"
                       if consumption.amount < consumption.amount_requested else "")
            consumed = fmt_amount(consumption.amount, scale)
            return once.Done(f"/projects/{project_id}{query}",
                             flash=f"Consumed {consumed} {credit_type}{partial}, from {paid_by}.")
        return once.run(request, user, form, consume_once)
    except NotPermitted as exc:
        raise forms.worded(exc) from None
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        if isinstance(exc, FieldErrors):
            errors = errors_of(exc)
        elif exc.code == "insufficient_credits" and "available" in exc.details and credit_type in types:
            errors = {"amount": f"Not enough {credit_type}: "
                                f"{fmt_amount(exc.details['available'], types[credit_type].scale)} available for "
                                f"this project, {values['amount']} requested. Nothing was consumed."}
        else:
            errors = forms.placed(exc, {"insufficient_credits": "amount"}, fields={"amount": "amount"})
        return _project_view(request, user, project_id, credit_type=credit_type, product_code=product_code,
                             consume_values=values, errors=errors, status_code=409 if exc.http_status == 409 else 422)
