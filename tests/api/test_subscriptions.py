"""Subscriptions through the API (seed 002): periods and proration by days, bill a subscriber as of a day
(the preview writes nothing; billing twice bills nothing twice), remove a service (the seed's Remove Services),
suspend and resume, credit control on activation, bills, and the billing run."""

from __future__ import annotations

import pytest

from creditdesk.billing import billing_runs
from creditdesk.audit import Actor
from tests.api.helpers import audit_rows
from tests.api.test_billing_accounts import SETTINGS, Api
from tests.reliability.test_authorization_roles import workspace_state


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def shop(api):
    api.patch("/v1/billing/settings", SETTINGS)
    api.post("/v1/tax-classes", {"code": "gst", "name": "GST"})
    api.post("/v1/tax-rates", {"tax_class": "gst", "rate_bp": 1000, "valid_from": "2020-01-01"})
    for code, name in (("fibre", "Fibre 100"), ("tv", "TV pack")):
        api.post("/v1/products", {"code": code, "name": name, "kind": "subscription_service", "unit": "month",
                                  "tax_class": "gst"})
    api.post("/v1/products", {"code": "hours", "name": "Hours", "kind": "service", "unit": "hour"})
    plan = api.post("/v1/price-plans", {"code": "aud", "name": "AUD", "currency": "AUD", "is_default": True})
    for code, price in (("fibre", 3100), ("tv", 1000), ("hours", 100)):
        api.call("PUT", f"/v1/price-plans/{plan['id']}/prices", {"product": code, "unit_price": price}, status=200)
    customer = api.post("/v1/customers", {"name": "Acme"})["id"]
    account = api.post("/v1/accounts", {"customer_id": customer, "name": "Main"})["id"]
    return {"customer": customer, "account": account}


def subscribe(api, account, *, start="2026-12-15", services=("fibre",), day=1):
    return api.post("/v1/subscriptions", {"account_id": account, "name": "Home", "billing_day": day,
                                          "services": [{"product": p} for p in services], "activate_on": start})


