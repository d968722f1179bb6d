"""Activities (seed 002) through the service: scheduling with the type's services and the customer's contact,
what a link, unit, assignee and dates may be, the status transitions (each audited with before and after), who
may act, and billing on completion. Every refusal leaves everything as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from creditdesk import clock
from creditdesk.activities import schemas as s
from creditdesk.activities import service as activities
from creditdesk.activities.models import Activity, ActivityService
from creditdesk.audit import AuditEvent
from creditdesk.billing.invoice_models import Invoice, InvoiceLine
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from creditdesk.errors import Conflict, InvalidInput, NotFound, NotPermitted
from tests.api.helpers import audit_rows
from tests.billing.factories import Shop, make_account
from tests.parties.factories import actor_of, make_customer, make_office, make_user

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def shop(db):
    shop = Shop(db)

    def fn(session):
        catalog.create_product(session, cs.ProductCreate(code="install", name="Installation", kind="one_time_service",
                                                         unit="each"), actor=shop.actor)
        catalog.set_price(session, shop.plans["AUD"], cs.PriceSet(product="install", unit_price=8000), actor=shop.actor)
        return activities.create_type(session, s.ActivityTypeCreate(code="installation", name="Installation",
                                                                    services=["install"]), actor=shop.actor)
    shop.install_type = db.write(fn)
    db.write(lambda session: activities.create_type(session, s.ActivityTypeCreate(code="visit", name="Visit"),
                                                    actor=shop.actor))
    return shop


def schedule(shop, actor=None, **body):
    data = s.ActivityCreate.model_validate({"customer_id": shop.customer_id, "type": "installation",
                                            "starts_at": START, **body})
    return shop.db.write(lambda session: activities.schedule(session, data, actor=actor or shop.actor))


def read(shop, activity_id):
    with shop.db.read() as session:
        return activities.activity_out(session, activities.get_activity(session, shop.ws.id, activity_id))


def act(shop, fn, activity_id, actor=None, **kw):
    return shop.db.write(lambda session: fn(session, activity_id, actor=actor or shop.actor, **kw))


def state(shop) -> tuple:
    """Rows that a refused write must not change."""
    with shop.db.read() as session:
        ws = shop.ws.id
        return (session.scalar(select(func.count()).select_from(Activity).where(Activity.workspace_id == ws)),
                session.scalar(select(func.count()).select_from(ActivityService)
                               .where(ActivityService.workspace_id == ws)),
                session.scalar(select(func.count()).select_from(Invoice).where(Invoice.workspace_id == ws)),
                session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.workspace_id == ws)),
                tuple(session.execute(select(Activity.id, Activity.status, Activity.invoice_id).where(
                    Activity.workspace_id == ws).order_by(Activity.id)).all()))


def test_schedule_takes_the_types_services_and_the_customers_contact(shop):
    activity = schedule(shop)
    out = read(shop, activity.id)
    assert out.status == "open" and out.type == "installation"
    assert [(v.product, v.quantity) for v in out.services] == [("install", "1")]
    assert out.contact.name == "Acme" and out.starts_at == START
    # Services given replace the type's; a contact given is kept.
    other = schedule(shop, services=[{"product": "hours", "quantity": "1.5"}],
                     contact={"name": "Wendy", "phone": "+61 400 000 000", "email": "wendy@example.com"})
    out = read(shop, other.id)
    assert [(v.product, v.quantity) for v in out.services] == [("hours", "1.5")]
    assert (out.contact.name, out.contact.phone) == ("Wendy", "+61 400 000 000")


def test_what_an_activity_may_name_is_checked_and_a_refusal_changes_nothing(shop, db):
    other_customer = make_customer(db, actor=shop.actor, name="Other")
    theirs = shop.posted(shop.account())  # an invoice of Acme
    stranger_account = make_account(db, actor=shop.actor, customer_id=other_customer, name="Other's")
    customer_office = make_office(db, actor=shop.actor, name="Acme office", customer_id=shop.customer_id)
    contact = make_user(db, actor=shop.actor, name="Contact", is_staff=False, primary_office_id=customer_office)
    member = actor_of(db, make_user(db, actor=shop.actor, name="Member"))
    before = state(shop)
    refusals = [
        ({"link": {"kind": "invoice", "id": theirs.id}, "customer_id": other_customer}, InvalidInput,
         "link_not_of_customer"),
        ({"link": {"kind": "pack", "id": "pack_nope"}}, NotFound, "not_found"),
        ({"account_id": stranger_account.id}, InvalidInput, "account_not_of_customer"),
        ({"services": [{"product": "widget"}]}, InvalidInput, "not_a_service"),
        ({"unit": {"kind": "office", "id": customer_office}}, InvalidInput, "unit_not_own"),
        ({"assignee_user_id": contact}, InvalidInput, "assignee_not_staff"),
        ({"expected_completion_at": START - timedelta(hours=1)}, InvalidInput, "invalid_dates"),
        ({"starts_at": datetime(2027, 3, 1, 9, 0)}, InvalidInput, "timezone_required"),
        ({"type": "nope"}, NotFound, "not_found"),
    ]
    for body, error, code in refusals:
        with pytest.raises(error) as exc:
            schedule(shop, **body)
        assert exc.value.code == code, body
    with pytest.raises(NotPermitted):
        schedule(shop, actor=member)
    assert state(shop) == before
    # The customer's own invoice, a subscription id as given, an own office: accepted.
    linked = schedule(shop, link={"kind": "invoice", "id": theirs.id}, unit={"kind": "office",
                                                                              "id": make_office(db, actor=shop.actor)})
    assert read(shop, linked.id).link.id == theirs.id
    sub = schedule(shop, link={"kind": "subscription", "id": "sub_anything"})
    assert read(shop, sub.id).link.kind == "subscription"


def test_transitions_are_audited_and_final_states_are_final(shop, db):
    activity = schedule(shop, expected_completion_at=START + timedelta(days=1))
    with pytest.raises(Conflict) as exc:
        act(shop, activities.complete, activity.id)  # not started
    assert exc.value.code == "invalid_transition"
    act(shop, activities.start, activity.id)
    assert read(shop, activity.id).status == "in_progress"
    with pytest.raises(Conflict) as exc:  # services no longer change once started
        act(shop, activities.update, activity.id, data=s.ActivityUpdate(services=[]))
    assert exc.value.code == "activity_not_open"
    # Dates and assignment still do.
    act(shop, activities.update, activity.id, data=s.ActivityUpdate(
        expected_completion_at=START + timedelta(days=2)))
    act(shop, activities.cancel, activity.id, data=s.ActivityCancel(reason="customer away"))
    out = read(shop, activity.id)
    assert (out.status, out.cancel_reason, out.invoice_id) == ("cancelled", "customer away", None)
    before = state(shop)
    for fn, kw in ((activities.start, {}), (activities.complete, {}), (activities.cancel, {}),
                   (activities.update, {"data": s.ActivityUpdate(details="late")})):
        with pytest.raises(Conflict):
            act(shop, fn, activity.id, **kw)
    assert state(shop) == before
    events = audit_rows(db, shop.ws.id, object_id=activity.id)
    assert [e.action for e in events] == ["activity.create", "activity.start", "activity.update", "activity.cancel"]
    assert (events[1].before["status"], events[1].after["status"]) == ("open", "in_progress")
    assert (events[3].before["status"], events[3].after["status"]) == ("in_progress", "cancelled")


def test_completing_bills_the_services_on_a_posted_invoice(shop, db):
    account = shop.account()
    activity = schedule(shop, services=[{"product": "install", "quantity": 1}, {"product": "hours", "quantity": 2}])
    act(shop, activities.start, activity.id)
    act(shop, activities.complete, activity.id)
    out = read(shop, activity.id)
    assert out.status == "completed" and out.invoice_id
    with db.read() as session:
        invoice = session.get(Invoice, out.invoice_id)
        lines = list(session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
                                     .order_by(InvoiceLine.position)))
        assert (invoice.status, invoice.account_id) == ("posted", account.id)
        assert [(line.quantity_milli, line.unit_price) for line in lines] == [(1000, 8000), (2000, 15000)]
        # 80.00 + 2 x 150.00 + 10 % GST on the hours
        assert invoice.total == 8000 + 30000 + 3000
    # An activity without services completes without an invoice.
    visit = schedule(shop, type="visit")
    act(shop, activities.start, visit.id)
    act(shop, activities.complete, visit.id)
    assert read(shop, visit.id).invoice_id is None


def test_completing_needs_one_account_and_a_refusal_completes_nothing(shop, db):
    activity = schedule(shop)
    act(shop, activities.start, activity.id)
    before = state(shop)
    with pytest.raises(Conflict) as exc:
        act(shop, activities.complete, activity.id)
    assert exc.value.code == "no_account" and state(shop) == before
    shop.account(name="One")
    shop.account(name="Two")
    before = state(shop)
    with pytest.raises(Conflict) as exc:
        act(shop, activities.complete, activity.id)
    assert exc.value.code == "account_ambiguous" and state(shop) == before
    assert read(shop, activity.id).status == "in_progress"


def test_the_assignee_may_start_and_complete_others_may_not(shop, db):
    account = shop.account()
    worker_id = make_user(db, actor=shop.actor, name="Worker")
    worker, other = actor_of(db, worker_id), actor_of(db, make_user(db, actor=shop.actor, name="Other"))
    activity = schedule(shop, assignee_user_id=worker_id, account_id=account.id)
    for fn in (activities.start, activities.cancel):
        with pytest.raises(NotPermitted):
            act(shop, fn, activity.id, actor=other)
    with pytest.raises(NotPermitted):
        act(shop, activities.cancel, activity.id, actor=worker)  # cancelling is for masters and managers
    act(shop, activities.start, activity.id, actor=worker)
    act(shop, activities.complete, activity.id, actor=worker)
    out = read(shop, activity.id)
    assert out.status == "completed" and out.invoice_id
    with db.read() as session:
        assert session.get(Invoice, out.invoice_id).created_by == worker_id
    with db.read() as session:
        mine = [a.id for a in activities.list_activities(session, actor=worker, mine=True).items]
    assert mine == [activity.id]


def test_overdue_lists_the_late_activities_not_done(shop, db, frozen_clock):
    clock.set_clock(clock.FrozenClock(START + timedelta(days=3)))
    late = schedule(shop, expected_completion_at=START + timedelta(days=1))
    schedule(shop, expected_completion_at=START + timedelta(days=10))
    done_late = schedule(shop, type="visit", expected_completion_at=START + timedelta(days=1))
    act(shop, activities.start, done_late.id)
    act(shop, activities.complete, done_late.id)
    with db.read() as session:
        listed = [a.id for a in activities.list_activities(session, actor=shop.actor, overdue=True).items]
    assert listed == [late.id]
    assert read(shop, late.id).overdue and not read(shop, done_late.id).overdue


def test_activity_types_take_services_only(shop, db):
    with pytest.raises(InvalidInput) as exc:
        db.write(lambda session: activities.create_type(session, s.ActivityTypeCreate(
            code="repair", name="Repair", services=["widget"]), actor=shop.actor))
    assert exc.value.code == "not_a_service"
    with pytest.raises(Conflict) as exc:
        db.write(lambda session: activities.create_type(session, s.ActivityTypeCreate(
            code="visit", name="Again"), actor=shop.actor))
    assert exc.value.code == "code_taken"
    updated = db.write(lambda session: activities.type_out(session, activities.update_type(
        session, shop.install_type.id, s.ActivityTypeUpdate(services=["install", "hours"]), actor=shop.actor)))
    assert updated.services == ["install", "hours"]


def test_the_demo_has_activity_types_and_one_open_installation(db):
    from creditdesk import demo
    from creditdesk.activities.models import ActivityType
    from creditdesk.parties.models import User

    info = db.write(demo.create_demo)
    db.write(demo.ensure_demo)  # run again: nothing twice
    with db.read() as session:
        types = {t.code: t for t in session.scalars(select(ActivityType).where(
            ActivityType.workspace_id == info.workspace_id))}
        assert sorted(types) == ["installation", "repair", "visit"]
        rows = list(session.scalars(select(Activity).where(Activity.workspace_id == info.workspace_id)))
        assert [(a.type_id, a.status) for a in rows] == [(types["installation"].id, "open")]
        assert session.get(User, rows[0].assignee_user_id).email == "bob@demo.example.com"
        out = activities.activity_out(session, rows[0])
        assert [v.product for v in out.services] == ["installation"] and out.unit.kind == "team"
