"""Idempotency-Key on writes: replay, conflicting reuse, in-flight duplicates, scope (per workspace and per
caller), refusals of the caller never stored, retention and purge."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from creditdesk import idempotency
from creditdesk.config import get_settings
from creditdesk.errors import Conflict
from creditdesk.parties.models import Customer

from tests.api.credits_world import build_world, member_api, state
from tests.api.helpers import audit_rows, count, counts
from tests.parties.factories import make_api_key, make_user, master_actor


def post_customer(client, workspace, body: bytes, key: str | None):
    headers = {**workspace.headers, "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/v1/customers", content=body, headers=headers)


def test_same_key_and_body_replays_the_first_answer(client, db, workspace):
    body = b'{"name": "Acme", "notes": "first"}'
    first = post_customer(client, workspace, body, "create-acme")
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers

    second = post_customer(client, workspace, body, "create-acme")
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["content-type"].startswith("application/json")
    assert second.json() == first.json()
    assert second.content == first.content

    assert count(db, Customer, workspace.id) == 1
    assert len(audit_rows(db, workspace.id, action="customer.create")) == 1


def test_without_a_key_every_request_runs(client, db, workspace):
    body = b'{"name": "Acme"}'
    a = post_customer(client, workspace, body, None)
    b = post_customer(client, workspace, body, None)
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert count(db, Customer, workspace.id) == 2


def test_same_key_with_another_body_is_refused_and_changes_nothing(client, db, workspace):
    first = post_customer(client, workspace, b'{"name": "Acme"}', "k-1")
    assert first.status_code == 201
    before = counts(db, workspace.id)

    other = post_customer(client, workspace, b'{"name": "Globex"}', "k-1")
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    problem = other.json()
    assert problem["code"] == "idempotency_key_reused"
    assert problem["status"] == 422
    assert "Idempotent-Replayed" not in other.headers

    assert counts(db, workspace.id) == before
    names = [c["name"] for c in client.get("/v1/customers", headers=workspace.headers).json()["data"]]
    assert names == ["Acme"]


def test_same_key_on_another_endpoint_is_refused(client, db, workspace):
    assert post_customer(client, workspace, b'{"name": "Acme"}', "k-2").status_code == 201
    before = counts(db, workspace.id)
    r = client.post("/v1/offices", json={"name": "Acme"}, headers={**workspace.headers, "Idempotency-Key": "k-2"})
    assert r.status_code == 422
    assert r.json()["code"] == "idempotency_key_reused"
    assert counts(db, workspace.id) == before


def test_whitespace_and_key_order_do_not_make_another_request(client, db, workspace):
    first = post_customer(client, workspace, b'{"name":"Acme","notes":"n","email":"a@example.com"}', "k-3")
    assert first.status_code == 201
    second = post_customer(client, workspace,
                           b'{\n  "email" : "a@example.com",\n  "notes": "n",\n\t"name":   "Acme"\n}\n', "k-3")
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert count(db, Customer, workspace.id) == 1


def test_duplicate_while_the_first_is_in_flight_answers_409(client, db, workspace):
    body = b'{"name": "Acme"}'
    # The first request has claimed the key and is still running (deterministically: we hold the claim).
    claim = idempotency.claim(db, workspace_id=workspace.id, caller=workspace.master_id, key="k-flight",
                              fingerprint=idempotency.request_fingerprint("POST", "/v1/customers", body),
                              method="POST", path="/v1/customers")
    assert isinstance(claim, idempotency.Claim)
    before = counts(db, workspace.id)

    r = post_customer(client, workspace, body, "k-flight")
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_request_in_progress"
    assert counts(db, workspace.id) == before

    # With another body the key is refused as reused, not queued.
    r = post_customer(client, workspace, b'{"name": "Other"}', "k-flight")
    assert r.status_code == 422
    assert r.json()["code"] == "idempotency_key_reused"

    # Once the first finishes, the duplicate replays its answer.
    db.write(lambda s: idempotency.complete(s, claim, status=201, body='{"id":"cus_first"}'))
    r = post_customer(client, workspace, body, "k-flight")
    assert r.status_code == 201
    assert r.json() == {"id": "cus_first"}
    assert r.headers["Idempotent-Replayed"] == "true"
    assert counts(db, workspace.id) == before


def test_a_claim_whose_request_died_is_taken_over_after_its_lock(client, db, workspace, frozen_clock):
    body = b'{"name": "Acme"}'
    claim = idempotency.claim(db, workspace_id=workspace.id, caller=workspace.master_id, key="k-dead",
                              fingerprint=idempotency.request_fingerprint("POST", "/v1/customers", body),
                              method="POST", path="/v1/customers")
    assert post_customer(client, workspace, body, "k-dead").status_code == 409

    frozen_clock.advance(seconds=get_settings().idempotency_lock_seconds + 1)
    r = post_customer(client, workspace, body, "k-dead")
    assert r.status_code == 201, r.text
    assert count(db, Customer, workspace.id) == 1
    # The original request, had it been alive after all, can no longer store its answer.
    with pytest.raises(Conflict) as info:
        db.write(lambda s: idempotency.complete(s, claim, status=201, body="{}"))
    assert info.value.code == "idempotency_key_taken_over"
    # And the key replays the request that did run.
    replay = post_customer(client, workspace, body, "k-dead")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == r.json()["id"]


def test_keys_are_per_workspace(client, db, workspace, other_workspace):
    body = b'{"name": "Acme"}'
    a = post_customer(client, workspace, body, "shared-key")
    b = post_customer(client, other_workspace, body, "shared-key")
    assert a.status_code == b.status_code == 201
    assert "Idempotent-Replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert count(db, Customer, workspace.id) == 1
    assert count(db, Customer, other_workspace.id) == 1


def test_a_refused_request_replays_its_error(client, db, workspace):
    headers = {**workspace.headers, "Idempotency-Key": "k-404"}
    first = client.patch("/v1/customers/cus_doesnotexist", json={"name": "X"}, headers=headers)
    assert first.status_code == 404
    assert first.json()["code"] == "not_found"
    second = client.patch("/v1/customers/cus_doesnotexist", json={"name": "X"}, headers=headers)
    assert second.status_code == 404
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json() == first.json()
    assert audit_rows(db, workspace.id, action="customer.update") == []


def member_headers(db, workspace, key: str, *, role: str = "member") -> dict:
    """An API key of a new user of the workspace (a member may not create customers), with a key."""
    actor = master_actor(db, workspace.id)
    member = make_user(db, actor=actor, name="Mia Member", role=role)
    return {"Authorization": f"Bearer {make_api_key(db, actor=actor, user_id=member)}", "Idempotency-Key": key}


def test_a_forbidden_request_is_not_stored_under_its_key(client, db, workspace):
    # (This test asserted the opposite before: a 403 was stored and replayed. See the next one for why not.)
    headers = member_headers(db, workspace, "k-403")
    before = counts(db, workspace.id)
    for _ in range(2):
        r = client.post("/v1/customers", json={"name": "Acme"}, headers=headers)
        assert r.status_code == 403
        assert r.json()["code"] == "not_permitted"
        assert "Idempotent-Replayed" not in r.headers
    assert counts(db, workspace.id) == before
    with db.read() as session:
        assert session.scalars(select(idempotency.IdempotencyKey.key).where(
            idempotency.IdempotencyKey.workspace_id == workspace.id)).all() == []


def test_another_caller_cannot_replay_a_stored_answer(client, db, workspace):
    """F5: a member without permission resending the master's key and body runs as herself (403), and
    does not get the master's 201."""
    body = b'{"name": "Acme", "notes": "master only"}'
    first = post_customer(client, workspace, body, "shared-k")
    assert first.status_code == 201
    r = client.post("/v1/customers", content=body,
                    headers={**member_headers(db, workspace, "shared-k"), "Content-Type": "application/json"})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "not_permitted"
    assert "Idempotent-Replayed" not in r.headers
    assert first.json()["id"] not in r.text
    assert count(db, Customer, workspace.id) == 1


