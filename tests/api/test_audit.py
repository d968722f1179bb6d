"""The audit log: one row per write, with who, what, when, before and after; filters; all-or-nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from creditdesk import audit
from creditdesk.errors import Conflict
from creditdesk.parties import service as parties_service

from tests.api.helpers import audit_rows, auth, counts
from tests.parties.factories import make_api_key, make_user, master_actor


def first_key_id(client, workspace) -> str:
    keys = client.get("/v1/api-keys", headers=workspace.headers).json()["data"]
    return next(k["id"] for k in keys if k["name"] == "First key")


def only_new_row(db, workspace, before_rows, *, action, object_id):
    rows = audit_rows(db, workspace.id)
    new = [r for r in rows if r.id not in {b.id for b in before_rows}]
    assert len(new) == 1, [(r.action, r.object_id) for r in new]
    row = new[0]
    assert row.action == action
    assert row.object_id == object_id
    return row


def test_every_write_writes_exactly_one_audit_row(client, db, workspace):
    h = workspace.headers
    key_id = first_key_id(client, workspace)
    seen = []

    def write(method, path, body, *, action, object_type, created=False):
        before_rows = audit_rows(db, workspace.id)
        r = client.request(method, path, json=body, headers=h)
        assert r.status_code in (200, 201), r.text
        out = r.json()
        row = only_new_row(db, workspace, before_rows, action=action, object_id=out["id"])
        assert row.object_type == object_type
        assert row.actor_kind == "api_key"
        assert row.actor_id == workspace.master_id
        assert row.api_key_id == key_id
        assert row.created_at is not None
        if created:
            assert row.before is None
        else:
            assert row.before is not None and row.before["id"] == out["id"]
        assert row.after["id"] == out["id"]
        seen.append(action)
        return out, row

    customer, _ = write("POST", "/v1/customers", {"name": "Acme"}, action="customer.create",
                        object_type="customer", created=True)
    _, row = write("PATCH", f"/v1/customers/{customer['id']}", {"name": "Acme Ltd"}, action="customer.update",
                   object_type="customer")
    assert (row.before["name"], row.after["name"]) == ("Acme", "Acme Ltd")

    office, row = write("POST", "/v1/offices", {"name": "London", "customer_id": customer["id"]},
                        action="office.create", object_type="office", created=True)
    assert row.after["customer_id"] == customer["id"]
    _, row = write("PATCH", f"/v1/offices/{office['id']}", {"email": "london@example.com"},
                   action="office.update", object_type="office")
    assert (row.before["email"], row.after["email"]) == (None, "london@example.com")

    user, row = write("POST", "/v1/users", {"name": "Ann", "email": "ann@example.com", "is_staff": True,
                                            "password": "long enough password", "primary_office_id": office["id"],
                                            "additional_office_ids": [office["id"]]},
                      action="user.create", object_type="user", created=True)
    assert "password_hash" not in row.after and "password" not in row.after
    assert row.after["additional_office_ids"] == [office["id"]]
    _, row = write("PATCH", f"/v1/users/{user['id']}", {"role": "manager", "permissions": ["send_sms"]},
                   action="user.update", object_type="user")
    assert (row.before["role"], row.after["role"]) == ("member", "manager")
    assert (row.before["permissions"], row.after["permissions"]) == ([], ["send_sms"])

    team, row = write("POST", "/v1/teams", {"name": "Delivery", "member_ids": [user["id"]]},
                      action="team.create", object_type="team", created=True)
    assert row.after["member_ids"] == [user["id"]]
    _, row = write("PATCH", f"/v1/teams/{team['id']}", {"member_ids": []}, action="team.update",
                   object_type="team")
    assert (row.before["member_ids"], row.after["member_ids"]) == ([user["id"]], [])

    key, row = write("POST", "/v1/api-keys", {"name": "CI", "user_id": user["id"]}, action="api_key.create",
                     object_type="api_key", created=True)
    assert "key_hash" not in row.after and "key" not in row.after
    assert key["key"] not in str(row.after)
    _, row = write("PATCH", f"/v1/api-keys/{key['id']}", {"name": "CI runner"}, action="api_key.update",
                   object_type="api_key")
    _, row = write("DELETE", f"/v1/api-keys/{key['id']}", None, action="api_key.revoke", object_type="api_key")
    assert row.before["revoked_at"] is None and row.after["revoked_at"] is not None

    _, row = write("PATCH", "/v1/workspace", {"name": "Renamed"}, action="workspace.update",
                   object_type="workspace")
    assert (row.before["name"], row.after["name"]) == ("Test workspace", "Renamed")

    assert len(seen) == 12


def test_workspace_creation_is_audited(db, workspace):
    actions = [r.action for r in audit_rows(db, workspace.id)]
    assert actions == ["workspace.create", "user.create", "api_key.create"]
    for row in audit_rows(db, workspace.id):
        assert row.actor_kind == "system"
        assert row.actor_id == workspace.master_id


def test_revoking_a_revoked_key_writes_nothing_more(client, db, workspace):
    key = client.post("/v1/api-keys", json={"name": "x"}, headers=workspace.headers).json()
    assert client.delete(f"/v1/api-keys/{key['id']}", headers=workspace.headers).status_code == 200
    before = audit_rows(db, workspace.id)
    assert client.delete(f"/v1/api-keys/{key['id']}", headers=workspace.headers).status_code == 200
    assert [r.id for r in audit_rows(db, workspace.id)] == [r.id for r in before]


def test_the_actor_is_the_user_behind_the_key(client, db, workspace):
    actor = master_actor(db, workspace.id)
    manager = make_user(db, actor=actor, name="Manager", role="manager")
    secret = make_api_key(db, actor=actor, user_id=manager)
    r = client.post("/v1/customers", json={"name": "By manager"}, headers=auth(secret))
    assert r.status_code == 201
    [row] = audit_rows(db, workspace.id, object_id=r.json()["id"])
    assert row.actor_id == manager
    assert row.actor_kind == "api_key"
    assert row.api_key_id is not None and row.api_key_id != first_key_id(client, workspace)


def test_failed_writes_write_no_audit_row(client, db, workspace):
    h = workspace.headers
    # Refused by a rule before anything was written.
    r = client.post("/v1/users", json={"name": "Dup", "email": "dup@example.com", "is_staff": True}, headers=h)
    assert r.status_code == 201
    before = counts(db, workspace.id)
    r = client.post("/v1/users", json={"name": "Dup", "email": "DUP@example.com", "is_staff": True}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "email_taken"
    # Refused half-way: the team row was already flushed when the member turned out not to exist.
    r = client.post("/v1/teams", json={"name": "Half", "member_ids": ["usr_doesnotexist"]}, headers=h)
    assert r.status_code == 404
    assert counts(db, workspace.id) == before
    assert not [row for row in audit_rows(db, workspace.id) if row.after and row.after.get("name") == "Half"]


def test_an_error_after_the_audit_row_rolls_everything_back(client, db, workspace, monkeypatch):
    """All-or-nothing: the audit row and the change it records commit together or not at all."""
    real_record = audit.record

    def record_then_fail(session, **kwargs):
        real_record(session, **kwargs)
        session.flush()  # the row really reached the database inside the transaction
        raise Conflict("Simulated failure after the audit row was written.", code="simulated")

    monkeypatch.setattr(parties_service.audit, "record", record_then_fail)
    before = counts(db, workspace.id)
    r = client.post("/v1/customers", json={"name": "Ghost"}, headers={**workspace.headers, "Idempotency-Key": "g"})
    assert r.status_code == 409 and r.json()["code"] == "simulated"
    assert client.get("/v1/customers", headers=workspace.headers).json()["data"] == []
    assert counts(db, workspace.id) == before
    monkeypatch.undo()
    # The refusal replays; no customer appears later either.
    r = client.post("/v1/customers", json={"name": "Ghost"}, headers={**workspace.headers, "Idempotency-Key": "g"})
    assert r.status_code == 409 and r.headers["Idempotent-Replayed"] == "true"
    assert counts(db, workspace.id) == before


@pytest.fixture
def history(frozen_clock, client, db, workspace):
    """A few writes at known times, by two actors."""
    h = workspace.headers
    actor = master_actor(db, workspace.id)
    manager = make_user(db, actor=actor, name="Manager", role="manager")
    manager_headers = auth(make_api_key(db, actor=actor, user_id=manager))
    # After everything the fixtures wrote with the real clock, so those rows stay out of the windows.
    frozen_clock.set(datetime.now(UTC) + timedelta(days=1))
    start = frozen_clock.now()
    ids = {}
    ids["c1"] = client.post("/v1/customers", json={"name": "One"}, headers=h).json()["id"]
    frozen_clock.advance(hours=1)
    ids["c2"] = client.post("/v1/customers", json={"name": "Two"}, headers=manager_headers).json()["id"]
    frozen_clock.advance(hours=1)
    client.patch(f"/v1/customers/{ids['c1']}", json={"notes": "n"}, headers=h)
    frozen_clock.advance(hours=1)
    ids["o1"] = client.post("/v1/offices", json={"name": "Off"}, headers=manager_headers).json()["id"]
    return {"start": start, "manager": manager, **ids}


def events(client, workspace, **params):
    r = client.get("/v1/audit-events", params=params, headers=workspace.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_filter_by_action(client, workspace, history):
    rows = events(client, workspace, action="customer.create")
    assert [e["object_id"] for e in rows] == [history["c2"], history["c1"]]  # newest first
    assert all(e["object"] == "audit_event" for e in rows)
    assert events(client, workspace, action="no.such.action") == []


def test_filter_by_object(client, workspace, history):
    rows = events(client, workspace, object_id=history["c1"])
    assert [e["action"] for e in rows] == ["customer.update", "customer.create"]
    assert rows[0]["before"]["notes"] == "" and rows[0]["after"]["notes"] == "n"
    rows = events(client, workspace, object_type="office")
    assert [e["object_id"] for e in rows] == [history["o1"]]


def test_filter_by_actor(client, workspace, history):
    rows = events(client, workspace, actor_id=history["manager"])
    assert {e["object_id"] for e in rows} == {history["c2"], history["o1"]}
    assert all(e["actor_id"] == history["manager"] for e in rows)


def test_filter_by_time(client, workspace, history):
    start = history["start"]
    rows = events(client, workspace, since=(start + timedelta(minutes=30)).isoformat(),
                  until=(start + timedelta(hours=2, minutes=30)).isoformat())
    assert [(e["action"], e["object_id"]) for e in rows] == [("customer.update", history["c1"]),
                                                           ("customer.create", history["c2"])]
    rows = events(client, workspace, since=(start + timedelta(hours=3)).isoformat())
    assert [e["object_id"] for e in rows] == [history["o1"]]
    # `until` is exclusive, `since` inclusive.
    rows = events(client, workspace, since=start.isoformat(), until=(start + timedelta(hours=1)).isoformat(),
                  action="customer.create")
    assert [e["object_id"] for e in rows] == [history["c1"]]


def test_filters_combine(client, workspace, history):
    rows = events(client, workspace, actor_id=history["manager"], action="customer.create")
    assert [e["object_id"] for e in rows] == [history["c2"]]


def test_cursor_pagination_walks_every_event_once(client, workspace, history):
    everything = events(client, workspace, limit=500)
    assert len(everything) >= 8
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/audit-events", params=params, headers=workspace.headers).json()
        assert len(page["data"]) <= 3
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in everything]
    assert len(set(seen)) == len(seen)


def test_audit_log_has_no_write_endpoints(client, db, workspace, history):
    event_id = events(client, workspace)[0]["id"]
    before = counts(db, workspace.id)
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        path = "/v1/audit-events" if method == "POST" else f"/v1/audit-events/{event_id}"
        r = client.request(method, path, json={}, headers=workspace.headers)
        assert r.status_code in (404, 405)
    assert counts(db, workspace.id) == before


def test_members_may_not_read_the_activity_log(client, db, workspace):
    from tests.parties.factories import make_api_key, make_user, master_actor

    actor = master_actor(db, workspace.id)
    member = make_user(db, actor=actor, name="Plain Member", role="member", password="member-password-1")
    key = make_api_key(db, actor=actor, user_id=member)
    r = client.get("/v1/audit-events", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403
    assert r.json()["code"] == "not_permitted"
    assert client.get("/v1/audit-events", headers=workspace.headers).status_code == 200


def test_managers_see_no_names_or_prefixes_of_other_users_api_keys(client, db, workspace):
    """The log follows GET /v1/api-keys: a manager reads every user's changes, but other users' keys only
    by id (F19 of the 2026-12-02 probe)."""
    actor = master_actor(db, workspace.id)
    manager = make_user(db, actor=actor, name="Manager", role="manager")
    manager_headers = auth(make_api_key(db, actor=actor, user_id=manager))
    secret_name = "Payroll export (project Falcon)"
    master_key = client.post("/v1/api-keys", json={"name": secret_name}, headers=workspace.headers).json()
    client.patch(f"/v1/api-keys/{master_key['id']}", json={"name": secret_name + " v2"}, headers=workspace.headers)
    client.delete(f"/v1/api-keys/{master_key['id']}", headers=workspace.headers)
    own = client.post("/v1/api-keys", json={"name": "Manager laptop"}, headers=manager_headers).json()
    listed = client.get("/v1/api-keys", headers=manager_headers).json()["data"]
    assert master_key["id"] not in {k["id"] for k in listed}

    r = client.get("/v1/audit-events", params={"object_type": "api_key", "limit": 100}, headers=manager_headers)
    assert r.status_code == 200, r.text
    rows = r.json()["data"]
    first_key = first_key_id(client, workspace)
    hidden = [e for e in rows if e["object_id"] in (master_key["id"], first_key)]
    assert sorted(e["action"] for e in hidden) == ["api_key.create", "api_key.create", "api_key.revoke",
                                                   "api_key.update"]
    for event in hidden:  # the key is named by its id only
        for side in ("before", "after"):
            if event[side] is not None:
                assert (event[side]["name"], event[side]["prefix"]) == (None, None)
                assert event[side]["id"] == event["object_id"]
    assert "Falcon" not in r.text and master_key["prefix"] not in r.text and "First key" not in r.text
    # The manager's own keys (made by himself or for him) show as GET /v1/api-keys shows them.
    mine = {e["object_id"]: e["after"]["name"] for e in rows if e["action"] == "api_key.create"
            and e["object_id"] not in (master_key["id"], first_key)}
    assert mine == {own["id"]: "Manager laptop", next(k["id"] for k in listed if k["id"] != own["id"]): "test"}
    # A master sees every key, as in GET /v1/api-keys; and nothing was rewritten in the log itself.
    seen = events(client, workspace, object_id=master_key["id"])
    assert {e["after"]["name"] for e in seen} == {secret_name, secret_name + " v2"}
    assert {r.after["name"] for r in audit_rows(db, workspace.id, object_id=master_key["id"])} == {
        secret_name, secret_name + " v2"}
