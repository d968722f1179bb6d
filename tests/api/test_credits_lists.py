"""The lists a first-time integrator looks for: transfers, holds, consumptions by pack; repeated or
comma-separated status; eligibility per credit type; effective permissions; the `test` payment method."""

from __future__ import annotations

import pytest

from tests.api.credits_world import build_world, member_api, problem


@pytest.fixture
def world(client, workspace, frozen_clock):
    return build_world(client, workspace.headers)


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()["data"]]


def test_transfers_are_listed_with_both_sides_and_filters(world):
    api = world.api
    first = api.created("/v1/transfers", {"from": {"kind": "office", "id": world.paris},
                                          "to": {"kind": "user", "id": world.clara},
                                          "credit_type": "credits", "amount": 5})
    second = api.created("/v1/transfers", {"from": {"kind": "user", "id": world.clara},
                                           "to": {"kind": "office", "id": world.berlin},
                                           "credit_type": "credits", "amount": 2})
    assert ids(api.get("/v1/transfers")) == [second["id"], first["id"]]  # newest first
    # A holder filter matches either side.
    assert set(ids(api.get("/v1/transfers", {"holder_kind": "user", "holder_id": world.clara}))) == {
        first["id"], second["id"]}
    assert ids(api.get("/v1/transfers", {"holder_kind": "office", "holder_id": world.berlin})) == [second["id"]]
    # By pack: the transfer that took credits from the Paris pack, and the one that made Clara's pack.
    assert ids(api.get("/v1/transfers", {"pack_id": world.packs["paris"]})) == [first["id"]]
    clara_pack = first["lines"][0]["to_pack_id"]
    assert set(ids(api.get("/v1/transfers", {"pack_id": clara_pack}))) == {first["id"], second["id"]}
    row = api.get("/v1/transfers", {"limit": 1}).json()
    assert (row["data"][0]["from"]["kind"], row["data"][0]["from"]["id"]) == ("user", world.clara)
    assert row["next_cursor"]
    assert ids(api.get("/v1/transfers", {"created_to": "2000-01-01"})) == []
    problem(api.get("/v1/transfers", {"pack_id": "pack_nope"}, status=None), 404, "not_found")


def test_holds_are_listed_with_status_repeated_or_comma_separated(world):
    api = world.api
    held = api.created("/v1/holds", {"context": {"kind": "project", "id": world.project},
                                     "credit_type": "credits", "amount": 3})
    released = api.created("/v1/holds", {"context": {"kind": "project", "id": world.project},
                                         "credit_type": "credits", "amount": 4})
    api.post(f"/v1/holds/{released['id']}/release", status=200)
    assert ids(api.get("/v1/holds")) == [released["id"], held["id"]]
    assert ids(api.get("/v1/holds", {"status": "pending"})) == [held["id"]]
    both = [released["id"], held["id"]]
    assert ids(api.get("/v1/holds", {"status": "pending,released"})) == both
    assert ids(api.get("/v1/holds", [("status", "pending"), ("status", "released")])) == both
    burnt = api.get(f"/v1/holds/{held['id']}").json()["lines"][0]["pack_id"]
    assert held["id"] in ids(api.get("/v1/holds", {"pack_id": burnt}))
    assert ids(api.get("/v1/holds", {"credit_type": "credits", "context_kind": "project",
                                     "context_id": world.project})) == both
    bad = problem(api.get("/v1/holds", {"status": "pending,lost"}, status=None), 422, "invalid_status")
    assert "lost" in bad["detail"]
    problem(api.get("/v1/holds", {"credit_type": "minutes"}, status=None), 422, "unknown_credit_type")


def test_pack_status_accepts_comma_separated_values(world, frozen_clock):
    api = world.api
    repeated = ids(api.get("/v1/packs", [("status", "active"), ("status", "depleted"), ("limit", 500)]))
    assert sorted(ids(api.get("/v1/packs", {"status": "active,depleted", "limit": 500}))) == sorted(repeated)
    assert world.packs["paris"] in repeated
    problem(api.get("/v1/packs", {"status": "activ"}, status=None), 422, "invalid_status")


