"""Activities in the back office (seed 002): CRM > Activities, Schedule an activity from the customer page
(contact pre-filled, the type's services added), the activity page's Start / Complete (billing the services) /
Cancel, a double submit acting once, My activities, the overdue filter, and the activity types page."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from creditdesk import clock
from creditdesk.activities import schemas as s
from creditdesk.activities import service as activities
from creditdesk.activities.models import Activity
from creditdesk.billing.invoice_models import Invoice
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from creditdesk.parties.models import User
from tests.billing.factories import configure, make_account
from tests.parties.factories import master_actor
from tests.web.conftest import csrf_of, logged_in, once_key_of, post_form


def _setup(db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Home")

    def fn(session):
        catalog.create_product(session, cs.ProductCreate(code="install", name="Installation", kind="one_time_service",
                                                         unit="each"), actor=actor)
        plan = catalog.create_price_plan(session, cs.PricePlanCreate(code="aud", name="AUD", currency="AUD",
                                                                     is_default=True), actor=actor)
        catalog.set_price(session, plan.id, cs.PriceSet(product="install", unit_price=9900), actor=actor)
        return activities.create_type(session, s.ActivityTypeCreate(code="installation", name="Installation",
                                                                    services=["install"]), actor=actor).id
    return actor, account, db.write(fn)


def _activity_count(db, workspace_id):
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Activity).where(Activity.workspace_id == workspace_id))


def test_schedule_from_the_customer_page_then_start_complete_once(web, db, world):
    actor, account, type_id = _setup(db, world)
    client = logged_in(web, world.master_email)
    customer_page = client.get(f"/customers/{world.customer_id}").text
    assert 'id="customer-activities"' in customer_page and "No activity scheduled" in customer_page
    assert f'href="/activities/new?customer_id={world.customer_id}"' in customer_page
    form_url = f"/activities/new?customer_id={world.customer_id}"
    form = client.get(form_url).text
    assert 'name="contact_name" maxlength="200" value="Acme' in form  # pre-filled from the customer
    with db.read() as session:
        manager_id = session.scalar(select(User.id).where(User.email == world.manager_email))
    data = {"customer_id": world.customer_id, "contact_name": "Wendy", "contact_phone": "+61 400 000 000",
            "type": type_id, "add_type_services": "1", "starts_at": "2027-03-01T09:00",
            "expected_completion_at": "2027-03-02T17:00", "assignee_user_id": manager_id, "link_kind": "invoice",
            "csrf_token": csrf_of(form), "idempotency_key": once_key_of(form)}
    first = client.post("/activities/new", data=data, follow_redirects=False)
    again = client.post("/activities/new", data=data, follow_redirects=False)  # the same form twice: once
    assert first.status_code == again.status_code == 303, first.text
    assert first.headers["location"] == again.headers["location"]
    assert _activity_count(db, world.workspace_id) == 1
    url = first.headers["location"]
    page = client.get(url).text
    assert "Installation" in page and "+61 400 000 000" in page and 'id="activity-start"' in page
    assert "Max Manager" in page.split("Assigned to", 1)[1]
    assert "install" in page.split('id="activity-services"', 1)[1]
    started = post_form(client, f"{url}/start", {}, page=url)
    assert started.status_code == 303
    page = client.get(url).text
    assert 'id="activity-complete"' in page and 'id="activity-start"' not in page
    data = {"csrf_token": csrf_of(page), "idempotency_key": once_key_of(page)}
    done = client.post(f"{url}/complete", data=data, follow_redirects=False)
    twice = client.post(f"{url}/complete", data=data, follow_redirects=False)
    assert done.status_code == twice.status_code == 303
    with db.read() as session:
        invoices = list(session.scalars(select(Invoice).where(Invoice.account_id == account.id)))
        assert [(i.status, i.subtotal) for i in invoices] == [("posted", 9900)]
    page = client.get(url).text
    assert 'id="activity-invoice"' in page and "Completed" in page
    assert 'id="activity-complete"' not in page and 'id="activity-cancel"' not in page
    # Completed activities leave the non-completed list; the customer page still shows it.
    assert url.rsplit("/", 1)[1] not in client.get("/activities").text
    assert url.rsplit("/", 1)[1] in client.get(f"/customers/{world.customer_id}").text


def test_refusals_are_shown_and_change_nothing(web, db, world):
    _actor, _account, type_id = _setup(db, world)
    client = logged_in(web, world.master_email)
    form_url = f"/activities/new?customer_id={world.customer_id}"
    bad = post_form(client, "/activities/new", {"customer_id": world.customer_id, "type": type_id,
                                                "starts_at": "2027-03-01T09:00",
                                                "expected_completion_at": "2027-02-01T09:00"}, page=form_url)
    assert bad.status_code == 422 and "cannot be before the start" in bad.text
    no_date = post_form(client, "/activities/new", {"customer_id": world.customer_id, "type": type_id},
                        page=form_url)
    assert no_date.status_code == 422 and 'id="activity-form-errors"' in no_date.text
    assert _activity_count(db, world.workspace_id) == 0
    # A member reads but schedules nothing.
    member = logged_in(web.__class__(web.app, base_url="http://testserver"), world.member_email)
    assert member.get("/activities").status_code == 200
    assert member.get("/activities/new").status_code == 403


def test_list_filters_my_activities_cancel_and_types(web, db, world, frozen_clock):
    actor, _account, type_id = _setup(db, world)
    with db.read() as session:
        master_id = session.scalar(select(User.id).where(User.email == world.master_email))

    def schedule(**body):
        data = s.ActivityCreate.model_validate({"customer_id": world.customer_id, "type": "installation",
                                                "starts_at": datetime(2025, 12, 1, tzinfo=UTC), **body})
        return db.write(lambda session: activities.schedule(session, data, actor=actor).id)
    mine = schedule(assignee_user_id=master_id, expected_completion_at=datetime(2026, 1, 1, tzinfo=UTC))
    later = schedule(expected_completion_at=datetime(2026, 6, 1, tzinfo=UTC))
    assert clock.now() > datetime(2026, 1, 1, tzinfo=UTC)
    client = logged_in(web, world.master_email)
    listing = client.get("/activities").text
    assert mine in listing and later in listing and 'id="crm-menu"' in listing
    overdue = client.get("/activities?overdue=1").text
    assert mine in overdue and later not in overdue and "Overdue" in overdue
    tab = client.get("/activities?tab=mine").text
    assert mine in tab and later not in tab
    cancelled = post_form(client, f"/activities/{later}/cancel", {"reason": "No access"}, page=f"/activities/{later}")
    assert cancelled.status_code == 303
    assert "No access" in client.get(f"/activities/{later}").text
    refused = post_form(client, f"/activities/{later}/start", {}, page=f"/activities/{mine}")
    assert refused.status_code == 409 and "cannot be" in refused.text
    # Activity types: create, with a service; a taken code is refused next to the form.
    types = client.get("/activities/types").text
    assert "installation" in types and "Installation" in types
    created = post_form(client, "/activities/types/new", {"code": "repair", "name": "Repair"}, page="/activities/types")
    assert created.status_code == 303
    taken = post_form(client, "/activities/types/new", {"code": "repair", "name": "Again"}, page="/activities/types")
    assert taken.status_code == 409 and "already exists" in taken.text
    assert "Repair" in client.get("/activities/types").text
    saved = post_form(client, f"/activities/types/{type_id}", {"name": "Fibre install"}, page="/activities/types")
    assert saved.status_code == 303
    with db.read() as session:
        row = activities.get_type(session, world.workspace_id, type_id)
        assert (row.name, row.active, row.service_product_ids) == ("Fibre install", False, [])
