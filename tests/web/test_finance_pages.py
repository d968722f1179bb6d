"""Finance pages of the back office (TestClient): the Finance menu, accounts list and page with balance and
statement, opening and editing accounts, and the customer's Accounts and Addresses sections."""

from __future__ import annotations

from sqlalchemy import func, select

from creditdesk.billing import postings
from creditdesk.currencies import format_money
from creditdesk.billing.models import BillingAccount, CustomerAddress
from tests.billing.factories import configure
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in, post_form


def count(db, model, ws):
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model).where(model.workspace_id == ws))


def test_address_account_balance_and_statement(web, db, world):
    configure(db, actor=master_actor(db, world.workspace_id))
    client = logged_in(web, world.master_email)
    customer = f"/customers/{world.customer_id}"
    page = client.get(customer).text
    assert "Accounts" in page and "Addresses" in page and "No address yet." in page
    r = post_form(client, f"{customer}/addresses/new", {"type": "billing", "line1": "1 Collins St",
                                                         "city": "Melbourne", "region": "VIC", "postcode": "3000",
                                                         "country": "au", "is_primary": "yes"},
                  page=f"{customer}/addresses/new")
    assert r.status_code == 303, r.text
    assert "1 Collins St, Melbourne, VIC, 3000, AU" in client.get(customer).text
    with db.read() as s:
        address = s.scalar(select(CustomerAddress.id).where(CustomerAddress.customer_id == world.customer_id))
    form = f"/accounts/new?customer_id={world.customer_id}"
    assert "1 Collins St" in client.get(form).text  # the customer's addresses to choose from
    bad = post_form(client, "/accounts/new", {"customer_id": world.customer_id, "name": "Main", "currency": "AUD",
                                              "billing_address_id": address, "credit_period_days": "99"}, page=form)
    assert bad.status_code == 422 and "between 14 and 60" in bad.text
    assert count(db, BillingAccount, world.workspace_id) == 0
    r = post_form(client, "/accounts/new", {"customer_id": world.customer_id, "name": "Main", "currency": "EUR",
                                            "billing_address_id": address, "credit_period_days": "45"}, page=form)
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    with db.read() as s:
        account = s.scalar(select(BillingAccount).where(BillingAccount.workspace_id == world.workspace_id))
        s.expunge(account)
    db.write(lambda s: postings.post_account_entry(s, account, 123_456, "debit", "adjustment"))
    page = client.get(url).text
    assert "ACC-000001" in page and format_money(123_456, "EUR") in page and "45 days" in page and "1 Collins St" in page
    assert "Download CSV" in page
    csv = client.get(f"{url}/statement.csv")
    assert csv.status_code == 200 and "1234.56" in csv.text
    # For people: a byte order mark for spreadsheets, the day in the workspace's zone, entries in words, no ids.
    assert csv.content.startswith(b"\xef\xbb\xbf")
    header, first = csv.text.lstrip("\ufeff").splitlines()[:2]
    assert header == "date,time,entry,document,debit,credit,balance,currency"
    assert "lt_" not in csv.text and first.split(",")[4] == "1234.56"
    listing = client.get("/accounts?currency=EUR").text
    assert "ACC-000001" in listing and format_money(123_456, "EUR") in listing and "Finance" in listing
    assert "ACC-000001" not in client.get("/accounts?currency=AUD").text
    r = post_form(client, f"{url}/edit", {"name": "Renamed", "classification": "Corporate",
                                          "billing_address_id": address, "credit_period_days": "30"},
                  page=f"{url}/edit")
    assert r.status_code == 303, r.text
    page = client.get(url).text
    assert "Renamed" in page and "30 days" in page and "Corporate" in page


def test_a_form_posted_twice_opens_one_account(web, db, world):
    configure(db, actor=master_actor(db, world.workspace_id))
    client = logged_in(web, world.master_email)
    form = f"/accounts/new?customer_id={world.customer_id}"
    html = client.get(form).text
    from tests.web.conftest import csrf_of, once_key_of
    data = {"customer_id": world.customer_id, "name": "Once", "currency": "AUD", "csrf_token": csrf_of(html),
            "idempotency_key": once_key_of(html)}
    first = client.post("/accounts/new", data=data, follow_redirects=False)
    second = client.post("/accounts/new", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert count(db, BillingAccount, world.workspace_id) == 1


def test_members_read_but_do_not_write(web, db, world):
    configure(db, actor=master_actor(db, world.workspace_id))
    client = logged_in(web, world.member_email)
    assert client.get("/accounts").status_code == 200
    assert "New account" not in client.get("/accounts").text
    assert client.get("/accounts/new").status_code == 403
    assert client.get(f"/customers/{world.customer_id}/addresses/new").status_code == 403
    r = post_form(client, f"/customers/{world.customer_id}/addresses/new",
                  {"type": "billing", "line1": "x", "city": "y", "country": "AU", "idempotency_key": "k1"})
    assert r.status_code == 403
    assert count(db, CustomerAddress, world.workspace_id) == 0
