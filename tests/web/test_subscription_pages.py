"""Subscriptions in the back office (seed 002): create one, Preview bill (writes nothing), Submit (a posted
bill, once for a double submit), Remove services with its action type and effective day, the bills list and
the customer's Subscriptions and bills; a member sees no forms and is refused."""

from __future__ import annotations

from sqlalchemy import func, select

from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.subscription_models import Subscription, SubscriptionService
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from tests.billing.factories import configure, make_account
from tests.parties.factories import master_actor
from tests.reliability.test_authorization_roles import workspace_state
from tests.web.conftest import csrf_of, logged_in, once_key_of, post_form


def _invoices(db, workspace_id):
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Invoice).where(Invoice.workspace_id == workspace_id))


def test_create_preview_submit_remove(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Home line")
    db.write(lambda s: catalog.create_product(s, cs.ProductCreate(code="fibre", name="Fibre 100",
                                                                   kind="subscription_service", unit="month"),
                                              actor=actor))

    def priced(session):
        plan = catalog.create_price_plan(session, cs.PricePlanCreate(code="aud", name="AUD", currency="AUD",
                                                                      is_default=True), actor=actor)
        catalog.set_price(session, plan.id, cs.PriceSet(product="fibre", unit_price=3100), actor=actor)
    db.write(priced)
    client = logged_in(web, world.master_email)
    created = post_form(client, "/subscriptions/new", {"account_id": account.id, "name": "Home", "product": "fibre",
                                                       "quantity": "1", "billing_day": "1",
                                                       "activate_on": "2027-01-15"}, page="/subscriptions")
    assert created.status_code == 303, created.text
    with db.read() as session:
        sub_id = session.scalar(select(Subscription.id).where(Subscription.account_id == account.id))
    url = f"/subscriptions/{sub_id}"
    page = client.get(url).text
    assert "Remove services" in page and "Bill subscriber" in page and "active" in page
    # Preview bill: the lines, and nothing written.
    before = workspace_state(db, world.workspace_id)
    preview = client.post(f"{url}/bill-preview", data={"as_of": "2027-02-01", "csrf_token": csrf_of(page)})
    assert preview.status_code == 200 and "nothing was written" in preview.text
    assert "(17/31 days)" in preview.text and "17.00" in preview.text  # 15-31 January of 31.00, by days
    assert workspace_state(db, world.workspace_id) == before
    # Submit, twice with the same form: one bill.
    data = {"as_of": "2027-02-01", "csrf_token": csrf_of(page), "idempotency_key": once_key_of(page)}
    first = client.post(f"{url}/bill", data=data, follow_redirects=False)
    second = client.post(f"{url}/bill", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303, first.text
    assert first.headers["location"].startswith("/invoices/") and _invoices(db, world.workspace_id) == 1
    bills = client.get("/bills").text
    assert "INV-000001" in bills
    assert "INV-000001" in client.get(f"/customers/{world.customer_id}").text
    with db.read() as session:
        service_id = session.scalar(select(SubscriptionService.id).where(SubscriptionService.subscription_id == sub_id))
    assert f'value="{service_id}"' in client.get(url).text
    # Remove services from a day inside the billed February: taken, the days not used credited on the bill.
    removed = post_form(client, f"{url}/remove-services", {"service_id": service_id, "action": "remove",
                                                           "effective_on": "2027-02-10"}, page=url)
    assert removed.status_code == 303, removed.text
    page = client.get(url).text
    # 31.00 x 19 / 28 = 21.036 -> 21.04 for 10-28 February (no tax here); shown with the removal.
    assert "Service removed. Days already billed were credited: CN-000001 ($21.04)." in page
    assert "2027-02-09 (removed)" in page  # the last day with it, not 2027-02-10 (the first day without)


def test_a_member_sees_no_subscription_forms(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    client = logged_in(web, world.member_email)
    page = client.get("/subscriptions").text
    assert 'id="subscriptions"' in page and 'id="new-subscription"' not in page
    r = post_form(client, "/subscriptions/new", {"account_id": "x"}, page="/subscriptions")
    assert r.status_code == 403
