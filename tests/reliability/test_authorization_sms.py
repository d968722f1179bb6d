"""Authorization matrix inside one workspace: every generic credits write endpoint, on the SMS-governed
credit type, for every role and permission combination the SMS rules tell apart (seed 003).

The probe of 2026-12-02 (F1) found the SMS rules bypassed through the generic endpoints: a manager with
only send_sms minted 100,000 SMS credits with POST /v1/packs, a member with consume_credits burnt other
users' and the pool's SMS credits, a manager with manage_packs moved pool credits with POST /v1/transfers,
and a member listed every user's SMS packs. Here each caller tries each action; the table below says who
may, written from the rules (not from the code):

- credits are bought (POST /v1/sms/purchases); outside that only master users grant SMS credits, never
  as a purchase, and only to the pool or to users who may send;
- a user always spends their own credits (consume, hold, capture, release); the pool is never spent;
- generic transfers and changes of holder need manage_packs and the SMS transfer rule; the pool is the
  master users'; credits go to users with send_sms only;
- void and reversals of SMS credits: master users;
- a viewer sees the SMS packs of the users they manage (scope): master everyone and the pool, an office
  manager the users of their offices, anyone else themselves and their team.

An allowed request answers 2xx and changes the workspace; a refused one answers 4xx and changes nothing
(every pack, account total, row count and audit row compared before and after).
"""

from __future__ import annotations

import pytest

from tests.api.credits_world import Api, assert_ledger_clean, problem, state

ROLES = {
    # name: (role, permissions, primary office, additional offices)
    "master": None,  # the workspace's master user (its first API key)
    "office_manager": ("manager", ["send_sms", "manage_office_credits"], "North", ["East"]),
    "sms_manager": ("manager", ["send_sms"], "North", []),  # the probe's "mallory"
    "packs_manager": ("manager", ["manage_packs"], "North", []),
    "consumer": ("member", ["consume_credits"], "North", []),  # the probe's "carol"
    "team_member": ("member", ["send_sms", "consume_credits"], "North", []),  # in North team with ben, dan
    "loner": ("member", ["send_sms"], "South", []),  # in no team, no office of the office manager
}
# Other users the actions aim at: ben (team mate of team_member, North), dan (North team, no send_sms),
# eve (East: the office manager's additional office).
TARGETS = {
    "ben": ("member", ["send_sms", "consume_credits"], "North", []),
    "dan": ("member", [], "North", []),
    "eve": ("member", ["send_sms"], "East", []),
}
# Who may do each action (the actions are below, in the order they run).
ALLOWED = {
    "grant_to_self": {"master"},
    "grant_to_pool": {"master"},
    "batch_grant_to_self": {"master"},
    "grant_claiming_a_purchase": set(),
    "consume_own": {"master", "office_manager", "sms_manager", "team_member"},
    "consume_team_mates": set(),
    "consume_pool": set(),
    "hold_own": {"master", "office_manager", "sms_manager", "team_member"},
    "hold_team_mates": set(),
    "capture_team_mates_hold": set(),
    "release_team_mates_hold": set(),
    "transfer_pool_to_self": {"master"},
    "transfer_own_to_team_mate": {"master"},
    "transfer_between_office_users": {"master"},
    "transfer_from_team_mate_to_self": {"master"},
    "change_holder_to_user_without_send_sms": set(),
    "change_holder_user_to_user": {"master"},
    "change_holder_pool_to_user": {"master"},
    "void": {"master"},
    "reverse_consumption": {"master"},
    "edit_label_of_team_mates_pack": {"master", "office_manager", "team_member"},
}
# The SMS packs each caller sees in GET /v1/packs (by holder), and whether ben's pack is theirs to read.
SEES = {
    "master": {"pool", "master", "office_manager", "sms_manager", "team_member", "loner", "ben", "eve"},
    "office_manager": {"office_manager", "sms_manager", "team_member", "ben", "eve"},
    "sms_manager": {"sms_manager"},
    "packs_manager": set(),
    "consumer": set(),
    "team_member": {"team_member", "ben"},
    "loner": {"loner"},
}


def _user(api: Api, name: str, spec, offices: dict) -> str:
    role, permissions, primary, extra = spec
    return api.created("/v1/users", {
        "name": name, "email": f"{name}@sms-matrix.example", "is_staff": True, "role": role,
        "permissions": permissions, "primary_office_id": offices[primary],
        "additional_office_ids": [offices[o] for o in extra]})["id"]


