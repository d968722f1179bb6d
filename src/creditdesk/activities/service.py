"""Activities (seed 002, "Schedule an activity"): an installation, a repair or a visit for a customer, with
the contact to reach, the one-time services to provide, the key dates and who does it.

Rules decided here (the seed is silent on them):
- Who may: masters and managers schedule, change and cancel activities and manage activity types; the user
  an activity is assigned to may also start and complete it; every staff user reads.
- Status: open -> in_progress -> completed; open or in_progress -> cancelled. Completed and cancelled are
  final: nothing changes afterwards. Each change is audited with before and after.
- Dates and assignment change until the activity is final; contact, link, account and services only while
  it is open (work started is billed as scheduled, or cancelled).
- A link names another object of the same customer: an invoice or a pack must be the customer's own
  (422 link_not_of_customer); a subscription id is kept as given (subscriptions are not built yet).
- The unit is one of the workspace's own offices (not a customer's) or a team; the assignee an active staff
  user. The expected and estimated completions are not before the start (422 invalid_dates).
- Completing an activity with services bills them in the same transaction: one invoice on the activity's
  account (else the customer's only active account: 409 no_account when it has none, 409 account_ambiguous
  when it has several), one line per service, posted (billing.invoices). A refusal there (no price, credit
  limit) refuses the completion: nothing changes.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.activities import schemas as s
from creditdesk.activities.models import Activity, ActivityService, ActivityType
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing import invoices
from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.models import BillingAccount
from creditdesk.catalog import repository as catalog_repo
from creditdesk.catalog.models import Product
from creditdesk.credits.models import Pack
from creditdesk.errors import Conflict, InvalidInput, NotFound, NotPermitted
from creditdesk.ids import new_id
from creditdesk.pagination import Page, paginate
from creditdesk.parties.models import Customer, Office, Team, User
from creditdesk.parties.service import require_manager
from creditdesk.repository import get_in_workspace

SERVICE_KINDS = ("service", "one_time_service")
NOT_DONE = ("open", "in_progress")
FINAL = ("completed", "cancelled")


def may_manage(actor: Actor) -> bool:
    return actor.is_master or actor.role == "manager"


def may_work_on(actor: Actor, activity: Activity) -> bool:
    """Start and complete: a master or manager, or the user the activity is assigned to."""
    return may_manage(actor) or (actor.user_id is not None and actor.user_id == activity.assignee_user_id)


# --- activity types ---------------------------------------------------------------------------------------

def _service_product(session: Session, workspace_id: str, ref: str, *, field: str) -> Product:
    product = catalog_repo.product_by_id_or_code(session, workspace_id, ref)
    if product is None:
        raise NotFound(f"No product with id or code {ref!r} in this workspace.", object_id=ref, field=field)
    if product.kind not in SERVICE_KINDS:
        raise InvalidInput(f"Product {product.code!r} is not a service (its kind is {product.kind}): an activity "
                           "provides services only.", code="not_a_service", field=field)
    if not product.active:
        raise InvalidInput(f"Product {product.code!r} is inactive.", code="product_inactive", field=field)
    return product


def _type_services(session: Session, workspace_id: str, refs: list[str]) -> list[str]:
    ids: list[str] = []
    for n, ref in enumerate(refs):
        product = _service_product(session, workspace_id, ref, field=f"services.{n}")
        if product.id in ids:
            raise InvalidInput(f"Product {product.code!r} is listed twice.", code="duplicate_service",
                               field=f"services.{n}")
        ids.append(product.id)
    return ids


def create_type(session: Session, data: s.ActivityTypeCreate, *, actor: Actor) -> ActivityType:
    require_manager(actor, "manage activity types")
    ws = actor.workspace_id
    if session.scalar(select(ActivityType.id).where(ActivityType.workspace_id == ws, ActivityType.code == data.code)):
        raise Conflict(f"An activity type with code {data.code!r} already exists in this workspace.",
                       code="code_taken", field="code")
    now = clock.now()
    row = ActivityType(id=new_id("atyp"), workspace_id=ws, code=data.code, name=data.name, active=data.active,
                       service_product_ids=_type_services(session, ws, data.services or []), created_at=now,
                       updated_at=now)
    session.add(row)
    session.flush([row])
    audit.record(session, actor=actor, action="activity_type.create", object_type="activity_type",
                 object_id=row.id, after=snapshot(row))
    return row


def get_type(session: Session, workspace_id: str, type_id: str) -> ActivityType:
    return get_in_workspace(session, ActivityType, workspace_id, type_id, label="activity type")


def update_type(session: Session, type_id: str, data: s.ActivityTypeUpdate, *, actor: Actor) -> ActivityType:
    require_manager(actor, "manage activity types")
    row = get_in_workspace(session, ActivityType, actor.workspace_id, type_id, label="activity type",
                           for_update=True)
    before = snapshot(row)
    if data.name is not None:
        row.name = data.name
    if data.active is not None:
        row.active = data.active
    if "services" in data.model_fields_set:
        row.service_product_ids = _type_services(session, actor.workspace_id, data.services or [])
    row.updated_at = clock.now()
    session.flush([row])
    audit.record(session, actor=actor, action="activity_type.update", object_type="activity_type",
                 object_id=row.id, before=before, after=snapshot(row))
    return row


def list_types(session: Session, *, actor: Actor, active: bool | None = None, limit: int | None = None,
               cursor: str | None = None) -> Page:
    stmt = select(ActivityType).where(ActivityType.workspace_id == actor.workspace_id)
    if active is not None:
        stmt = stmt.where(ActivityType.active == active)
    return paginate(session, stmt, id_column=ActivityType.id, limit=limit, cursor=cursor)


def _type_by_ref(session: Session, workspace_id: str, ref: str) -> ActivityType:
    row = session.scalar(select(ActivityType).where(ActivityType.workspace_id == workspace_id, or_(
        ActivityType.id == ref, ActivityType.code == ref)))
    if row is None:
        raise NotFound(f"No activity type with id or code {ref!r} in this workspace.", object_id=ref, field="type")
    return row


def type_out(session: Session, row: ActivityType) -> s.ActivityTypeOut:
    codes = _product_codes(session, row.service_product_ids or [])
    return s.ActivityTypeOut(id=row.id, code=row.code, name=row.name, active=row.active,
                             services=[codes[i][0] for i in row.service_product_ids or [] if i in codes],
                             created_at=clock.aware(row.created_at), updated_at=clock.aware(row.updated_at))


def _product_codes(session: Session, ids) -> dict[str, tuple[str, str]]:
    if not ids:
        return {}
    return {p.id: (p.code, p.name) for p in session.scalars(select(Product).where(Product.id.in_(list(ids))))}


# --- checks of what an activity names ------------------------------------------------------------------

def _customer(session: Session, workspace_id: str, customer_id: str) -> Customer:
    return get_in_workspace(session, Customer, workspace_id, customer_id, label="customer")


def _check_account(session: Session, workspace_id: str, customer_id: str, account_id: str) -> None:
    account = get_in_workspace(session, BillingAccount, workspace_id, account_id, label="account")
    if account.customer_id != customer_id:
        raise InvalidInput(f"Account {account.number} is not an account of this customer.",
                           code="account_not_of_customer", field="account_id")


def _check_link(session: Session, workspace_id: str, customer_id: str, link: s.LinkIn) -> None:
    if link.kind == "subscription":
        return  # subscriptions are not built yet: the id is kept as given
    model = Invoice if link.kind == "invoice" else Pack
    row = session.scalar(select(model).where(model.workspace_id == workspace_id, model.id == link.id))
    if row is None:
        raise NotFound(f"No {link.kind} with id {link.id!r} in this workspace.", object_id=link.id, field="link.id")
    if row.customer_id != customer_id:
        raise InvalidInput(f"The {link.kind} {link.id!r} is not this customer's: an activity is linked to objects "
                           "of the same customer only.", code="link_not_of_customer", field="link.id")


def _check_unit(session: Session, workspace_id: str, unit: s.UnitIn) -> None:
    if unit.kind == "office":
        office = get_in_workspace(session, Office, workspace_id, unit.id, label="office")
        if office.customer_id is not None:
            raise InvalidInput(f"Office {office.name!r} is a customer's office: assign one of the workspace's own "
                               "offices or a team.", code="unit_not_own", field="unit.id")
    else:
        get_in_workspace(session, Team, workspace_id, unit.id, label="team")


def _check_assignee(session: Session, workspace_id: str, user_id: str) -> None:
    user = get_in_workspace(session, User, workspace_id, user_id, label="user")
    if not user.is_staff or not user.is_active:
        raise InvalidInput(f"{user.name} is not an active staff user: an activity is assigned to staff.",
                           code="assignee_not_staff", field="assignee_user_id")


def _check_dates(starts_at: datetime, estimated: datetime | None, expected: datetime | None) -> None:
    starts = clock.aware(starts_at)
    for name, value in (("estimated_completion_at", estimated), ("expected_completion_at", expected)):
        if value is not None and clock.aware(value) < starts:
            raise InvalidInput("A completion cannot be before the start.", code="invalid_dates", field=name)


def _aware_input(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput("Give a date and time with its time zone (e.g. 2027-03-01T09:00:00Z).",
                           code="timezone_required", field=field)
    return value


def _set_services(session: Session, activity: Activity, services: list[tuple[Product, int]]) -> None:
    session.execute(delete(ActivityService).where(ActivityService.activity_id == activity.id))
    for position, (product, milli) in enumerate(services, start=1):
        session.add(ActivityService(id=new_id("asvc"), workspace_id=activity.workspace_id, activity_id=activity.id,
                                    product_id=product.id, quantity_milli=milli, position=position))
    session.flush()


def _resolve_services(session: Session, workspace_id: str, items: list[s.ServiceIn]) -> list[tuple[Product, int]]:
    out = []
    for n, item in enumerate(items):
        product = _service_product(session, workspace_id, item.product, field=f"services.{n}.product")
        out.append((product, invoices.to_milli(item.quantity, field=f"services.{n}.quantity")))
    return out


def services_of(session: Session, activity_id: str) -> list[tuple[ActivityService, Product]]:
    return list(session.execute(select(ActivityService, Product).join(Product, Product.id == ActivityService.product_id)
                                .where(ActivityService.activity_id == activity_id)
                                .order_by(ActivityService.position)).all())


def _snapshot(session: Session, activity: Activity) -> dict:
    return snapshot(activity, services=[{"product_id": svc.product_id, "quantity_milli": svc.quantity_milli}
                                        for svc, _ in services_of(session, activity.id)])


# --- activities -----------------------------------------------------------------------------------------

def schedule(session: Session, data: s.ActivityCreate, *, actor: Actor) -> Activity:
    """Schedule an activity for a customer: open, with the type's services unless others are given."""
    require_manager(actor, "schedule activities")
    ws = actor.workspace_id
    customer = _customer(session, ws, data.customer_id)
    activity_type = _type_by_ref(session, ws, data.type)
    if not activity_type.active:
        raise InvalidInput(f"Activity type {activity_type.code!r} is inactive.", code="type_inactive", field="type")
    if data.account_id:
        _check_account(session, ws, customer.id, data.account_id)
    if data.link is not None:
        _check_link(session, ws, customer.id, data.link)
    if data.unit is not None:
        _check_unit(session, ws, data.unit)
    if data.assignee_user_id:
        _check_assignee(session, ws, data.assignee_user_id)
    for name in ("starts_at", "estimated_completion_at", "expected_completion_at"):
        _aware_input(getattr(data, name), name)
    _check_dates(data.starts_at, data.estimated_completion_at, data.expected_completion_at)
    if data.services is None:
        products = {p.id: p for p in session.scalars(select(Product).where(
            Product.id.in_(activity_type.service_product_ids or [])))}
        services = [(products[i], 1000) for i in activity_type.service_product_ids or [] if i in products]
    else:
        services = _resolve_services(session, ws, data.services)
    contact = data.contact or s.ContactIn(name=customer.name, email=customer.email)
    now = clock.now()
    activity = Activity(
        id=new_id("act"), workspace_id=ws, customer_id=customer.id, account_id=data.account_id or None,
        type_id=activity_type.id, contact_name=contact.name, contact_phone=contact.phone or None,
        contact_email=contact.email or None, link_kind=data.link.kind if data.link else None,
        link_id=data.link.id if data.link else None, details=data.details, status="open", starts_at=data.starts_at,
        estimated_completion_at=data.estimated_completion_at, expected_completion_at=data.expected_completion_at,
        unit_kind=data.unit.kind if data.unit else None, unit_id=data.unit.id if data.unit else None,
        assignee_user_id=data.assignee_user_id or None, created_by=actor.user_id, created_at=now, updated_at=now)
    session.add(activity)
    session.flush([activity])
    _set_services(session, activity, services)
    audit.record(session, actor=actor, action="activity.create", object_type="activity", object_id=activity.id,
                 after=_snapshot(session, activity))
    return activity


