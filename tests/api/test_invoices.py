"""The invoices and payments API: the whole flow (draft, line, post, PDF, payment, balance and outstanding),
idempotent writes, problem+json refusals with nothing written, filters and cursors, audit rows, who may."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from pypdf import PdfReader

from creditdesk import clock
from tests.api.helpers import audit_rows
from tests.api.test_billing_accounts import SETTINGS, Api
from tests.parties.factories import make_api_key, make_user, master_actor


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def shop(api):
    api.patch("/v1/billing/settings", SETTINGS)
    api.post("/v1/tax-classes", {"code": "gst", "name": "GST"})
    api.post("/v1/tax-rates", {"tax_class": "gst", "rate_bp": 1000, "valid_from": "2020-01-01"})
    api.post("/v1/products", {"code": "hours", "name": "Consulting hours", "kind": "service", "unit": "hour",
                              "tax_class": "gst"})
    plan = api.post("/v1/price-plans", {"code": "aud", "name": "AUD", "currency": "AUD", "is_default": True})
    api.call("PUT", f"/v1/price-plans/{plan['id']}/prices", {"product": "hours", "unit_price": 15000}, status=200)
    customer = api.post("/v1/customers", {"name": "Acme"})["id"]
    account = api.post("/v1/accounts", {"customer_id": customer, "name": "Main"})
    return {"customer": customer, "account": account["id"], "plan": plan["id"]}


def test_raise_post_download_pay(api, shop, db, workspace):
    inv = api.post("/v1/invoices", {"account_id": shop["account"]})
    assert (inv["status"], inv["number"], inv["total"], inv["lines"]) == ("draft", None, 0, [])
    inv = api.post(f"/v1/invoices/{inv['id']}/lines", {"product": "hours", "quantity": "2"}, status=200)
    assert (inv["subtotal"], inv["tax_total"], inv["total"]) == (30000, 3000, 33000)
    posted = api.post(f"/v1/invoices/{inv['id']}/post", status=200, key="post-1")
    assert (posted["status"], posted["number"], posted["amount_due"]) == ("posted", "INV-000001", 33000)
    again = api.client.post(f"/v1/invoices/{inv['id']}/post", headers={**api.headers, "Idempotency-Key": "post-1"})
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == posted
    pdf = api.client.get(f"/v1/invoices/{inv['id']}/pdf", headers=api.headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "INV-000001" in text and "330.00" in text
    balance = api.get(f"/v1/accounts/{shop['account']}/balance")
    assert (balance["balance"], balance["outstanding"]) == (33000, 0)
    payment = api.post("/v1/payments", {"account_id": shop["account"], "amount": 40000, "method": "bank_transfer",
                                        "reference": "EFT 1"}, key="pay-1")
    assert payment["unallocated"] == 7000
    assert payment["allocations"] == [{"invoice_id": inv["id"], "invoice_number": "INV-000001", "amount": 33000}]
    assert api.get(f"/v1/invoices/{inv['id']}")["status"] == "settled"
    assert api.get(f"/v1/payments/{payment['id']}") == payment
    balance = api.get(f"/v1/accounts/{shop['account']}/balance")
    assert (balance["balance"], balance["outstanding"]) == (-7000, 0)
    actions = [e.action for e in audit_rows(db, workspace.id, object_id=inv["id"])]
    assert actions == ["invoice.create", "invoice.line_add", "invoice.post"]
    post_row = audit_rows(db, workspace.id, action="invoice.post")[0]
    assert post_row.before["status"] == "draft" and post_row.after["status"] == "posted"
    assert post_row.after["number"] == "INV-000001" and post_row.after["lines"][0]["gross"] == 33000


def test_refusals_are_problems_with_codes(api, shop, client):
    draft = api.post("/v1/invoices", {"account_id": shop["account"]})
    problem = api.post(f"/v1/invoices/{draft['id']}/post", status=409)
    assert problem["code"] == "invoice_empty"
    assert api.get(f"/v1/invoices/{draft['id']}")["number"] is None
    for body, code in (({"product": "hours", "quantity": "-1"}, "invalid_quantity"),
                       ({"product": "hours", "quantity": 1, "currency": "EUR"}, "currency_mismatch"),
                       ({"product": "nope", "quantity": 1}, "not_found")):
        r = client.post(f"/v1/invoices/{draft['id']}/lines", json=body, headers=api.headers)
        assert r.json()["code"] == code and r.headers["content-type"] == "application/problem+json"
    api.post(f"/v1/invoices/{draft['id']}/lines", {"product": "hours", "quantity": 1}, status=200)
    posted = api.post(f"/v1/invoices/{draft['id']}/post", status=200)
    assert api.patch(f"/v1/invoices/{posted['id']}", {"notes": "x"}, status=409)["code"] == "invoice_not_draft"
    assert api.post(f"/v1/invoices/{posted['id']}/void", status=409)["code"] == "invoice_not_draft"
    assert api.patch(f"/v1/invoices/{posted['id']}", {"number": "INV-9"}, status=422)["code"] == "unknown_field"
    r = api.post("/v1/payments", {"account_id": shop["account"], "amount": 16501,
                                  "allocations": [{"invoice_id": posted["id"], "amount": 16501}]}, status=422)
    assert r["code"] == "overpayment"
    assert api.get("/v1/payments")["data"] == []
    note = api.post(f"/v1/invoices/{posted['id']}/credit-notes", {"amount": 16501}, status=422)
    assert note["code"] == "credit_note_exceeds_due"
    note = api.post(f"/v1/invoices/{posted['id']}/credit-notes", {"amount": 6500, "reason": "discount"})
    assert (note["number"], note["amount"]) == ("CN-000001", 6500)
    assert api.get(f"/v1/invoices/{posted['id']}/credit-notes")["data"] == [note]
    assert api.get(f"/v1/invoices/{posted['id']}")["amount_due"] == 10000


def test_filters_and_cursor(api, shop, frozen_clock):
    today = clock.now().date()
    old = api.post("/v1/invoices", {"account_id": shop["account"], "issue_date": str(today - timedelta(days=60)),
                                    "lines": [{"product": "hours", "quantity": 1}]})
    api.post(f"/v1/invoices/{old['id']}/post", status=200)
    recent = api.post("/v1/invoices", {"account_id": shop["account"], "lines": [{"product": "hours", "quantity": 1}]})
    api.post(f"/v1/invoices/{recent['id']}/post", status=200)
    draft = api.post("/v1/invoices", {"account_id": shop["account"]})
    assert [i["id"] for i in api.get("/v1/invoices?overdue=true")["data"]] == [old["id"]]
    assert [i["id"] for i in api.get("/v1/invoices?status=draft")["data"]] == [draft["id"]]
    due = str(today + timedelta(days=1))
    assert [i["id"] for i in api.get(f"/v1/invoices?due_after={due}")["data"]] == [draft["id"], recent["id"]]
    assert [i["id"] for i in api.get(f"/v1/invoices?due_before={today}&customer_id={shop['customer']}")["data"]] \
        == [old["id"]]
    page = api.get(f"/v1/invoices?account_id={shop['account']}&limit=2")
    rest = api.get(f"/v1/invoices?account_id={shop['account']}&limit=2&cursor={page['next_cursor']}")
    assert [i["id"] for i in page["data"] + rest["data"]] == [draft["id"], recent["id"], old["id"]]
    assert rest["next_cursor"] is None
    balance = api.get(f"/v1/accounts/{shop['account']}/balance")
    assert (balance["balance"], balance["outstanding"]) == (33000, 16500)
    assert api.get("/v1/invoices?statuz=draft", status=422)["code"] == "unknown_query_parameter"


def test_members_read_and_cannot_write(api, shop, client, db, workspace):
    master = master_actor(db, workspace.id)
    member = make_user(db, actor=master, role="member", name="Member")
    headers = {"Authorization": f"Bearer {make_api_key(db, actor=master, user_id=member)}"}
    inv = api.post("/v1/invoices", {"account_id": shop["account"], "lines": [{"product": "hours", "quantity": 1}]})
    assert client.get(f"/v1/invoices/{inv['id']}", headers=headers).status_code == 200
    assert client.get("/v1/payments", headers=headers).status_code == 200
    for method, path, body in (("POST", "/v1/invoices", {"account_id": shop["account"]}),
                               ("POST", f"/v1/invoices/{inv['id']}/post", None),
                               ("POST", f"/v1/invoices/{inv['id']}/void", None),
                               ("POST", "/v1/payments", {"account_id": shop["account"], "amount": 1})):
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "not_permitted", (path, r.text)
    assert api.get(f"/v1/invoices/{inv['id']}")["status"] == "draft"