def test_partial_first_period_is_prorated_by_days_and_billing_twice_bills_nothing(api, shop, db, workspace):
    sub = subscribe(api, shop["account"])
    assert (sub["status"], sub["number"], sub["started_on"], sub["next_bill_on"]) == \
        ("active", "SUB-000001", "2026-12-15", "2026-12-15")
    ask = {"as_of": "2027-01-01"}
    before = workspace_state(db, workspace.id)
    preview = api.post(f"/v1/subscriptions/{sub['id']}/bill-preview", ask, status=200)
    assert workspace_state(db, workspace.id) == before  # the preview wrote nothing at all
    # 15-31 December: 17 of December's 31 days of 31.00, then all of January: 31.00.
    assert [(line["description"], line["unit_price"]) for line in preview["lines"]] == [
        ("Fibre 100, 2026-12-15 to 2026-12-31 (17/31 days)", 1700), ("Fibre 100, 2027-01-01 to 2027-01-31", 3100)]
    assert (preview["subtotal"], preview["tax_total"], preview["total"]) == (4800, 480, 5280)
    assert (preview["period_start"], preview["period_end"]) == ("2026-12-15", "2027-02-01")
    bill = api.post(f"/v1/subscriptions/{sub['id']}/bill", ask, key="bill-1")
    assert (bill["status"], bill["number"], bill["total"], bill["subscription_id"]) == \
        ("posted", "INV-000001", 5280, sub["id"])
    assert api.post(f"/v1/subscriptions/{sub['id']}/bill", ask, key="bill-1") == bill  # a retry: the same answer
    assert api.post(f"/v1/subscriptions/{sub['id']}/bill", ask) is None  # billed: nothing due any more
    again = api.post(f"/v1/subscriptions/{sub['id']}/bill-preview", ask, status=200)
    assert again["nothing_due"] is True and again["lines"] == []
    assert api.get(f"/v1/subscriptions/{sub['id']}")["next_bill_on"] == "2027-02-01"
    assert [b["id"] for b in api.get(f"/v1/bills?subscription_id={sub['id']}")["data"]] == [bill["id"]]
    assert [b["id"] for b in api.get("/v1/bills?period_on=2027-01-10")["data"]] == [bill["id"]]
    assert api.get(f"/v1/accounts/{shop['account']}/balance")["balance"] == 5280
    pdf = api.client.get(f"/v1/invoices/{bill['id']}/pdf", headers=api.headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "subscription.bill" in [e.action for e in audit_rows(db, workspace.id, object_id=sub["id"])]


def test_remove_a_service_from_an_effective_day(api, shop):
    sub = subscribe(api, shop["account"], services=("fibre", "tv"), start="2027-01-01")
    tv = next(s for s in sub["services"] if s["product_code"] == "tv")
    fibre = next(s for s in sub["services"] if s["product_code"] == "fibre")
    bill = api.post(f"/v1/subscriptions/{sub['id']}/bill", {"as_of": "2027-01-01"})  # January billed in advance
    assert bill["total"] == (3100 + 1000) * 11 // 10
    # From a day inside the billed January: taken, and 20-31 January of TV (12 of the 31 days billed) credited at
    # once on that bill: 11.00 (10.00 and its tax) x 12 / 31 = 4.258 -> 4.26.
    out = api.post(f"/v1/subscriptions/{sub['id']}/remove-services",
                   {"service_id": tv["id"], "action": "remove", "effective_on": "2027-01-20"}, status=200)
    assert next(s for s in out["services"] if s["id"] == tv["id"])["end_on"] == "2027-01-20"
    notes = api.get(f"/v1/invoices/{bill['id']}/credit-notes")["data"]
    tv_line = next(line for line in bill["lines"] if line["product_code"] == "tv")
    assert [(n["amount"], n["lines"]) for n in notes] == [(426, [{"line_id": tv_line["id"], "amount": 426}])]
    assert api.get(f"/v1/invoices/{bill['id']}")["amount_due"] == 4510 - 426
    preview = api.post(f"/v1/subscriptions/{sub['id']}/bill-preview", {"as_of": "2027-03-01"}, status=200)
    assert not [line for line in preview["lines"] if "TV" in line["description"]]  # nothing from 20 January
    # From a day not billed yet: nothing to credit, and billed up to the day before it.
    api.post(f"/v1/subscriptions/{sub['id']}/remove-services",
             {"service_id": fibre["id"], "action": "remove", "effective_on": "2027-02-15"}, status=200)
    preview = api.post(f"/v1/subscriptions/{sub['id']}/bill-preview", {"as_of": "2027-03-01"}, status=200)
    assert [(line["description"], line["unit_price"]) for line in preview["lines"]] == [
        ("Fibre 100, 2027-02-01 to 2027-02-14 (14/28 days)", 1550)]
    assert len(api.get(f"/v1/invoices/{bill['id']}/credit-notes")["data"]) == 1
    assert api.post(f"/v1/subscriptions/{sub['id']}/remove-services", {"service_id": tv["id"]},
                    status=409)["code"] == "service_removed"


def test_suspended_days_are_not_billed(api, shop):
    sub = subscribe(api, shop["account"], start="2027-01-01")
    api.post(f"/v1/subscriptions/{sub['id']}/bill", {"as_of": "2027-01-01"})
    api.post(f"/v1/subscriptions/{sub['id']}/suspend", {"on": "2027-01-10"}, status=200)
    assert api.post(f"/v1/subscriptions/{sub['id']}/bill", {"as_of": "2027-03-01"}, status=409)["code"] == \
        "subscription_suspended"
    api.post(f"/v1/subscriptions/{sub['id']}/resume", {"on": "2027-03-17"}, status=200)
    preview = api.post(f"/v1/subscriptions/{sub['id']}/bill-preview", {"as_of": "2027-03-17"}, status=200)
    assert [(line["description"], line["unit_price"]) for line in preview["lines"]] == [
        ("Fibre 100, 2027-03-17 to 2027-03-31 (15/31 days)", 1500)]


def test_activation_is_a_fund_using_event(api, shop, db, workspace):
    account = shop["account"]
    api.post(f"/v1/accounts/{account}/credit-terms", {"credit_limit": 1000}, status=200)
    draft = api.post("/v1/subscriptions", {"account_id": account, "services": [{"product": "fibre"}]})
    before = workspace_state(db, workspace.id)
    refused = api.post(f"/v1/subscriptions/{draft['id']}/activate", {"on": "2027-01-01"}, status=409)
    assert refused["code"] == "credit_limit_exceeded" and workspace_state(db, workspace.id) == before
    api.post(f"/v1/accounts/{account}/credit-terms", {"credit_limit": 100000}, status=200)
    api.post(f"/v1/accounts/{account}/suspend", {"reason": "dispute"}, status=200)
    assert api.post(f"/v1/subscriptions/{draft['id']}/activate", {"on": "2027-01-01"}, status=409)["code"] == \
        "account_suspended"
    assert api.post("/v1/subscriptions", {"account_id": account, "services": [{"product": "fibre"}],
                                          "activate_on": "2027-01-01"}, status=409)["code"] == "account_suspended"
    api.post(f"/v1/accounts/{account}/reactivate", status=200)
    assert api.post(f"/v1/subscriptions/{draft['id']}/activate", {"on": "2027-01-01"}, status=200)["status"] == \
        "active"
    wrong = api.post(f"/v1/subscriptions/{draft['id']}/services", {"product": "hours"}, status=422)
    assert wrong["code"] == "not_a_subscription_service"


def test_the_billing_run_bills_each_due_subscription_once(api, shop, db, workspace):
    subs = [subscribe(api, shop["account"], start="2027-01-01") for _ in range(5)]
    api.post(f"/v1/subscriptions/{subs[0]['id']}/suspend", {"on": "2027-01-01"}, status=200)
    actor = Actor.system(workspace.id)
    first = billing_runs.run(db, __import__("datetime").date(2027, 1, 1), workspace_id=workspace.id,
                             actor_for=lambda ws: actor, batch_size=2)
    assert (first.subscriptions_billed, first.bills, first.refused) == (4, 4, 0)
    second = billing_runs.run(db, __import__("datetime").date(2027, 1, 1), workspace_id=workspace.id,
                              actor_for=lambda ws: actor, batch_size=2)
    assert (second.subscriptions_billed, second.bills) == (0, 0)
    assert len(api.get("/v1/bills")["data"]) == 4
    run = api.post("/v1/billing-runs", {"as_of": "2027-02-01"})
    assert (run["status"], run["bills"]) == ("completed", 4)
    assert [r["id"] for r in api.get("/v1/billing-runs")["data"]][0] == run["id"]


def test_a_usage_service_is_paid_with_the_customers_credits_first(api, shop, db, workspace):
    api.post("/v1/credit-types", {"code": "calls", "name": "Support calls"})
    api.post("/v1/packs", {"holder": {"kind": "customer", "id": shop["customer"]}, "credit_type": "calls",
                           "quantity": 2, "name": "Two support calls", "product_codes": ["tv"]})
    sub = api.post("/v1/subscriptions", {"account_id": shop["account"], "activate_on": "2027-01-01", "services": [
        {"product": "tv", "quantity": 3, "pay_with_credits": True}, {"product": "fibre"}]})
    assert [s["pay_with_credits"] for s in sub["services"]] == [True, False]
    bill = api.post(f"/v1/subscriptions/{sub['id']}/bill", {"as_of": "2027-01-01"})
    tv = next(line for line in bill["lines"] if line["product_code"] == "tv")
    # Three units of 10.00: two paid with the customer's two credits, one billed.
    assert tv["credits"]["quantity"] == "2" and tv["net"] == 1000
    assert bill["total"] == (1000 + 3100) * 11 // 10
    packs = api.get(f"/v1/packs?holder_kind=customer&holder_id={shop['customer']}")["data"]
    assert [p["remaining"] for p in packs if p["credit_type"] == "calls"] == [0]
    again = api.post(f"/v1/subscriptions/{sub['id']}/bill", {"as_of": "2027-02-01"})
    tv = next(line for line in again["lines"] if line["product_code"] == "tv")
    assert tv["credits"] is None and tv["net"] == 3000  # no credits left: all billed
