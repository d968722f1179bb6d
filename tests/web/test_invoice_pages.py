"""Finance › Invoices in the back office (TestClient): a draft from the form, a line, post, PDF, a payment,
mark as paid, a credit note, errors next to their field, one-time keys, members read only; the account page
lists invoices and payments."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from creditdesk.billing.invoice_models import Invoice, Payment
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from tests.billing.factories import configure, make_account
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in, post_form


def count(db, model, ws):
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model).where(model.workspace_id == ws))


def setup_books(db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)

    def fn(s):
        plan = catalog.create_price_plan(s, cs.PricePlanCreate(code="aud", name="AUD", currency="AUD",
                                                               is_default=True), actor=actor)
        catalog.create_product(s, cs.ProductCreate(code="design", name="Design work", kind="service", unit="hour"),
                               actor=actor)
        catalog.set_price(s, plan.id, cs.PriceSet(product="design", unit_price=12000), actor=actor)
    db.write(fn)
    return make_account(db, actor=actor, customer_id=world.customer_id, name="Acme main")


def test_invoice_from_draft_to_settled(web, db, world):
    account = setup_books(db, world)
    client = logged_in(web, world.master_email)
    r = post_form(client, "/invoices/new", {"account_id": account.id, "issue_date": "", "notes": "Hello"},
                  page=f"/invoices/new?account_id={account.id}")
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    bad = post_form(client, f"{url}/lines", {"product": "design", "quantity": "-2"}, page=url)
    assert bad.status_code == 422 and 'id="err-quantity"' in bad.text
    r = post_form(client, f"{url}/lines", {"product": "design", "quantity": "2.5"}, page=url)
    assert r.status_code == 303, r.text
    page = client.get(url).text
    assert "Design work" in page and "$300.00" in page
    r = post_form(client, f"{url}/post", {}, page=url)
    assert r.status_code == 303
    page = client.get(url).text
    assert "INV-000001" in page and 'id="record-payment"' in page
    pdf = client.get(f"{url}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    over = post_form(client, f"{url}/credit-note", {"credit_amount": "400"}, page=url)
    assert over.status_code == 422 and 'id="err-credit_amount"' in over.text
    r = post_form(client, f"{url}/credit-note", {"credit_amount": "50", "reason": "Sorry"}, page=url)
    assert r.status_code == 303
    html = client.get(url).text
    key = re.search(r'action="[^"]*/pay".*?name="idempotency_key" value="([^"]+)"', html, re.S).group(1)
    form = {"amount": "100", "method": "card", "reference": "R1", "received_on": ""}
    first = post_form(client, f"{url}/pay", {**form, "idempotency_key": key}, page=url)
    again = post_form(client, f"{url}/pay", {**form, "idempotency_key": key}, page=url)
    assert first.status_code == again.status_code == 303
    assert count(db, Payment, world.workspace_id) == 1  # the same form twice pays once
    assert "$150.00" in client.get(url).text  # 300 - 50 credited - 100 paid
    r = post_form(client, f"{url}/mark-paid", {"method": "cash"}, page=url)
    assert r.status_code == 303
    page = client.get(url).text
    assert "settled" in page and count(db, Payment, world.workspace_id) == 2
    account_page = client.get(f"/accounts/{account.id}").text
    assert "INV-000001" in account_page and 'id="account-payments"' in account_page
    listing = client.get("/invoices?status=settled").text
    assert "INV-000001" in listing
    assert "INV-000001" not in client.get("/invoices?overdue=1").text
    # Settled, it can still be credited: the whole invoice (250.00 not credited yet) goes back to the account.
    assert 'id="credit-note"' in page and "The whole invoice ($250.00)" in page
    r = post_form(client, f"{url}/credit-note", {"full": "1", "reason": "Cancelled"}, page=url)
    assert r.status_code == 303, r.text
    page = client.get(url).text
    assert "CN-000002" in page and 'id="credit-note"' not in page  # nothing left to credit
    with db.read() as s:
        assert sum(p.unallocated for p in s.scalars(select(Payment).where(
            Payment.workspace_id == world.workspace_id))) == 25000  # both payments are the account's credit


def test_members_read_but_never_write(web, db, world):
    account = setup_books(db, world)
    master = logged_in(web, world.master_email)
    r = post_form(master, "/invoices/new", {"account_id": account.id}, page="/invoices/new")
    url = r.headers["location"]
    web.cookies.clear()
    member = logged_in(web, world.member_email)
    page = member.get(url).text
    assert "Draft invoice" in page and 'id="post-invoice"' not in page and 'id="add-line"' not in page
    assert 'id="new-invoice"' not in member.get("/invoices").text
    r = post_form(member, f"{url}/post", {}, page="/invoices")
    assert r.status_code == 403
    assert member.get("/invoices/new").status_code == 403
    with db.read() as s:
        assert s.scalar(select(Invoice.status).where(Invoice.workspace_id == world.workspace_id)) == "draft"