def get_activity(session: Session, workspace_id: str, activity_id: str, *, for_update: bool = False) -> Activity:
    return get_in_workspace(session, Activity, workspace_id, activity_id, label="activity", for_update=for_update)


_OPEN_ONLY = ("contact", "link", "account_id", "services")


def update(session: Session, activity_id: str, data: s.ActivityUpdate, *, actor: Actor) -> Activity:
    require_manager(actor, "change activities")
    ws = actor.workspace_id
    activity = get_activity(session, ws, activity_id, for_update=True)
    sent = data.model_fields_set
    if activity.status in FINAL:
        raise Conflict(f"The activity is {activity.status}: it does not change any more.", code="activity_final")
    late = [f for f in _OPEN_ONLY if f in sent]
    if late and activity.status != "open":
        raise Conflict(f"The activity is in progress: its {late[0].replace('_', ' ')} no longer changes (only its "
                       "dates and assignment do).", code="activity_not_open", field=late[0])
    before = _snapshot(session, activity)
    if "contact" in sent:
        if data.contact is None:
            raise InvalidInput("An activity keeps a contact.", code="contact_required", field="contact")
        activity.contact_name = data.contact.name
        activity.contact_phone = data.contact.phone or None
        activity.contact_email = data.contact.email or None
    if "details" in sent:
        activity.details = data.details or ""
    if "link" in sent:
        if data.link is not None:
            _check_link(session, ws, activity.customer_id, data.link)
        activity.link_kind = data.link.kind if data.link else None
        activity.link_id = data.link.id if data.link else None
    if "account_id" in sent:
        if data.account_id:
            _check_account(session, ws, activity.customer_id, data.account_id)
        activity.account_id = data.account_id or None
    if "services" in sent:
        _set_services(session, activity, _resolve_services(session, ws, data.services or []))
    if "starts_at" in sent:
        if data.starts_at is None:
            raise InvalidInput("An activity keeps its start.", code="start_required", field="starts_at")
        activity.starts_at = _aware_input(data.starts_at, "starts_at")
    for name in ("estimated_completion_at", "expected_completion_at"):
        if name in sent:
            setattr(activity, name, _aware_input(getattr(data, name), name))
    _check_dates(activity.starts_at, activity.estimated_completion_at, activity.expected_completion_at)
    if "unit" in sent:
        if data.unit is not None:
            _check_unit(session, ws, data.unit)
        activity.unit_kind = data.unit.kind if data.unit else None
        activity.unit_id = data.unit.id if data.unit else None
    if "assignee_user_id" in sent:
        if data.assignee_user_id:
            _check_assignee(session, ws, data.assignee_user_id)
        activity.assignee_user_id = data.assignee_user_id or None
    activity.updated_at = clock.now()
    session.flush([activity])
    audit.record(session, actor=actor, action="activity.update", object_type="activity", object_id=activity.id,
                 before=before, after=_snapshot(session, activity))
    return activity


