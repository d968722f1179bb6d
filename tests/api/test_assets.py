"""Account assets over the API (seed 004): goods bought become assets when the invoice is posted (one per unit,
never twice), transfer of ownership keeps the warranty and the first owner's history, return is a stock-in,
an import is the customer's own item; the refusals with their codes; members read but do not act."""

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
    shop = api.post("/v1/customers", {"name": "Router shop"})["id"]
    other = api.post("/v1/customers", {"name": "New owner"})["id"]
    api.post("/v1/products", {"code": "router", "name": "Wifi router", "kind": "physical_good", "unit": "each"})
    api.post("/v1/products", {"code": "setup", "name": "Setup", "kind": "service", "unit": "each"})
    plan = api.post("/v1/price-plans", {"code": "aud", "name": "AUD", "currency": "AUD", "is_default": True})["id"]
    for product, price in (("router", 9900), ("setup", 5000)):
        api.client.put(f"/v1/price-plans/{plan}/prices", json={"product": product, "unit_price": price},
                       headers=api.headers)
    first = api.post("/v1/accounts", {"customer_id": shop, "name": "Shop"})["id"]
    second = api.post("/v1/accounts", {"customer_id": other, "name": "Owner"})["id"]
    return {"first": first, "second": second}


def test_goods_bought_become_assets_then_change_hands_and_go_back(api, db, workspace, world, client):
    first, second = world["first"], world["second"]
    inv = api.post("/v1/invoices", {"account_id": first, "lines": [{"product": "router", "quantity": 2},
                                                                   {"product": "setup", "quantity": 1}]})
    assert api.get(f"/v1/assets?account_id={first}")["data"] == []  # a draft makes nothing
    api.post(f"/v1/invoices/{inv['id']}/post", status=200)
    mine = api.get(f"/v1/assets?account_id={first}")["data"]
    assert [(a["product"], a["ownership"], a["status"]) for a in mine] == [("router", "company_sold", "active")] * 2
    one, two = mine[0]["id"], mine[1]["id"]
    # Transfer one to the other account: the first owner keeps it in its history.
    moved = api.post("/v1/assets/transfer", {"asset_ids": [one], "to_account_id": second, "note": "sold on"},
                     status=200, key="move-1")
    assert [a["account_id"] for a in moved["data"]] == [second]
    assert api.post("/v1/assets/transfer", {"asset_ids": [one], "to_account_id": second, "note": "sold on"},
                    status=200, key="move-1") == moved  # replayed, not moved twice
    assert [a["id"] for a in api.get(f"/v1/assets?owned_before_by={first}")["data"]] == [one]
    assert [a["id"] for a in api.get(f"/v1/assets?account_id={second}")["data"]] == [one]
    history = api.get(f"/v1/assets/{one}")["history"]
    assert [(e["kind"], e["from_account_id"], e["to_account_id"]) for e in history] == [
        ("acquired", None, first), ("transferred", first, second)]
    # All or none: one of the two is already at `second`.
    same = api.post("/v1/assets/transfer", {"asset_ids": [two, one], "to_account_id": second}, status=422)
    assert same["code"] == "asset_same_account"
    assert api.get(f"/v1/assets/{two}")["account_id"] == first
    # Return the other: a stock-in, and it belongs to nobody any more.
    back = api.post("/v1/assets/return", {"asset_ids": [two], "note": "faulty"}, status=200)
    assert back["stock_in_number"].startswith("si_") and back["data"][0]["status"] == "returned"
    assert api.post("/v1/assets/return", {"asset_ids": [two]}, status=409)["code"] == "asset_returned"
    assert api.post("/v1/assets/transfer", {"asset_ids": [two], "to_account_id": second},
                    status=409)["code"] == "asset_returned"
    assert api.get(f"/v1/assets/{two}")["history"][-1]["stock_in_number"] == back["stock_in_number"]
    assert len(audit_rows(db, workspace.id, action="asset.transfer")) == 1
    assert len(audit_rows(db, workspace.id, action="asset.return")) == 1
    # Members read, never act.
    user = api.post("/v1/users", {"name": "Mo Member", "email": "mo@example.com", "is_staff": True, "role": "member",
                                  "password": "correct horse battery"})["id"]
    member = Api(client, {"Authorization": "Bearer " + api.post("/v1/api-keys", {"name": "k", "user_id": user})["key"]})
    assert len(member.get("/v1/assets")["data"]) == 2
    assert member.post("/v1/assets/transfer", {"asset_ids": [one], "to_account_id": first},
                       status=403)["code"] == "not_permitted"
    assert api.get(f"/v1/assets/{one}")["account_id"] == second


def test_a_customer_owned_item_is_imported_keeps_its_warranty_and_is_not_returned(api, world):
    first, second = world["first"], world["second"]
    item = api.post("/v1/assets/import", {"account_id": first, "description": "Own modem", "serial_number": "SN-1",
                                          "warranty_ends_on": "2028-01-31"})
    assert (item["ownership"], item["warranty_ends_on"]) == ("customer_owned", "2028-01-31")
    moved = api.post("/v1/assets/transfer", {"asset_ids": [item["id"]], "to_account_id": second}, status=200)
    assert moved["data"][0]["warranty_ends_on"] == "2028-01-31"  # the warranty goes with it, unchanged
    assert api.post("/v1/assets/return", {"asset_ids": [item["id"]]}, status=409)["code"] == "asset_customer_owned"
    assert api.post("/v1/assets/import", {"account_id": "acc_nope", "description": "x"}, status=404)["code"] == \
        "not_found"
    assert api.post("/v1/assets/transfer", {"asset_ids": ["ast_nope"], "to_account_id": second},
                    status=404)["code"] == "not_found"


def test_a_terminated_account_takes_no_new_assets(api, world):
    first, second = world["first"], world["second"]
    api.post(f"/v1/accounts/{second}/terminate", {}, status=200)
    r = api.post("/v1/assets/import", {"account_id": second, "description": "Modem"}, status=409)
    assert r["code"] == "account_terminated"
    item = api.post("/v1/assets/import", {"account_id": first, "description": "Modem"})
    assert api.post("/v1/assets/transfer", {"asset_ids": [item["id"]], "to_account_id": second},
                    status=409)["code"] == "account_terminated"


def test_a_product_warranty_dates_the_assets_bought_and_moves_with_them(api, world, frozen_clock):
    from datetime import datetime, UTC

    frozen_clock.set(datetime(2027, 1, 31, 10, 0, tzinfo=UTC))
    assert api.patch("/v1/products/router", {"warranty_months": 13})["warranty_months"] == 13
    refused = api.call("PATCH", "/v1/products/setup", {"warranty_months": 12}, status=422)
    assert refused["code"] == "warranty_physical_goods_only"
    inv = api.post("/v1/invoices", {"account_id": world["first"], "lines": [{"product": "router", "quantity": 1}]})
    api.post(f"/v1/invoices/{inv['id']}/post", status=200)
    [asset] = api.get(f"/v1/assets?account_id={world['first']}")["data"]
    assert asset["warranty_ends_on"] == "2028-02-29"  # 31 January 2027 + 13 months: the month's last day
    moved = api.post("/v1/assets/transfer", {"asset_ids": [asset["id"]], "to_account_id": world["second"]},
                     status=200)
    assert moved["data"][0]["warranty_ends_on"] == "2028-02-29"
    assert api.patch("/v1/products/router", {"warranty_months": None})["warranty_months"] is None
