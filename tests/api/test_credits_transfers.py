"""Transfers between holders over HTTP: moved credits keep their nature; both sides recorded; idempotency."""

from __future__ import annotations

import copy

import pytest

from tests.api.credits_world import assert_ledger_clean, build_world, member_api, problem, state


@pytest.fixture
def world(client, workspace, frozen_clock):
    return build_world(client, workspace.headers)


def office_to_office(world, amount, **extra):
    return {"from": {"kind": "office", "id": world.berlin}, "to": {"kind": "office", "id": world.paris},
            "credit_type": "credits", "amount": amount, "memo": "Rebalance for the Paris launch", **extra}


def test_transfer_between_offices_keeps_expiry_priority_cost_and_paid_nature(world, db, workspace):
    api, p = world.api, world.packs
    r = api.post("/v1/transfers", office_to_office(world, 110), key="xfer-1")
    assert r.status_code == 201, r.text
    xfer = r.json()
    assert xfer["id"].startswith("xfer_")
    assert (xfer["object"], xfer["credit_type"], xfer["amount"], xfer["memo"]) == (
        "credit_transfer", "credits", 110, "Rebalance for the Paris launch")
    assert xfer["from"]["kind"] == "office" and xfer["from"]["id"] == world.berlin
    assert xfer["to"] == {"kind": "office", "id": world.paris}
    # Taken in burn order: the older Berlin pack first.
    assert [(line["from_pack_id"], line["amount"]) for line in xfer["lines"]] == [
        (p["berlin_june"], 100), (p["berlin_june_2"], 10)]
    assert api.get(f"/v1/transfers/{xfer['id']}").json() == xfer

    assert api.balance("office", world.berlin) == {"available": 10, "held": 0, "total": 10}
    assert api.balance("office", world.paris) == {"available": 180, "held": 0, "total": 180}
    for line in xfer["lines"]:
        src = api.get(f"/v1/packs/{line['from_pack_id']}").json()
        new = api.get(f"/v1/packs/{line['to_pack_id']}").json()
        assert new["holder"] == {"kind": "office", "id": world.paris}
        assert new["origin_pack_id"] == src["id"]
        assert (new["quantity"], new["remaining"], new["source"]) == (line["amount"], line["amount"], "transfer")
        for kept in ("expires_at", "priority", "is_paid", "currency", "starts_at", "purchased_at", "product_codes",
                     "external_ref"):
            assert new[kept] == src[kept], kept
        # Cost per credit kept: 100 EUR for 100 credits, 20 EUR for 20 credits.
        assert new["price_paid"] * src["quantity"] == src["price_paid"] * new["quantity"]
    assert api.get(f"/v1/packs/{p['berlin_june']}").json()["status"] == "depleted"

    # Both sides show the movement.
    out = api.get(f"/v1/packs/{p['berlin_june_2']}/history").json()["data"]
    assert [(h["kind"], h["amount"], h["balance_after"]) for h in out] == [("grant", 20, 20), ("transfer_out", -10, 10)]
    assert out[1]["reference"]["kind"] == "credit_transfer" and out[1]["reference"]["id"] == xfer["id"]
    into = api.get(f"/v1/packs/{xfer['lines'][1]['to_pack_id']}/history").json()["data"]
    assert [(h["kind"], h["amount"], h["balance_after"]) for h in into] == [("transfer_in", 10, 10)]

    # The moved credits now pay for Paris and not for the Berlin project.
    project = api.created("/v1/consumptions", {"context": {"kind": "project", "id": world.project},
                                               "credit_type": "credits", "amount": 130, "allow_partial": True})
    assert project["amount"] == 130 and {line["pack_id"] for line in project["lines"]} == {
        p["ben_vip"], p["anna_march"], p["anna_june"], p["berlin_june_2"]}
    assert_ledger_clean(db, workspace.id)


def test_transfer_from_one_pack_to_a_contact(world, db, workspace):
    api, p = world.api, world.packs
    xfer = api.post("/v1/transfers", {"from_pack_id": p["anna_june"], "to": {"kind": "user", "id": world.clara},
                                      "credit_type": "credits", "amount": 15}, status=201).json()
    assert xfer["from"] == {"kind": "user", "id": world.anna, "pack_id": p["anna_june"]}
    assert [(line["from_pack_id"], line["amount"]) for line in xfer["lines"]] == [(p["anna_june"], 15)]
    assert api.remaining(p["anna_june"]) == 25
    assert api.remaining(p["anna_march"]) == 50  # another pack of the same holder is untouched
    assert api.balance("user", world.clara) == {"available": 15, "held": 0, "total": 15}
    new = api.get(f"/v1/packs/{xfer['lines'][0]['to_pack_id']}").json()
    assert (new["is_paid"], new["price_paid"], new["expires_at"]) == (False, 0, "2026-06-30T00:00:00Z")
    assert_ledger_clean(db, workspace.id)