def test_a_refusal_of_another_caller_does_not_poison_the_key(client, db, workspace):
    """F5: a member's refused request under a key must not make the master's later request replay 403."""
    body = b'{"name": "Acme"}'
    refused = client.post("/v1/customers", content=body,
                          headers={**member_headers(db, workspace, "integration-key"),
                                   "Content-Type": "application/json"})
    assert refused.status_code == 403
    mine = post_customer(client, workspace, body, "integration-key")
    assert mine.status_code == 201, mine.text
    assert "Idempotent-Replayed" not in mine.headers
    assert count(db, Customer, workspace.id) == 1
    # And the master's own retry still replays her answer.
    again = post_customer(client, workspace, body, "integration-key")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == mine.json()["id"]


def test_a_permitted_caller_with_the_same_key_runs_its_own_request(client, db, workspace):
    """Two users may pick the same key: each gets their own answer, and each one's retry replays it."""
    body = b'{"name": "Acme"}'
    master = post_customer(client, workspace, body, "k-both")
    other = {**member_headers(db, workspace, "k-both", role="manager"), "Content-Type": "application/json"}
    theirs = client.post("/v1/customers", content=body, headers=other)
    assert master.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["id"] != master.json()["id"]
    replay = client.post("/v1/customers", content=body, headers=other)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == theirs.json()["id"]


