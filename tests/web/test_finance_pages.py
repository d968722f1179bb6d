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


def test_a_new_account_takes_a_credit_rating_and_an_address_before_the_customer_is_chosen(web, db, world):
    """Seed 002: the credit terms are set at creation from the selected credit rating; the form lists every
    customer's addresses (grouped) when no customer is chosen yet, and refuses another customer's."""
    from creditdesk.billing import addresses, credit_control
    from creditdesk.billing import credit_schemas as ccs
    from creditdesk.billing import schemas as bs
    from creditdesk.parties import schemas as ps
    from creditdesk.parties import service as parties

    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)

    def setup(s):
        rating = credit_control.create_rating(s, ccs.CreditRatingCreate(code="B", name="Bronze",
                                                                        limits={"AUD": 50_000}), actor=actor)
        other = parties.create_customer(s, ps.CustomerCreate(name="Zeta Other"), actor=actor)
        mine = addresses.create_address(s, world.customer_id, bs.AddressCreate(
            type="billing", line1="1 Collins St", city="Melbourne", country="AU"), actor=actor)
        theirs = addresses.create_address(s, other.id, bs.AddressCreate(
            type="billing", line1="9 Elsewhere Rd", city="Perth", country="AU"), actor=actor)
        return rating.id, mine.id, theirs.id
    rating, mine, theirs = db.write(setup)
    client = logged_in(web, world.master_email)
    form = client.get("/accounts/new").text
    assert "1 Collins St" in form and "9 Elsewhere Rd" in form and 'label="Zeta Other"' in form
    assert 'name="credit_rating_id"' in form and "B · Bronze" in form
    wrong = post_form(client, "/accounts/new", {"customer_id": world.customer_id, "name": "Main", "currency": "AUD",
                                                "billing_address_id": theirs, "credit_rating_id": rating},
                      page="/accounts/new")
    assert wrong.status_code in (404, 422) and 'id="err-billing_address_id"' in wrong.text
    assert count(db, BillingAccount, world.workspace_id) == 0
    ok = post_form(client, "/accounts/new", {"customer_id": world.customer_id, "name": "Main", "currency": "AUD",
                                             "billing_address_id": mine, "credit_rating_id": rating},
                   page="/accounts/new")
    assert ok.status_code == 303, ok.text
    with db.read() as s:
        account = s.scalar(select(BillingAccount).where(BillingAccount.workspace_id == world.workspace_id))
        assert (account.credit_rating_id, account.billing_address_id) == (rating, mine)
        state = credit_control.credit_state(s, account)
        assert (state.credit_limit, state.limit_source) == (50_000, "rating")
    # A manager opens accounts but does not choose ratings (masters' credit terms).
    web.cookies.clear()
    manager = logged_in(web, world.manager_email)
    assert 'name="credit_rating_id"' not in manager.get("/accounts/new").text
