"""An API key's last_used_at is kept (F19 of the 2026-12-02 probe: it was never updated), at most once a
minute per key, so that authenticating does not add a write to every request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from creditdesk import clock
from creditdesk.parties import key_usage
from tests.api.helpers import auth
from tests.parties.factories import make_api_key, master_actor


@pytest.fixture
def key_updates(db):
    """The UPDATEs of api_keys this process sends, whatever the thread."""
    seen = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            seen.append(statement)
    event.listen(db.engine, "before_cursor_execute", listen)
    yield seen
    event.remove(db.engine, "before_cursor_execute", listen)


def key_of(client, headers) -> dict:
    return client.get("/v1/api-keys", headers=headers).json()["data"][0]


def test_last_used_at_is_written_on_use_then_at_most_once_a_minute(client, db, workspace, frozen_clock,
                                                                    key_updates):
    secret = make_api_key(db, actor=master_actor(db, workspace.id), user_id=workspace.master_id)
    key_id = next(k["id"] for k in client.get("/v1/api-keys", headers=workspace.headers).json()["data"]
                  if k["name"] == "test")
    headers = auth(secret)

    def last_used() -> str | None:
        return client.get(f"/v1/api-keys/{key_id}", headers=workspace.headers).json()["last_used_at"]

    assert last_used() is None  # made, never used
    first = clock.now()
    key_updates.clear()
    assert client.get("/v1/offices", headers=headers).status_code == 200
    assert last_used() is not None and last_used().startswith(first.strftime("%Y-%m-%dT%H:%M:%S"))
    writes = len(key_updates)
    assert writes >= 1
    for _ in range(5):  # reads and writes alike, within the minute: no write for the key
        frozen_clock.advance(seconds=10)
        assert client.get("/v1/customers", headers=headers).status_code == 200
    assert client.post("/v1/customers", json={"name": "Acme"}, headers=headers).status_code == 201
    assert len(key_updates) == writes
    assert last_used().startswith(first.strftime("%Y-%m-%dT%H:%M:%S"))
    frozen_clock.advance(seconds=11)  # 61 s after the first use
    client.get("/v1/offices", headers=headers)
    later = clock.now()
    assert later - first >= timedelta(seconds=60)
    assert last_used().startswith(later.strftime("%Y-%m-%dT%H:%M:%S"))


def test_no_write_per_request_for_a_busy_key(client, db, workspace, frozen_clock, key_updates):
    headers = workspace.headers
    client.get("/v1/offices", headers=headers)  # the first use of the minute
    key_updates.clear()
    for _ in range(20):
        assert client.get("/v1/offices", headers=headers).status_code == 200
    assert key_updates == []


def test_another_process_writing_it_recently_is_respected(client, db, workspace, frozen_clock):
    headers = workspace.headers
    client.get("/v1/offices", headers=headers)
    before = key_of(client, headers)["last_used_at"]
    key_usage._written.clear()  # as if another worker (without this process's memory) serves the next one
    frozen_clock.advance(seconds=30)
    client.get("/v1/offices", headers=headers)
    assert key_of(client, headers)["last_used_at"] == before  # the UPDATE itself skipped it


def test_a_failed_write_of_last_used_at_does_not_fail_the_request(client, workspace, frozen_clock, monkeypatch):
    def broken(session, key_id, now):
        raise RuntimeError("database is locked")
    monkeypatch.setattr(key_usage, "_write_last_used", broken)
    frozen_clock.advance(hours=1)
    assert client.get("/v1/offices", headers=workspace.headers).status_code == 200
