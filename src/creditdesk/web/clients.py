"""Clients: customers -> offices -> users, and the office's Credit information tab (seed 000)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from creditdesk.credits import reads
from creditdesk.parties import service as parties
from creditdesk.parties.models import Customer, Office, User
from creditdesk.repository import get_in_workspace
from creditdesk.web import finance, repository
from creditdesk.web.core import WebRoute, WebUser, current_user, db_of, reading, render
from creditdesk.web.presenters import Names, credit_types, pack_rows

router = APIRouter(route_class=WebRoute, include_in_schema=False)

STATUS_ORDER = {"active": 0, "depleted": 1, "expired": 2, "voided": 3}


def all_packs(session, user: WebUser, **filters) -> list:
    """Every pack matching the filters, all pages (an office or a person holds a handful, not millions)."""
    rows, cursor = [], None
    while True:
        page = reads.list_packs(session, actor=user.actor, limit=500, cursor=cursor, sort="expires_at", **filters)
        rows.extend(page.items)
        cursor = page.next_cursor
        if not cursor or len(rows) >= 5000:
            return rows


def totals_by_type(rows, types: dict) -> list[dict]:
    """One totals line per credit type: packs, original quantity, remaining and held, packs per status."""
    totals: dict[str, dict] = {}
    for row in rows:
        v = row.view
        t = totals.setdefault(v.credit_type, {"credit_type": v.credit_type, "packs": 0, "quantity": 0,
                                              "remaining": 0, "held": 0, "scale": row.scale,
                                              "name": row.credit_type_name, "statuses": {}})
        t["packs"] += 1
        t["quantity"] += v.quantity
        if v.status == "active":
            t["remaining"] += v.remaining
        t["held"] += v.held
        t["statuses"][v.status] = t["statuses"].get(v.status, 0) + 1
    return [totals[k] for k in sorted(totals)]


@router.get("/clients", response_class=HTMLResponse)
def clients(request: Request, user: WebUser = Depends(current_user)):
    q = (request.query_params.get("q") or "").strip()[:200]
    cursor = request.query_params.get("cursor") or None
    with reading(db_of(request)) as session:
        page = parties.list_customers(session, actor=user.actor, limit=50, cursor=cursor, q=q or None)
        offices = repository.offices_by_customer(session, user.workspace_id)
    by_customer: dict[str | None, list] = {}
    for office, _ in offices:
        by_customer.setdefault(office.customer_id, []).append(office)
    return render(request, "clients.html", nav="clients", customers=page.items, next_cursor=page.next_cursor,
                  q=q, by_customer=by_customer, own_offices=by_customer.get(None, []))


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(customer_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        customer = get_in_workspace(session, Customer, user.workspace_id, customer_id)
        offices = parties.list_offices(session, actor=user.actor, customer_id=customer.id, limit=500).items
        people = {o.id: parties.users_of_office(session, user.workspace_id, o.id) for o in offices}
        types = credit_types(session, user.actor)
        rows = pack_rows(session, user.actor, all_packs(session, user, customer_id=customer.id,
                                                        status=["active"]), with_projects=False)
        billing = finance.customer_sections(session, user, customer.id)
        from creditdesk.web.packages import customer_section  # the Packages section (issue 13)

        package_section = customer_section(session, user, customer.id)
        from creditdesk.web.activities import customer_section as activities_section  # activities (seed 002)

        activity_section = activities_section(session, user, customer.id)
        from creditdesk.web.communications import customer_section as communications_section  # bills sent

        package_section.update(communications_section(session, user, customer.id))
    contacts = sorted({p.id: p for group in people.values() for p in group if not p.is_staff}.values(),
                      key=lambda p: (p.name.lower(), p.id))
    return render(request, "customer.html", nav="clients", customer=customer, offices=offices, people=people,
                  totals=totals_by_type(rows, types), billing=billing, contacts=contacts, **package_section,
                  **activity_section)


@router.get("/offices/{office_id}", response_class=HTMLResponse)
def office_page(office_id: str, request: Request, user: WebUser = Depends(current_user)):
    tab = request.query_params.get("tab") or "overview"
    if tab not in ("overview", "credits"):
        tab = "overview"
    with reading(db_of(request)) as session:
        office = get_in_workspace(session, Office, user.workspace_id, office_id)
        customer = session.get(Customer, office.customer_id) if office.customer_id else None
        people = parties.users_of_office(session, user.workspace_id, office.id)
        projects = reads.list_projects(session, actor=user.actor, office_id=office.id, limit=500).items
        types = credit_types(session, user.actor)
        rows = pack_rows(session, user.actor, all_packs(session, user, office_id=office.id), with_projects=False)
    rows.sort(key=lambda r: (STATUS_ORDER.get(r.view.status, 9), r.view.expires_at is None,
                             r.view.expires_at or r.view.created_at, r.view.id))
    return render(request, "office.html", nav="clients", office=office, customer=customer, people=people,
                  projects=projects, tab=tab, rows=rows, totals=totals_by_type(rows, types))


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(user_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        person = get_in_workspace(session, User, user.workspace_id, user_id)
        office_ids = ([person.primary_office_id] if person.primary_office_id else []) + parties.additional_office_ids(
            session, person.id)
        names = Names(session, user.workspace_id)
        names.load("office", set(office_ids))
        offices = [(oid, names.get("office", oid)) for oid in office_ids]
        types = credit_types(session, user.actor)
        rows = pack_rows(session, user.actor, all_packs(session, user, holder_kind="user", holder_id=person.id),
                         names=names, with_projects=False)
    rows.sort(key=lambda r: (STATUS_ORDER.get(r.view.status, 9), r.view.expires_at is None,
                             r.view.expires_at or r.view.created_at, r.view.id))
    return render(request, "user.html", nav="clients", person=person, offices=offices, rows=rows,
                  totals=totals_by_type(rows, types))