def _transition(session: Session, activity_id: str, *, actor: Actor, to: str, allowed_from: tuple[str, ...],
                who: str) -> tuple[Activity, dict]:
    activity = get_activity(session, actor.workspace_id, activity_id, for_update=True)
    if who == "manager":
        require_manager(actor, "cancel activities")
    elif not may_work_on(actor, activity):
        raise NotPermitted(f"Only master or manager users, or the user it is assigned to, may {who} an activity.")
    if activity.status not in allowed_from:
        raise Conflict(f"The activity is {activity.status.replace('_', ' ')}: it cannot be "
                       f"{to.replace('_', ' ')} now.", code="invalid_transition", status=activity.status)
    return activity, _snapshot(session, activity)


def start(session: Session, activity_id: str, *, actor: Actor) -> Activity:
    activity, before = _transition(session, activity_id, actor=actor, to="in_progress", allowed_from=("open",),
                                   who="start")
    now = clock.now()
    activity.status, activity.started_at, activity.updated_at = "in_progress", now, now
    session.flush([activity])
    audit.record(session, actor=actor, action="activity.start", object_type="activity", object_id=activity.id,
                 before=before, after=_snapshot(session, activity))
    return activity


def cancel(session: Session, activity_id: str, data: s.ActivityCancel | None = None, *, actor: Actor) -> Activity:
    activity, before = _transition(session, activity_id, actor=actor, to="cancelled", allowed_from=NOT_DONE,
                                   who="manager")
    now = clock.now()
    activity.status, activity.cancelled_at, activity.updated_at = "cancelled", now, now
    activity.cancel_reason = (data.reason if data else "") or None
    session.flush([activity])
    audit.record(session, actor=actor, action="activity.cancel", object_type="activity", object_id=activity.id,
                 before=before, after=_snapshot(session, activity))
    return activity


