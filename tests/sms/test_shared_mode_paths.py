"""Shared office SMS credits on every path (issue 17): the generic endpoints (grant, transfer, consume, reads)
follow the same shared-mode rules as /v1/sms, with API keys of every role; refused calls change nothing."""

from __future__ import annotations

import pytest

from tests.api.credits_world import Api, assert_ledger_clean, problem
from tests.api.helpers import auth
from tests.parties.factories import make_api_key, master_actor
from tests.sms.conftest import BILLING


@pytest.fixture
def api(client, world, workspace):
    master = master_actor(world.db, world.ws)
    clients = {"master": Api(client, workspace.headers)}
    for name in ("Mia", "Ann", "Eve", "Cat", "Dan"):
        clients[name] = Api(client, auth(make_api_key(world.db, actor=master, user_id=world.ids[name])))
    return clients


def _office(world, name):
    return {"kind": "office", "id": world.offices[name]}


def _pack_ids(api, who) -> set[str]:
    return {p["name"] for p in api[who].get("/v1/packs", {"credit_type": "sms", "limit": 200}).json()["data"]}


def test_the_generic_endpoints_follow_the_shared_rules(api, world):
    # Individual mode: an office never holds SMS credits.
    api["master"].post("/v1/sms/purchases", {"for": {"kind": "workspace"}, "quantity": 50, "billing": BILLING},
                       key="pool-50", status=201)
    refused = api["master"].post("/v1/packs", {"holder": _office(world, "North"), "credit_type": "sms",
                                               "quantity": 5, "name": "North pool"}, key="ind-office")
    problem(refused, 422, "invalid_sms_account")
    api["master"].patch("/v1/sms/settings", {"credit_mode": "shared", "confirm_mode_change": True}, status=200)

    # Grants: master users only, to the pool or an office of the business.
    for name in ("North", "East", "South"):
        api["master"].post("/v1/packs", {"holder": _office(world, name), "credit_type": "sms", "quantity": 10,
                                         "name": f"{name} pool"}, key=f"grant-{name}", status=201)
    problem(api["Mia"].post("/v1/packs", {"holder": _office(world, "North"), "credit_type": "sms", "quantity": 1,
                                          "name": "Mine"}, key="mia-grant"), 403, "credit_type_governed")
    # Reads: each sees the pools of their offices (Mia: North and East; Eve: East; Cat: South), masters all.
    assert _pack_ids(api, "master") >= {"North pool", "East pool", "South pool"}
    assert _pack_ids(api, "Mia") == {"North pool", "East pool"}
    assert _pack_ids(api, "Eve") == {"East pool"}
    assert _pack_ids(api, "Cat") == {"South pool"}

    # Transfers through /v1/transfers: the shared rules (users hold nothing; pools move by masters).
    moved = api["master"].post("/v1/transfers", {"from": _office(world, "South"), "to": _office(world, "East"),
                                                 "credit_type": "sms", "amount": 4}, key="t-south-east")
    assert moved.status_code == 201, moved.text
    problem(api["master"].post("/v1/transfers", {"from": _office(world, "North"),
                                                 "to": {"kind": "user", "id": world.ids["Ann"]},
                                                 "credit_type": "sms", "amount": 1}, key="t-to-ann"),
            422, "invalid_sms_account")
    problem(api["Ann"].post("/v1/transfers", {"from": _office(world, "North"), "to": _office(world, "East"),
                                              "credit_type": "sms", "amount": 1}, key="t-ann"), 403, "not_permitted")

    # Spending: a sender spends their office's pool or the workspace pool, never another office's.
    problem(api["master"].post("/v1/consumptions", {"context": _office(world, "South"), "credit_type": "sms",
                                                    "amount": 1}, key="c-south"), 403, "own_credits_only")
    ok = api["master"].post("/v1/consumptions", {"context": {"kind": "workspace"}, "credit_type": "sms",
                                                 "amount": 1}, key="c-pool")
    assert ok.status_code == 201, ok.text
    problem(api["Dan"].post("/v1/consumptions", {"context": _office(world, "North"), "credit_type": "sms",
                                                 "amount": 1}, key="c-dan"), 403, "not_permitted")
    # A message of Eve (East) is paid by East's pool: 10 + 4 moved in, 1 used.
    api["Eve"].post("/v1/messages", {"to": "+61400000002", "body": "Hello"}, key="m-eve", status=201)
    box = {row["name"]: row for row in api["master"].get("/v1/sms/accounts").json()["data"]}
    assert box["East"]["available"] == 13 and box["South"]["available"] == 6
    assert_ledger_clean(world.db, world.ws)