def _sms_world(client, workspace) -> dict:
    master = Api(client, workspace.headers)
    master.created("/v1/credit-types", {"code": "sms", "name": "SMS", "required_permission": "send_sms"})
    offices = {name: master.created("/v1/offices", {"name": name})["id"] for name in ("North", "East", "South")}
    ids = {"master": workspace.master_id}
    apis = {"master": master}
    for name, spec in {**{k: v for k, v in ROLES.items() if v}, **TARGETS}.items():
        ids[name] = _user(master, name, spec, offices)
        key = master.created("/v1/api-keys", {"name": name, "user_id": ids[name]})["key"]
        apis[name] = Api(client, {"Authorization": f"Bearer {key}"})
    master.created("/v1/teams", {"name": "North team", "office_id": offices["North"],
                                 "member_ids": [ids["team_member"], ids["ben"], ids["dan"]]})

    def grant(holder: str, quantity: int, name: str) -> str:
        who = {"kind": "workspace"} if holder == "pool" else {"kind": "user", "id": ids[holder]}
        return master.created("/v1/packs", {"holder": who, "credit_type": "sms", "quantity": quantity,
                                            "name": name})["id"]

    packs = {"pool": grant("pool", 10_000, "Pool"), "pool_move": grant("pool", 100, "Pool to move")}
    for name in ("master", "office_manager", "sms_manager", "team_member", "loner", "ben", "eve"):
        packs[name] = grant(name, 1_000, f"{name} SMS")
    packs["team_member_move"] = grant("team_member", 100, "team_member SMS to move")
    packs["ben_void"] = grant("ben", 100, "ben SMS to void")
    ben = apis["ben"]
    consumption = ben.created("/v1/consumptions", {"context": {"kind": "user", "id": ids["ben"]},
                                                   "credit_type": "sms", "amount": 2})["id"]
    holds = [ben.created("/v1/holds", {"context": {"kind": "user", "id": ids["ben"]}, "credit_type": "sms",
                                       "amount": 1, "timeout_seconds": 86_400})["id"] for _ in range(2)]
    return {"ids": ids, "apis": apis, "packs": packs, "consumption": consumption, "holds": holds,
            "offices": offices}


def _actions(w: dict, me: str) -> list[tuple[str, str, str, dict | None]]:
    """(action, method, path, body) in the order they run."""
    ids, packs = w["ids"], w["packs"]

    def user(name):
        return {"kind": "user", "id": ids[name]}

    pool = {"kind": "workspace"}

    def pack(holder):
        return {"holder": holder, "credit_type": "sms", "quantity": 100_000, "name": "free sms"}

    def spend(context):
        return {"context": context, "credit_type": "sms", "amount": 1}

    def move(source, to):
        return {"from": source, "to": to, "credit_type": "sms", "amount": 1}

    return [
        ("grant_to_self", "POST", "/v1/packs", pack(user(me))),
        ("grant_to_pool", "POST", "/v1/packs", pack(pool)),
        ("batch_grant_to_self", "POST", "/v1/packs/batch", {"packs": [pack(user(me))]}),
        ("grant_claiming_a_purchase", "POST", "/v1/packs",
         {**pack(user(me)), "source": "purchase", "external_ref": "smsp_01m8v4cp5s0000000000000000"}),
        ("consume_own", "POST", "/v1/consumptions", spend(user(me))),
        ("consume_team_mates", "POST", "/v1/consumptions", spend(user("ben"))),
        ("consume_pool", "POST", "/v1/consumptions", spend(pool)),
        ("hold_own", "POST", "/v1/holds", spend(user(me))),
        ("hold_team_mates", "POST", "/v1/holds", spend(user("ben"))),
        ("capture_team_mates_hold", "POST", f"/v1/holds/{w['holds'][0]}/capture", {}),
        ("release_team_mates_hold", "POST", f"/v1/holds/{w['holds'][1]}/release", None),
        ("transfer_pool_to_self", "POST", "/v1/transfers", move(pool, user(me))),
        ("transfer_own_to_team_mate", "POST", "/v1/transfers", move(user(me), user("ben"))),
        ("transfer_between_office_users", "POST", "/v1/transfers", move(user("team_member"), user("eve"))),
        ("transfer_from_team_mate_to_self", "POST", "/v1/transfers", move(user("ben"), user(me))),
        ("change_holder_to_user_without_send_sms", "POST",
         f"/v1/packs/{packs['team_member_move']}/change-holder", {"holder": user("dan")}),
        ("change_holder_user_to_user", "POST", f"/v1/packs/{packs['team_member_move']}/change-holder",
         {"holder": user("ben"), "reason": "matrix"}),
        ("change_holder_pool_to_user", "POST", f"/v1/packs/{packs['pool_move']}/change-holder",
         {"holder": user("eve")}),
        ("void", "POST", f"/v1/packs/{packs['ben_void']}/void", {"reason": "matrix"}),
        ("reverse_consumption", "POST", f"/v1/consumptions/{w['consumption']}/reverse", {"reason": "matrix"}),
        ("edit_label_of_team_mates_pack", "PATCH", f"/v1/packs/{packs['ben']}", {"status_label": "matrix"}),
    ]