def billed_account(session: Session, activity: Activity) -> BillingAccount:
    """The account an activity's services are billed to: its own, else the customer's only active one."""
    if activity.account_id:
        return get_in_workspace(session, BillingAccount, activity.workspace_id, activity.account_id, label="account")
    active = list(session.scalars(select(BillingAccount).where(
        BillingAccount.workspace_id == activity.workspace_id, BillingAccount.customer_id == activity.customer_id,
        BillingAccount.status == "active").order_by(BillingAccount.number).limit(2)))
    if not active:
        raise Conflict("The customer has no active billing account to bill the activity's services to: open one, "
                       "or name the account on the activity.", code="no_account")
    if len(active) > 1:
        raise Conflict("The customer has several active accounts: name the account to bill on the activity.",
                       code="account_ambiguous", field="account_id")
    return active[0]


def complete(session: Session, activity_id: str, *, actor: Actor) -> Activity:
    """Complete an activity in progress; its services, if any, are billed on a posted invoice (same
    transaction)."""
    activity, before = _transition(session, activity_id, actor=actor, to="completed", allowed_from=("in_progress",),
                                   who="complete")
    services = services_of(session, activity.id)
    if services:
        account = billed_account(session, activity)
        # Completing is what bills the services: the assignee may complete without being a billing writer,
        # so the invoice is raised in their name with the billing writers' role, for this invoice only.
        biller = actor if may_manage(actor) else dataclasses.replace(actor, role="manager")
        invoice = invoices.create_invoice(session, ins.InvoiceCreate(
            account_id=account.id, notes=f"Activity {activity.id}",
            lines=[ins.LineCreate(product=product.id, quantity=Decimal(svc.quantity_milli).scaleb(-3))
                   for svc, product in services]), actor=biller)
        invoices.post_invoice(session, invoice.id, actor=biller)
        activity.invoice_id = invoice.id
    now = clock.now()
    activity.status, activity.completed_at, activity.updated_at = "completed", now, now
    session.flush([activity])
    audit.record(session, actor=actor, action="activity.complete", object_type="activity", object_id=activity.id,
                 before=before, after=_snapshot(session, activity))
    return activity