def test_consumptions_filter_by_the_pack_they_used(world):
    api = world.api
    used = api.created("/v1/consumptions", {"context": {"kind": "office", "id": world.paris},
                                            "credit_type": "credits", "amount": 3})
    api.created("/v1/consumptions", {"context": {"kind": "project", "id": world.project},
                                     "credit_type": "credits", "amount": 1})
    assert ids(api.get("/v1/consumptions", {"pack_id": world.packs["paris"]})) == [used["id"]]
    assert ids(api.get("/v1/consumptions", {"pack_id": world.packs["berlin_june_2"]})) == []


def test_eligibility_answers_per_credit_type(world):
    api = world.api
    sam = api.created("/v1/users", {"name": "Sam", "email": "sam@desk.example", "is_staff": True,
                                    "permissions": ["send_sms"], "primary_office_id": world.berlin})["id"]
    api.pack("user", sam, 9, "Sam SMS", credit_type="sms")
    api.pack("user", sam, 4, "Sam credits")
    both = api.get("/v1/eligibility", {"context_kind": "user", "context_id": sam}).json()
    assert both["available_by_type"] == {"credits": 4, "sms": 9}
    assert both["available"] is None  # two units do not add up
    one = api.get("/v1/eligibility", {"context_kind": "user", "context_id": sam, "credit_type": "sms"}).json()
    assert (one["available"], one["available_by_type"]) == (9, {"sms": 9})
    only = api.get("/v1/eligibility", {"context_kind": "office", "context_id": world.paris}).json()
    assert (only["available"], only["available_by_type"]) == (70, {"credits": 70})


def test_users_show_effective_permissions(world, client):
    api = world.api
    me = [u for u in api.get("/v1/users", {"limit": 500}).json()["data"] if u["role"] == "master"][0]
    assert "send_sms" in me["effective_permissions"] and "manage_users" in me["effective_permissions"]
    _member, uid = member_api(client, api, permissions=["send_sms"])
    member = api.get(f"/v1/users/{uid}").json()
    assert member["effective_permissions"] == ["send_sms"]


def test_the_test_payment_method_stays_pending_until_settled(world):
    api = world.api
    methods = api.get("/v1/sms/settings").json()["payment_methods"]
    assert "test" in methods
    purchase = api.created("/v1/sms/purchases", {"quantity": 10, "payment_method": "test",
                                                 "for": {"kind": "workspace"}, "billing": {
                                                     "name": "Ann Example", "address": "1 Harbour St",
                                                     "email": "ann@example.com"}})
    assert purchase["status"] == "pending"
    assert api.balance("workspace", None, credit_type="sms")["total"] == 0
    paid = api.post(f"/v1/sms/purchases/{purchase['id']}/payment", {"status": "paid"}, status=200).json()
    assert paid["status"] == "paid"
    assert api.balance("workspace", None, credit_type="sms")["total"] == 10


def test_packs_under_a_percentage_left_and_not_started_as_the_report_has_them(world, frozen_clock):
    api = world.api
    full = api.pack("office", world.berlin, 100, "Untouched")["id"]
    api.pack("office", world.berlin, 100, "Nearly used")
    api.created("/v1/consumptions", {"context": {"kind": "office", "id": world.berlin}, "credit_type": "credits",
                                     "amount": 81, "allow_partial": False, "product_code": None})
    later = api.pack("office", world.berlin, 10, "Next year", starts_at="2099-01-01T00:00:00Z")["id"]
    under_20 = set(ids(api.get("/v1/packs", {"left_below": 20, "limit": 500})))
    remaining = {p["id"]: p["remaining"] for p in api.get("/v1/packs", {"limit": 500}).json()["data"]}
    quantity = {p["id"]: p["quantity"] for p in api.get("/v1/packs", {"limit": 500}).json()["data"]}
    assert under_20 == {pid for pid in remaining if remaining[pid] * 100 < quantity[pid] * 20}
    assert full not in under_20
    assert ids(api.get("/v1/packs", {"not_started": "true"})) == [later]
    problem(api.get("/v1/packs", {"left_below": 0}, status=None), 422, "validation_error")
    assert under_20 and len(under_20) < len(remaining)  # the 81 spent left some pack under 20 %, not all