@pytest.mark.parametrize("me", list(ROLES))
def test_generic_credit_writes_follow_the_sms_rules_for_every_role(client, db, workspace, frozen_clock, me):
    w = _sms_world(client, workspace)
    api = w["apis"][me]
    actions = _actions(w, me)
    assert {a for a, *_ in actions} == set(ALLOWED)
    wrong = []
    for action, method, path, body in actions:
        before = state(db, workspace.id)
        r = api.client.request(method, path, json=body, headers=api.headers)
        after = state(db, workspace.id)
        allowed = me in ALLOWED[action]
        if r.status_code >= 500:
            wrong.append(f"{action}: {r.status_code} {r.text}")
        elif allowed and not (r.status_code < 300 and after != before):
            wrong.append(f"{action}: should be allowed, got {r.status_code} {r.text}")
        elif not allowed and not (400 <= r.status_code < 500 and after == before):
            wrong.append(f"{action}: should be refused and change nothing, got {r.status_code} {r.text}"
                         + ("" if after == before else " (state changed)"))
    assert not wrong, f"{me}:\n" + "\n".join(wrong)
    assert_ledger_clean(db, workspace.id)


def test_refusals_name_the_rule(client, db, workspace, frozen_clock):
    """What the callers of the probe were told (stable codes), master included where the rule is for all."""
    w = _sms_world(client, workspace)
    ids, apis, packs = w["ids"], w["apis"], w["packs"]
    mallory, carol, pat, master = apis["sms_manager"], apis["consumer"], apis["packs_manager"], apis["master"]
    before = state(db, workspace.id)
    problem(mallory.post("/v1/packs", {"holder": {"kind": "user", "id": ids["sms_manager"]}, "credit_type": "sms",
                                       "quantity": 100_000, "name": "free sms"}), 403, "credit_type_governed")
    problem(master.post("/v1/packs", {"holder": {"kind": "user", "id": ids["master"]}, "credit_type": "sms",
                                      "quantity": 1, "name": "x", "source": "purchase"}), 422, "source_reserved")
    problem(master.post("/v1/packs", {"holder": {"kind": "office", "id": w["offices"]["North"]},
                                      "credit_type": "sms", "quantity": 1, "name": "x"}), 422, "invalid_sms_account")
    problem(master.post("/v1/packs", {"holder": {"kind": "user", "id": ids["dan"]}, "credit_type": "sms",
                                      "quantity": 1, "name": "x"}), 422, "recipient_cannot_send_sms")
    for context in ({"kind": "user", "id": ids["ben"]}, {"kind": "workspace"}):
        for who in (carol, master):
            problem(who.post("/v1/consumptions", {"context": context, "credit_type": "sms", "amount": 25}),
                    403, "own_credits_only")
    problem(pat.post("/v1/transfers", {"from": {"kind": "workspace"}, "to": {"kind": "user", "id": ids["ben"]},
                                       "credit_type": "sms", "amount": 10}), 403, "pool_master_only")
    problem(master.post(f"/v1/packs/{packs['ben']}/change-holder", {"holder": {"kind": "user", "id": ids["dan"]}}),
            422, "recipient_cannot_send_sms")
    problem(pat.post(f"/v1/packs/{packs['ben_void']}/void", {"reason": "x"}), 404, "not_found")  # not in scope
    problem(apis["office_manager"].post(f"/v1/packs/{packs['ben_void']}/void", {"reason": "x"}), 403,
            "not_permitted")  # no manage_packs
    assert state(db, workspace.id) == before


@pytest.mark.parametrize("me", list(ROLES))
def test_sms_packs_are_read_in_the_callers_scope(client, db, workspace, frozen_clock, me):
    w = _sms_world(client, workspace)
    ids, api, packs = w["ids"], w["apis"][me], w["packs"]
    names = {v: k for k, v in ids.items()}
    listed = api.get("/v1/packs", {"credit_type": "sms", "limit": 500}).json()["data"]
    holders = {"pool" if p["holder"]["kind"] == "workspace" else names[p["holder"]["id"]] for p in listed}
    assert holders == SEES[me]
    sees_ben = "ben" in SEES[me]
    for path in (f"/v1/packs/{packs['ben']}", f"/v1/packs/{packs['ben']}/history"):
        assert api.get(path, status=None).status_code == (200 if sees_ben else 404), path
    balance = api.get("/v1/balances", {"holder_kind": "user", "holder_id": ids["ben"], "credit_type": "sms"},
                      status=None)
    assert balance.status_code == (200 if sees_ben else 403)
    everything = api.get("/v1/balances", {"holder_kind": "user", "holder_id": ids["ben"]}).json()["data"]
    assert [b["credit_type"] for b in everything] == (["sms"] if sees_ben else [])
    eligibility = api.get("/v1/eligibility", {"context_kind": "user", "context_id": ids["ben"],
                                              "credit_type": "sms"}).json()
    shown = {e["pack"]["id"] for e in eligibility["eligible"]} | {m["pack"]["id"] for m in eligibility["not_eligible"]}
    assert (packs["ben"] in shown) == sees_ben
    if me != "master":  # the pool is the master users'
        assert api.get(f"/v1/packs/{packs['pool']}", status=None).status_code == 404
    # Ben's own consumption and hold: seen by those who see Ben's credits.
    for path in (f"/v1/consumptions/{w['consumption']}", f"/v1/holds/{w['holds'][0]}"):
        assert api.get(path, status=None).status_code == (200 if sees_ben else 404), path
    listed = {c["id"] for c in api.get("/v1/consumptions", {"limit": 500}).json()["data"]}
    assert (w["consumption"] in listed) == sees_ben