def overdue_clause(now: datetime):
    return (Activity.status.in_(NOT_DONE)) & (Activity.expected_completion_at.is_not(None)) & (
        Activity.expected_completion_at < now)


def is_overdue(activity: Activity, now: datetime | None = None) -> bool:
    now = now or clock.now()
    return (activity.status in NOT_DONE and activity.expected_completion_at is not None
            and clock.aware(activity.expected_completion_at) < now)


def list_activities(session: Session, *, actor: Actor, customer_id: str | None = None,
                    assignee_user_id: str | None = None, unit_id: str | None = None, type: str | None = None,
                    status: list[str] | None = None, overdue: bool = False, mine: bool = False,
                    limit: int | None = None, cursor: str | None = None) -> Page:
    stmt = select(Activity).where(Activity.workspace_id == actor.workspace_id)
    if customer_id:
        stmt = stmt.where(Activity.customer_id == customer_id)
    if assignee_user_id:
        stmt = stmt.where(Activity.assignee_user_id == assignee_user_id)
    if mine:
        stmt = stmt.where(Activity.assignee_user_id == (actor.user_id or ""))
    if unit_id:
        stmt = stmt.where(Activity.unit_id == unit_id)
    if type:
        stmt = stmt.where(Activity.type_id.in_(select(ActivityType.id).where(
            ActivityType.workspace_id == actor.workspace_id, or_(ActivityType.code == type, ActivityType.id == type))))
    if status:
        stmt = stmt.where(Activity.status.in_(status))
    if overdue:
        stmt = stmt.where(overdue_clause(clock.now()))
    return paginate(session, stmt, id_column=Activity.id, limit=limit, cursor=cursor)


