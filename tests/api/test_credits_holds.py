"""Holds over HTTP: reserve, capture all or part, release, time out, reverse; idempotency and bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from creditdesk.credits import expiry, repository
from tests.api.credits_world import assert_ledger_clean, build_world, member_api, problem, state


@pytest.fixture
def world(client, workspace, frozen_clock):
    return build_world(client, workspace.headers)


def hold_body(world, amount, **extra):
    return {"context": {"kind": "project", "id": world.project}, "credit_type": "credits", "amount": amount,
            "reference": {"kind": "message", "id": "msg-2026-0001"}, **extra}


def test_hold_reserves_in_burn_order_and_held_credits_are_not_spendable(world, db, workspace):
    api, p = world.api, world.packs
    r = api.post("/v1/holds", hold_body(world, 60, timeout_seconds=900), key="hold-1")
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["id"].startswith("hold_")
    assert (hold["object"], hold["status"], hold["amount"], hold["captured_amount"]) == ("hold", "pending", 60, 0)
    assert hold["timeout_at"].startswith("2026-01-15T12:15:00")
    assert hold["reference"]["kind"] == "message"
    assert hold["lines"] == [{"pack_id": p["ben_vip"], "amount": 30}, {"pack_id": p["anna_march"], "amount": 30}]
    assert api.get(f"/v1/holds/{hold['id']}").json() == hold

    assert api.balance("user", world.ben) == {"available": 0, "held": 30, "total": 30}
    assert api.balance("user", world.anna) == {"available": 60, "held": 30, "total": 90}
    anna_march = api.get(f"/v1/packs/{p['anna_march']}").json()
    assert (anna_march["remaining"], anna_march["held"], anna_march["balance"]) == (20, 30, 50)

    # A consumption skips what is held.
    con = api.created("/v1/consumptions", {"context": {"kind": "project", "id": world.project},
                                           "credit_type": "credits", "amount": 25})
    assert con["lines"] == [{"pack_id": p["anna_march"], "amount": 20}, {"pack_id": p["anna_june"], "amount": 5}]
    # 240 - 60 held - 25 consumed = 155 left for the project; 156 is too much.
    before = state(db, workspace.id)
    problem(api.post("/v1/holds", hold_body(world, 156)), 409, "insufficient_credits")
    assert state(db, workspace.id) == before
    assert_ledger_clean(db, workspace.id)


def test_capture_part_releases_the_rest(world, db, workspace):
    api, p = world.api, world.packs
    hold = api.created("/v1/holds", hold_body(world, 60))
    r = api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 45}, key="cap-45")
    assert r.status_code == 200, r.text
    captured = r.json()
    assert (captured["status"], captured["captured_amount"], captured["amount"]) == ("captured", 45, 60)
    assert captured["resolved_at"] is not None
    assert api.balance("user", world.ben) == {"available": 0, "held": 0, "total": 0}
    assert api.balance("user", world.anna) == {"available": 75, "held": 0, "total": 75}
    assert api.get(f"/v1/packs/{p['ben_vip']}").json()["status"] == "depleted"
    after = state(db, workspace.id)

    replay = api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 45}, key="cap-45")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == captured
    problem(api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 44}, key="cap-45"), 422,
            "idempotency_key_reused")
    problem(api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 10}), 409, "hold_not_pending")
    problem(api.post(f"/v1/holds/{hold['id']}/release"), 409, "hold_not_pending")
    assert state(db, workspace.id) == after

    history = api.get(f"/v1/packs/{p['anna_march']}/history").json()["data"]
    assert [(h["kind"], h["amount"], h["balance_after"], h["held_after"]) for h in history] == [
        ("grant", 50, 50, 0), ("hold", 0, 50, 30), ("capture", -15, 35, 0)]
    assert_ledger_clean(db, workspace.id)


def test_capture_without_a_body_takes_the_whole_hold(world, db, workspace):
    api = world.api
    hold = api.created("/v1/holds", hold_body(world, 35))
    captured = api.post(f"/v1/holds/{hold['id']}/capture", status=200).json()
    assert (captured["status"], captured["captured_amount"]) == ("captured", 35)
    assert api.balance("user", world.ben)["total"] == 0
    assert api.balance("user", world.anna)["total"] == 85


def test_capture_more_than_held_is_refused_and_changes_nothing(world, db, workspace):
    api = world.api
    hold = api.created("/v1/holds", hold_body(world, 40))
    before = state(db, workspace.id)
    problem(api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 41}, key="cap-41"), 422, "capture_exceeds_hold")
    problem(api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 0}), 422, "validation_error")
    problem(api.post(f"/v1/holds/{hold['id']}/capture", {"amount": -1}), 422, "validation_error")
    problem(api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 5, "status": "captured"}), 422, "unknown_field")
    assert state(db, workspace.id) == before
    # The refusal replays under its key.
    problem(api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 41}, key="cap-41"), 422, "capture_exceeds_hold")
    assert api.get(f"/v1/holds/{hold['id']}").json()["status"] == "pending"
    assert state(db, workspace.id) == before


def test_release_gives_the_credits_back(world, db, workspace):
    api = world.api
    hold = api.created("/v1/holds", hold_body(world, 60))
    r = api.post(f"/v1/holds/{hold['id']}/release", key="rel-1")
    assert r.status_code == 200, r.text
    released = r.json()
    assert (released["status"], released["captured_amount"]) == ("released", 0)
    assert api.balance("user", world.ben) == {"available": 30, "held": 0, "total": 30}
    assert api.balance("user", world.anna) == {"available": 90, "held": 0, "total": 90}
    after = state(db, workspace.id)
    replay = api.post(f"/v1/holds/{hold['id']}/release", key="rel-1")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == released
    problem(api.post(f"/v1/holds/{hold['id']}/capture"), 409, "hold_not_pending")
    problem(api.post(f"/v1/holds/{hold['id']}/reverse"), 409, "nothing_to_reverse")
    assert state(db, workspace.id) == after
    assert_ledger_clean(db, workspace.id)


def test_a_timed_out_hold_cannot_be_captured_and_its_credits_come_back(world, db, workspace, frozen_clock):
    api = world.api
    hold = api.created("/v1/holds", hold_body(world, 30, timeout_seconds=600))  # all of ben_vip
    frozen_clock.advance(seconds=601)
    before = state(db, workspace.id)
    problem(api.post(f"/v1/holds/{hold['id']}/capture", key="late"), 409, "hold_expired")
    assert state(db, workspace.id) == before
    # The next consumption that needs those credits releases the hold first.
    con = api.created("/v1/consumptions", {"context": {"kind": "user", "id": world.ben}, "credit_type": "credits",
                                           "amount": 30})
    assert con["lines"] == [{"pack_id": world.packs["ben_vip"], "amount": 30}]
    assert api.get(f"/v1/holds/{hold['id']}").json()["status"] == "timed_out"
    assert_ledger_clean(db, workspace.id)


def test_a_pack_expiring_while_held_honours_the_hold_then_expires(world, db, workspace, frozen_clock):
    api, p = world.api, world.packs
    frozen_clock.set(datetime(2026, 3, 30, 12, 0, tzinfo=UTC))
    hold = api.created("/v1/holds", {"context": {"kind": "user", "id": world.anna}, "credit_type": "credits",
                                     "amount": 50, "timeout_seconds": 2 * 86400})
    assert hold["lines"] == [{"pack_id": p["anna_march"], "amount": 50}]
    frozen_clock.set(datetime(2026, 3, 31, 6, 0, tzinfo=UTC))  # anna_march expired at midnight
    db.write(lambda s: expiry.expire_packs(s, repository.due_pack_ids(s, workspace_id=workspace.id)))
    pack = api.get(f"/v1/packs/{p['anna_march']}").json()
    assert (pack["status"], pack["held"], pack["remaining"]) == ("expired", 50, 0)

    captured = api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 20}, status=200).json()
    assert captured["captured_amount"] == 20
    pack = api.get(f"/v1/packs/{p['anna_march']}").json()
    assert (pack["held"], pack["remaining"], pack["balance"]) == (0, 0, 0)  # the other 30 went to breakage
    kinds = [(h["kind"], h["amount"]) for h in api.get(f"/v1/packs/{p['anna_march']}/history").json()["data"]]
    assert ("capture", -20) in kinds and ("expire", -30) in kinds
    assert_ledger_clean(db, workspace.id)


def test_reverse_a_captured_hold(world, db, workspace):
    api, p = world.api, world.packs
    hold = api.created("/v1/holds", hold_body(world, 40))
    api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 35}, status=200)
    assert api.balance("user", world.ben)["total"] == 0
    r = api.post(f"/v1/holds/{hold['id']}/reverse", {"reason": "Message never delivered"}, key="hrev-1")
    assert r.status_code == 200, r.text
    reversed_ = r.json()
    assert reversed_["reversed_at"] is not None and reversed_["status"] == "captured"
    assert api.balance("user", world.ben) == {"available": 30, "held": 0, "total": 30}
    assert api.balance("user", world.anna) == {"available": 90, "held": 0, "total": 90}
    assert api.remaining(p["anna_march"]) == 50
    after = state(db, workspace.id)
    replay = api.post(f"/v1/holds/{hold['id']}/reverse", {"reason": "Message never delivered"}, key="hrev-1")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == reversed_
    problem(api.post(f"/v1/holds/{hold['id']}/reverse", {"reason": "x"}, key="hrev-1"), 422,
            "idempotency_key_reused")
    problem(api.post(f"/v1/holds/{hold['id']}/reverse"), 409, "already_reversed")
    assert state(db, workspace.id) == after
    assert_ledger_clean(db, workspace.id)


def test_create_hold_is_idempotent(world, db, workspace):
    api = world.api
    body = hold_body(world, 20)
    first = api.post("/v1/holds", body, key="hold-idem", status=201)
    after = state(db, workspace.id)
    ben = api.balance("user", world.ben)
    again = api.post("/v1/holds", body, key="hold-idem", status=201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    problem(api.post("/v1/holds", {**body, "amount": 21}, key="hold-idem"), 422, "idempotency_key_reused")
    assert state(db, workspace.id) == after
    assert api.balance("user", world.ben) == ben == {"available": 10, "held": 20, "total": 30}

    too_much = api.post("/v1/holds", hold_body(world, 10_000), key="hold-too-much")
    problem(too_much, 409, "insufficient_credits")
    api.pack("office", world.berlin, 20_000, "Huge top-up")
    before = state(db, workspace.id)
    replay = api.post("/v1/holds", hold_body(world, 10_000), key="hold-too-much")
    problem(replay, 409, "insufficient_credits")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == too_much.json()
    assert state(db, workspace.id) == before


@pytest.mark.parametrize("change, status, code", [
    ({"amount": 0}, 422, "validation_error"),
    ({"amount": -3}, 422, "validation_error"),
    ({"timeout_seconds": 0}, 422, "validation_error"),
    ({"credit_type": "minutes"}, 422, "unknown_credit_type"),
    ({"status": "captured"}, 422, "unknown_field"),
    ({"allow_partial": True}, 422, "unknown_field"),
    ({"context": {"kind": "project", "id": "prj_nope"}}, 404, "not_found"),
])
def test_bad_holds_answer_a_stable_code_and_write_nothing(world, db, workspace, change, status, code):
    before = state(db, workspace.id)
    problem(world.api.post("/v1/holds", {**hold_body(world, 10), **change}), status, code)
    assert state(db, workspace.id) == before


def test_unknown_holds_are_404(world, db, workspace):
    api = world.api
    before = state(db, workspace.id)
    for path in ("/v1/holds/hold_nope/capture", "/v1/holds/hold_nope/release", "/v1/holds/hold_nope/reverse"):
        problem(api.post(path), 404, "not_found")
    problem(api.get("/v1/holds/hold_nope", status=None), 404, "not_found")
    assert state(db, workspace.id) == before


def test_holds_need_the_consume_credits_permission(client, world, db, workspace):
    api = world.api
    without, _ = member_api(client, api, permissions=["manage_office_credits"])
    hold = api.created("/v1/holds", hold_body(world, 10))
    before = state(db, workspace.id)
    problem(without.post("/v1/holds", hold_body(world, 10)), 403, "not_permitted")
    problem(without.post(f"/v1/holds/{hold['id']}/capture"), 403, "not_permitted")
    problem(without.post(f"/v1/holds/{hold['id']}/release"), 403, "not_permitted")
    assert state(db, workspace.id) == before
    consumer, _ = member_api(client, api, permissions=["consume_credits"])
    assert consumer.post(f"/v1/holds/{hold['id']}/capture", status=200).json()["status"] == "captured"
    after = state(db, workspace.id)
    problem(consumer.post(f"/v1/holds/{hold['id']}/reverse"), 403, "not_permitted")  # pack managers only
    assert state(db, workspace.id) == after
    assert api.post(f"/v1/holds/{hold['id']}/reverse", status=200).json()["reversed_at"] is not None