def test_the_same_user_replays_across_their_api_keys(client, db, workspace):
    """Keys are per user (not per API key): a retry sent with a rotated key still replays."""
    body = b'{"name": "Acme"}'
    first = post_customer(client, workspace, body, "k-rotate")
    actor = master_actor(db, workspace.id)
    rotated = make_api_key(db, actor=actor, user_id=workspace.master_id)
    r = client.post("/v1/customers", content=body, headers={"Authorization": f"Bearer {rotated}",
                                                            "Idempotency-Key": "k-rotate",
                                                            "Content-Type": "application/json"})
    assert r.status_code == 201
    assert r.headers["Idempotent-Replayed"] == "true"
    assert r.json()["id"] == first.json()["id"]
    assert count(db, Customer, workspace.id) == 1


def test_keys_are_kept_at_least_24_hours_then_expire(client, db, workspace, frozen_clock):
    body = b'{"name": "Acme"}'
    first = post_customer(client, workspace, body, "k-retention")
    assert first.status_code == 201

    frozen_clock.advance(hours=23)
    r = post_customer(client, workspace, body, "k-retention")
    assert r.headers.get("Idempotent-Replayed") == "true"
    assert r.json()["id"] == first.json()["id"]

    frozen_clock.advance(hours=1, minutes=1)  # just past 24 h: the promise still holds
    r = post_customer(client, workspace, body, "k-retention")
    assert r.headers.get("Idempotent-Replayed") == "true"
    assert count(db, Customer, workspace.id) == 1

    retention = get_settings().idempotency_retention_hours
    assert retention >= 24
    frozen_clock.advance(hours=retention)  # well past retention: the key is forgotten
    r = post_customer(client, workspace, body, "k-retention")
    assert r.status_code == 201
    assert "Idempotent-Replayed" not in r.headers
    assert r.json()["id"] != first.json()["id"]
    assert count(db, Customer, workspace.id) == 2


def test_purge_expired_forgets_only_expired_keys(db, workspace, frozen_clock):
    retention = get_settings().idempotency_retention_hours
    for key in ("old", "new"):
        claim = idempotency.claim(db, workspace_id=workspace.id, caller=workspace.master_id, key=key,
                                  fingerprint="f" * 64,
                                  method="POST", path="/v1/customers")
        db.write(lambda s, c=claim: idempotency.complete(s, c, status=201, body="{}"))
        if key == "old":
            frozen_clock.advance(hours=retention - 1)
    frozen_clock.advance(hours=2)  # "old" is now past retention, "new" is not
    assert db.write(lambda s: idempotency.purge_expired(s)) >= 1
    with db.read() as session:
        kept = session.scalars(select(idempotency.IdempotencyKey.key)
                               .where(idempotency.IdempotencyKey.workspace_id == workspace.id)).all()
    assert kept == ["new"]
    outcome = idempotency.claim(db, workspace_id=workspace.id, caller=workspace.master_id, key="new",
                                fingerprint="f" * 64,
                                method="POST", path="/v1/customers")
    assert isinstance(outcome, idempotency.Replay)