def test_transfer_to_the_workspace_pool_and_customer(world, db, workspace):
    api = world.api
    api.post("/v1/transfers", {"from": {"kind": "office", "id": world.paris}, "to": {"kind": "workspace"},
                               "credit_type": "credits", "amount": 20}, status=201)
    api.post("/v1/transfers", {"from": {"kind": "workspace"}, "to": {"kind": "customer", "id": world.customer},
                               "credit_type": "credits", "amount": 5}, status=201)
    assert api.balance("workspace", None)["available"] == 15
    assert api.balance("customer", world.customer)["available"] == 5
    assert api.balance("office", world.paris)["available"] == 50


def test_transfer_is_idempotent_and_the_insufficient_answer_replays(world, db, workspace):
    api = world.api
    body = office_to_office(world, 50)
    first = api.post("/v1/transfers", body, key="xfer-idem", status=201)
    after = state(db, workspace.id)
    balances = (api.balance("office", world.berlin), api.balance("office", world.paris))
    again = api.post("/v1/transfers", body, key="xfer-idem", status=201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    problem(api.post("/v1/transfers", {**body, "amount": 51}, key="xfer-idem"), 422, "idempotency_key_reused")
    assert state(db, workspace.id) == after
    assert (api.balance("office", world.berlin), api.balance("office", world.paris)) == balances
    assert balances[0]["available"] == 70 and balances[1]["available"] == 120

    too_much = api.post("/v1/transfers", office_to_office(world, 71), key="xfer-too-much")
    body409 = problem(too_much, 409, "insufficient_credits")
    assert (body409["available"], body409["requested"]) == (70, 71)
    assert body409["detail"] == "Not enough Credits to transfer: 70 available, 71 requested."  # its name, unit
    api.pack("office", world.berlin, 500, "Top-up")
    before = state(db, workspace.id)
    replay = api.post("/v1/transfers", office_to_office(world, 71), key="xfer-too-much")
    problem(replay, 409, "insufficient_credits")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == too_much.json()
    assert state(db, workspace.id) == before


def test_transfer_skips_voided_and_expired_packs(world, db, workspace, frozen_clock):
    api, p = world.api, world.packs
    api.post(f"/v1/packs/{p['anna_june']}/void", {"reason": "Mistake"}, status=200)
    frozen_clock.set(frozen_clock.now().replace(month=4))  # anna_march has expired
    before = state(db, workspace.id)
    problem(api.post("/v1/transfers", {"from": {"kind": "user", "id": world.anna}, "to": {"kind": "user",
                                                                                          "id": world.ben},
                                       "credit_type": "credits", "amount": 1}), 409, "insufficient_credits")
    problem(api.post("/v1/transfers", {"from_pack_id": p["anna_june"], "to": {"kind": "user", "id": world.ben},
                                       "credit_type": "credits", "amount": 1}), 409, "pack_not_active")
    assert state(db, workspace.id) == before


@pytest.mark.parametrize("change, status, code", [
    ({"amount": 0}, 422, "validation_error"),
    ({"amount": -1}, 422, "validation_error"),
    ({"credit_type": "minutes"}, 422, "unknown_credit_type"),
    ({"credit_type": "sms"}, 422, "invalid_sms_account"),  # SMS credits: the pool and users only
    ({"to": {"kind": "office", "id": "BERLIN"}}, 422, "same_holder"),
    ({"from": None}, 422, "transfer_source_required"),
    ({"to": {"kind": "office", "id": "off_nope"}}, 404, "not_found"),
    ({"from": {"kind": "user", "id": "usr_nope"}}, 404, "not_found"),
    ({"from_pack_id": "pack_nope", "from": None}, 404, "not_found"),
    ({"lines": []}, 422, "unknown_field"),
    ({"from_holder_id": "x"}, 422, "unknown_field"),
])
def test_bad_transfers_answer_a_stable_code_and_write_nothing(world, db, workspace, change, status, code):
    body = {**office_to_office(world, 10), **copy.deepcopy(change)}
    if body["to"].get("id") == "BERLIN":
        body["to"]["id"] = world.berlin
    body = {k: v for k, v in body.items() if v is not None}
    before = state(db, workspace.id)
    problem(world.api.post("/v1/transfers", body, key=f"bad-{code}"), status, code)
    assert state(db, workspace.id) == before


def test_a_pack_of_another_credit_type_cannot_be_the_source(world, db, workspace):
    api = world.api
    sms = api.pack("workspace", None, 100, "SMS", credit_type="sms")["id"]
    before = state(db, workspace.id)
    problem(api.post("/v1/transfers", {"from_pack_id": sms, "to": {"kind": "office", "id": world.paris},
                                       "credit_type": "credits", "amount": 1}), 422, "credit_type_mismatch")
    assert state(db, workspace.id) == before


def test_transfers_need_manage_packs(client, world, db, workspace):
    member, _ = member_api(client, world.api, permissions=["consume_credits"])
    before = state(db, workspace.id)
    problem(member.post("/v1/transfers", office_to_office(world, 10), key="m-xfer"), 403, "not_permitted")
    assert state(db, workspace.id) == before
    problem(member.get("/v1/transfers/xfer_nope", status=None), 404, "not_found")
