"""The group accounts and pricing agreements API: members (add with a funding scope, list, remove), the
conditions as problem+json with their codes, the group view of parent and member, the pricing agreement
pricing an invoice, and a member's funded charge posted to the parent."""

from __future__ import annotations

import pytest

from tests.api.helpers import audit_rows
from tests.api.test_billing_accounts import SETTINGS, Api


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def world(api):
    api.patch("/v1/billing/settings", SETTINGS)
    fleet = api.post("/v1/customers", {"name": "Fleet company"})["id"]
    driver = api.post("/v1/customers", {"name": "Driver"})["id"]
    api.post("/v1/products", {"code": "fuel", "name": "Fuel", "kind": "service", "unit": "litre"})
    api.post("/v1/products", {"code": "snack", "name": "Snack", "kind": "service", "unit": "each"})
    plan = api.post("/v1/price-plans", {"code": "aud", "name": "AUD", "currency": "AUD", "is_default": True})["id"]
    for product, price in (("fuel", 200), ("snack", 500)):
        api.client.put(f"/v1/price-plans/{plan}/prices", json={"product": product, "unit_price": price},
                       headers=api.headers)
    parent = api.post("/v1/accounts", {"customer_id": fleet, "name": "Fleet"})["id"]
    member = api.post("/v1/accounts", {"customer_id": driver, "name": "Bus 7"})["id"]
    same_owner = api.post("/v1/accounts", {"customer_id": fleet, "name": "Fleet 2"})["id"]
    return {"parent": parent, "member": member, "same_owner": same_owner, "plan": plan}


def test_members_add_list_remove(api, db, workspace, world):
    parent, member = world["parent"], world["member"]
    body = {"member_id": member, "funding": {"scope": "partial", "products": ["fuel"]}}
    added = api.post(f"/v1/accounts/{parent}/members", body, key="add-1")
    assert (added["member_id"], added["funding"]["scope"], added["funding"]["products"]) == (member, "partial",
                                                                                            ["fuel"])
    assert api.post(f"/v1/accounts/{parent}/members", body, key="add-1")["id"] == added["id"]  # replayed
    assert [m["member_id"] for m in api.get(f"/v1/accounts/{parent}/members")["data"]] == [member]
    [listed] = api.get("/v1/groups")["data"]
    assert [m["member_id"] for m in listed["members"]] == [member]
    group = api.get(f"/v1/accounts/{member}/group")
    assert (group["parent_id"], group["funding"]["products"], group["members"]) == (parent, ["fuel"], [])
    problem = api.post(f"/v1/accounts/{parent}/members", {"member_id": world["same_owner"],
                                                          "funding": {"scope": "full"}}, status=409)
    assert (problem["code"], problem["field"]) == ("member_same_owner", "member_id")
    assert api.post(f"/v1/accounts/{parent}/members", {"member_id": member, "funding": {"scope": "partial"}},
                    status=409)["code"] == "member_already_in_group"
    assert api.post(f"/v1/accounts/{parent}/members", {"member_id": "acc_nope", "funding": {"scope": "full"}},
                    status=404)["code"] == "not_found"
    out = api.call("DELETE", f"/v1/accounts/{parent}/members/{member}", status=200)
    assert out["members"] == []
    api.call("DELETE", f"/v1/accounts/{parent}/members/{member}", status=404)
    assert len(audit_rows(db, workspace.id, action="account.member_remove")) == 1


def test_funded_charge_lands_on_the_parent(api, world):
    parent, member = world["parent"], world["member"]
    api.post(f"/v1/accounts/{parent}/members", {"member_id": member,
                                                "funding": {"scope": "partial", "products": ["fuel"]}})
    inv = api.post("/v1/invoices", {"account_id": member, "lines": [{"product": "fuel", "quantity": 10},
                                                                    {"product": "snack", "quantity": 1}]})
    posted = api.post(f"/v1/invoices/{inv['id']}/post", status=200)
    assert (posted["account_id"], posted["total"], [x["product_code"] for x in posted["lines"]]) == (
        member, 500, ["snack"])
    [funded] = api.get(f"/v1/invoices?account_id={parent}")["data"]
    assert (funded["status"], funded["total"]) == ("posted", 2000)
    assert api.get(f"/v1/accounts/{parent}/balance")["balance"] == 2000
    assert api.get(f"/v1/accounts/{member}/balance")["balance"] == 500
    # The spend decision says the same: fuel of the member is the parent's to pay (its limit decides), a
    # snack is the member's own.
    fuel = api.post("/v1/decisions/spend", {"account_id": member, "event": "invoice_post", "amount": 2000,
                                            "product": "fuel"}, status=200)
    assert (fuel["account_id"], fuel["reasons"][0]["code"], fuel["balance"]) == (parent, "group_funded", 2000)
    snack = api.post("/v1/decisions/spend", {"account_id": member, "event": "invoice_post", "amount": 500,
                                             "product": "snack"}, status=200)
    assert snack["account_id"] == member and "group_funded" not in [r["code"] for r in snack["reasons"]]


def test_pricing_agreement(api, world):
    parent, member = world["parent"], world["member"]
    special = api.post("/v1/price-plans", {"code": "fleet", "name": "Fleet deal", "currency": "AUD"})["id"]
    api.client.put(f"/v1/price-plans/{special}/prices", json={"product": "fuel", "unit_price": 150},
                   headers=api.headers)
    eur = api.post("/v1/price-plans", {"code": "eur", "name": "EUR", "currency": "EUR"})["id"]
    assert api.post(f"/v1/accounts/{parent}/pricing-agreement", {"price_plan_id": eur}, status=422)["code"] == \
        "currency_mismatch"
    out = api.post(f"/v1/accounts/{parent}/pricing-agreement", {"price_plan_id": special}, status=200)
    assert (out["price_plan_id"], out["source"]) == (special, "own")
    inv = api.post("/v1/invoices", {"account_id": parent, "lines": [{"product": "fuel", "quantity": 1},
                                                                    {"product": "snack", "quantity": 1}]})
    assert [x["unit_price"] for x in inv["lines"]] == [150, 500]  # snack: not in the deal, the default plan
    api.post(f"/v1/accounts/{parent}/members", {"member_id": member, "funding": {"scope": "full"}})
    assert api.get(f"/v1/accounts/{member}/pricing-agreement")["effective_price_plan_id"] == special
    cleared = api.post(f"/v1/accounts/{parent}/pricing-agreement", {"price_plan_id": None}, status=200)
    assert (cleared["price_plan_id"], cleared["source"]) == (None, "none")
    assert api.post(f"/v1/accounts/{parent}/pricing-agreement", {"price_plan_id": special, "account_id": "x"},
                    status=422)["code"] == "unknown_field"
