"""Finance > Billing runs in the back office (seed 002's Billing Run): reached from the Finance menu and the
subscriptions list; a master starts a run as of a day (the form submitted twice runs once; the same form with
another day is refused, nothing billed); the run's page lists its bills and each refused subscription with why;
managers and members see the runs but no form, and are refused (403) as by the API. The subscription page shows
a service's price per period from the price plan, the last day of a removed service, and refuses a new
subscription for a suspended account next to the account."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from creditdesk.billing import accounts, credit_control, lifecycle, subscriptions
from creditdesk.billing import credit_schemas as ccs
from creditdesk.billing import schemas as bs
from creditdesk.billing import subscription_schemas as ss
from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.subscription_models import BillingRun, Subscription
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from tests.billing.factories import configure
from tests.parties.factories import make_customer, master_actor
from tests.web.conftest import csrf_of, logged_in, once_key_of, post_form


def _count(db, model, workspace_id):
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id))


def _shop(db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)

    def catalogue(session):
        plan = catalog.create_price_plan(session, cs.PricePlanCreate(code="aud", name="AUD", currency="AUD",
                                                                     is_default=True), actor=actor)
        catalog.create_product(session, cs.ProductCreate(code="support", name="Monthly support",
                                                         kind="subscription_service", unit="month"), actor=actor)
        catalog.set_price(session, plan.id, cs.PriceSet(product="support", unit_price=49900), actor=actor)
    db.write(catalogue)
    return actor


def _subscription(db, actor, name, *, quantity=1, start=date(2027, 1, 1)):
    customer_id = make_customer(db, actor=actor, name=name)
    account = db.write(lambda s: accounts.create_account(s, bs.AccountCreate(customer_id=customer_id, name=name),
                                                         actor=actor))
    sub = db.write(lambda s: subscriptions.create_subscription(s, ss.SubscriptionCreate(
        account_id=account.id, activate_on=start, services=[ss.ServiceIn(product="support", quantity=quantity)]),
        actor=actor))
    return account, sub


def test_a_master_starts_a_run_once_and_sees_what_it_billed_and_refused(web, db, world):
    actor = _shop(db, world)
    _, billed = _subscription(db, actor, "Billed Ltd")
    limited, refused = _subscription(db, actor, "Limited Ltd")
    db.write(lambda s: credit_control.change_credit_terms(s, limited.id, ccs.CreditTermsChange(credit_limit=100),
                                                          actor=actor))
    client = logged_in(web, world.master_email)
    # Reached from the Finance menu and from the subscriptions list.
    assert 'href="/billing-runs"' in client.get("/home").text
    assert 'id="billing-runs-link"' in client.get("/subscriptions").text
    page = client.get("/billing-runs").text
    assert 'id="start-billing-run"' in page and "No billing runs yet." in page
    data = {"as_of": "2027-01-01", "csrf_token": csrf_of(page), "idempotency_key": once_key_of(page)}
    first = client.post("/billing-runs", data=data, follow_redirects=False)
    second = client.post("/billing-runs", data=data, follow_redirects=False)  # a double submit
    assert first.status_code == second.status_code == 303, first.text
    assert first.headers["location"] == second.headers["location"]
    assert _count(db, BillingRun, world.workspace_id) == 1 and _count(db, Invoice, world.workspace_id) == 1
    shown = client.get(first.headers["location"]).text
    assert "Already done (this form was submitted twice)" in shown  # the second submit's message
    assert 'id="run-status">completed' in shown
    with db.read() as session:
        number = session.scalar(select(Invoice.number).where(Invoice.subscription_id == billed.id))
    assert number in shown and billed.number in shown and "$499.00" in shown  # its bill, subscription, total
    refusals = shown[shown.index('id="run-refusals"'):]
    assert refused.number in refusals and "credit_limit_exceeded" in refusals
    # The list: one run, as of the day, 1 bill and 1 refused.
    listed = client.get("/billing-runs").text
    assert "2027-01-01" in listed and 'id="billing-runs"' in listed and "No billing runs yet." not in listed
    # The same form again with another day: refused, nothing more billed (February was due).
    other = client.post("/billing-runs", data={**data, "as_of": "2027-02-01"}, follow_redirects=False)
    assert other.status_code == 409 and "already submitted" in other.text
    assert _count(db, BillingRun, world.workspace_id) == 1 and _count(db, Invoice, world.workspace_id) == 1
    # A day that is not one: next to the field, nothing run.
    page = client.get("/billing-runs").text
    bad = client.post("/billing-runs", data={"as_of": "someday", "csrf_token": csrf_of(page),
                                             "idempotency_key": once_key_of(page)})
    assert bad.status_code == 422 and 'id="err-as_of"' in bad.text and 'value="someday"' in bad.text
    assert _count(db, BillingRun, world.workspace_id) == 1


def test_managers_and_members_see_runs_but_cannot_start_one(web, db, world):
    actor = _shop(db, world)
    _subscription(db, actor, "Someone")
    for email in (world.manager_email, world.member_email):
        client = logged_in(web, email)
        page = client.get("/billing-runs")
        assert page.status_code == 200 and 'id="start-billing-run"' not in page.text
        refused = post_form(client, "/billing-runs", {"as_of": "2027-01-01", "idempotency_key": "k"},
                            page="/billing-runs")
        assert refused.status_code == 403
    assert _count(db, BillingRun, world.workspace_id) == 0 and _count(db, Invoice, world.workspace_id) == 0


def test_another_workspaces_run_is_not_found(web, db, world, other_world):
    actor = _shop(db, world)
    _subscription(db, actor, "Mine")
    client = logged_in(web, world.master_email)
    done = post_form(client, "/billing-runs", {"as_of": "2027-01-01"}, page="/billing-runs")
    other = logged_in(web.__class__(web.app, base_url="http://testserver"), other_world.master_email)
    assert other.get(done.headers["location"]).status_code == 404
    assert "2027-01-01" not in other.get("/billing-runs").text


def test_the_services_table_shows_the_price_and_the_last_day(web, db, world):
    actor = _shop(db, world)
    _, sub = _subscription(db, actor, "Priced", quantity=2)
    with db.read() as session:
        svc_id = subscriptions.services_of(session, sub.id)[0].id
    db.write(lambda s: subscriptions.remove_service(s, sub.id, ss.ServiceRemove(
        service_id=svc_id, effective_on=date(2027, 1, 15)), actor=actor))
    client = logged_in(web, world.master_email)
    table = client.get(f"/subscriptions/{sub.id}").text
    table = table[table.index('id="services"'):table.index("</table>", table.index('id="services"'))]
    assert "$499.00" in table and "$998.00 in all" in table and "price plan" in table
    assert "2027-01-14 (removed)" in table and "2027-01-15" not in table  # the last day with it


def test_a_suspended_account_takes_no_new_subscription_in_the_back_office(web, db, world):
    actor = _shop(db, world)
    customer_id = make_customer(db, actor=actor, name="Suspended Ltd")
    account = db.write(lambda s: accounts.create_account(s, bs.AccountCreate(customer_id=customer_id, name="Held"),
                                                         actor=actor))
    client = logged_in(web, world.master_email)
    assert f'value="{account.id}"' in client.get("/subscriptions").text
    db.write(lambda s: lifecycle.suspend(s, account.id, "dispute", actor=actor))
    assert f'value="{account.id}"' not in client.get("/subscriptions").text  # not offered any more
    # Posted anyway (a page opened before the suspension): refused next to the account, nothing created.
    refused = post_form(client, "/subscriptions/new", {"account_id": account.id, "product": "support",
                                                       "quantity": "1", "billing_day": "1"}, page="/subscriptions")
    assert refused.status_code == 409 and 'id="err-account_id"' in refused.text and "suspended" in refused.text
    with db.read() as session:
        assert session.scalar(select(Subscription.id).where(Subscription.account_id == account.id)) is None