def activity_out(session: Session, activity: Activity, *, type_code: str | None = None) -> s.ActivityOut:
    if type_code is None:
        type_code = session.scalar(select(ActivityType.code).where(ActivityType.id == activity.type_id))
    return s.ActivityOut(
        id=activity.id, customer_id=activity.customer_id, account_id=activity.account_id, type=type_code,
        contact=s.ContactOut(name=activity.contact_name, phone=activity.contact_phone, email=activity.contact_email),
        link=s.LinkOut(kind=activity.link_kind, id=activity.link_id) if activity.link_kind else None,
        details=activity.details,
        services=[s.ServiceOut(product=p.code, name=p.name, quantity=invoices.quantity_text(svc.quantity_milli))
                  for svc, p in services_of(session, activity.id)],
        status=activity.status, overdue=is_overdue(activity), starts_at=clock.aware(activity.starts_at),
        estimated_completion_at=clock.aware(activity.estimated_completion_at),
        expected_completion_at=clock.aware(activity.expected_completion_at),
        unit=s.UnitOut(kind=activity.unit_kind, id=activity.unit_id) if activity.unit_kind else None,
        assignee_user_id=activity.assignee_user_id, invoice_id=activity.invoice_id,
        started_at=clock.aware(activity.started_at), completed_at=clock.aware(activity.completed_at),
        cancelled_at=clock.aware(activity.cancelled_at), cancel_reason=activity.cancel_reason,
        created_at=clock.aware(activity.created_at), updated_at=clock.aware(activity.updated_at))