def test_an_invalid_key_is_refused(client, db, workspace):
    before = counts(db, workspace.id)
    r = client.post("/v1/customers", json={"name": "Acme"},
                    headers={**workspace.headers, "Idempotency-Key": "x" * 256})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_idempotency_key"
    assert counts(db, workspace.id) == before


def test_replay_works_for_patch_and_delete(client, db, workspace):
    created = client.post("/v1/api-keys", json={"name": "ci"}, headers=workspace.headers).json()
    headers = {**workspace.headers, "Idempotency-Key": "k-revoke"}
    first = client.delete(f"/v1/api-keys/{created['id']}", headers=headers)
    assert first.status_code == 200
    assert first.json()["revoked_at"] is not None
    second = client.delete(f"/v1/api-keys/{created['id']}", headers=headers)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert len(audit_rows(db, workspace.id, action="api_key.revoke")) == 1

    cid = client.post("/v1/customers", json={"name": "A"}, headers=workspace.headers).json()["id"]
    headers = {**workspace.headers, "Idempotency-Key": "k-patch"}
    one = client.patch(f"/v1/customers/{cid}", json={"notes": "x"}, headers=headers)
    two = client.patch(f"/v1/customers/{cid}", json={"notes": "x"}, headers=headers)
    assert one.status_code == two.status_code == 200
    assert two.headers["Idempotent-Replayed"] == "true"
    assert len(audit_rows(db, workspace.id, action="customer.update", object_id=cid)) == 1


def test_a_request_whose_key_was_taken_over_answers_409_not_500(client, db, workspace, monkeypatch):
    """If a retry took the key over while this request ran, nothing of this request is kept."""
    def taken_over(session, claim_, *, status, body):
        raise Conflict("taken over", code="idempotency_key_taken_over")

    monkeypatch.setattr(idempotency, "complete", taken_over)
    before = counts(db, workspace.id)
    r = post_customer(client, workspace, b'{"name": "Acme"}', "k-taken")
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_key_taken_over"
    assert counts(db, workspace.id) == before


def test_a_new_api_keys_secret_is_never_stored_for_replays(client, db, workspace):
    headers = {**workspace.headers, "Idempotency-Key": "k-newkey"}
    first = client.post("/v1/api-keys", json={"name": "deploy"}, headers=headers)
    assert first.status_code == 201
    secret = first.json()["key"]
    assert secret.startswith("cdk_")
    with db.read() as session:
        stored = session.scalars(select(idempotency.IdempotencyKey.response_body).where(
            idempotency.IdempotencyKey.workspace_id == workspace.id)).all()
    assert stored and not any(secret in body for body in stored)

    replay = client.post("/v1/api-keys", json={"name": "deploy"}, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["key"] is None
    assert replay.json()["id"] == first.json()["id"]
    assert secret not in replay.text


def test_the_probes_transfer_replay_and_void_poisoning(client, db, workspace, frozen_clock):
    """F5 as the probe ran it on credits: a member with consume_credits only resends the master's transfer
    under the master's key (was: 201 replayed, the master's transfer), then voids under a key the master's
    integration uses (was: the master's void answered a replayed 403 and the pack stayed active)."""
    world = build_world(client, workspace.headers)
    body = {"from": {"kind": "office", "id": world.berlin}, "to": {"kind": "office", "id": world.paris},
            "credit_type": "credits", "amount": 5}
    assert world.api.post("/v1/transfers", body, key="A-xfer-1").status_code == 201
    carol, _ = member_api(client, world.api, permissions=["consume_credits"])
    before = state(db, workspace.id)
    replay = carol.post("/v1/transfers", body, key="A-xfer-1")
    assert replay.status_code == 403 and "Idempotent-Replayed" not in replay.headers
    assert state(db, workspace.id) == before

    pack = world.packs["paris"]
    assert carol.post(f"/v1/packs/{pack}/void", {"reason": "month-end"}, key="void-globex-2026-12").status_code == 403
    voided = world.api.post(f"/v1/packs/{pack}/void", {"reason": "month-end"}, key="void-globex-2026-12")
    assert voided.status_code == 200, voided.text
    assert "Idempotent-Replayed" not in voided.headers
    assert voided.json()["status"] == "voided"
