"""The request body read timeout (F18), in-process: the app is called as uvicorn calls it, with a
`receive` that trickles or stalls. On main a stalled body kept the request (and its connection) open
for ever: these tests then hang until their own 5 s guard and fail.
"""

from __future__ import annotations

import asyncio
import json

from creditdesk.api.security import BodyReadTimeout
from creditdesk.parties.models import Customer
from tests.api.helpers import count

GUARD_SECONDS = 5
CHUNKED = {"Transfer-Encoding": "chunked"}


def http_scope(path: str, *, method: str = "POST", headers: dict[str, str] | None = None) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
            "client": ("127.0.0.1", 40000), "server": ("testserver", 80)}


def call(app, scope: dict, chunks: list[bytes], *, gap: float = 0.0, stall: bool = False) -> list[dict]:
    """Run one request: the body arrives in `chunks`, `gap` seconds apart; with `stall` the last
    chunk never comes. Returns what the app sent."""
    sent: list[dict] = []

    async def scenario():
        pending = list(chunks)

        async def receive():
            if not pending or (stall and len(pending) == 1):
                await asyncio.sleep(3600)  # the client sends nothing more
            if gap:
                await asyncio.sleep(gap)
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        async def send(message):
            sent.append(message)

        await asyncio.wait_for(app(scope, receive, send), GUARD_SECONDS)

    asyncio.run(scenario())
    return sent


def status_of(sent: list[dict]) -> int:
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    return start["status"]


def test_a_stalled_body_answers_408_and_changes_nothing(db, workspace, settings_env):
    from creditdesk.api.app import create_app

    settings_env(body_read_timeout_seconds="0.3")
    app = create_app(db=db)
    body = json.dumps({"name": "Slow customer"}).encode()
    scope = http_scope("/v1/customers", headers={
        "Authorization": f"Bearer {workspace.api_key}", "Content-Type": "application/json",
        "Content-Length": str(len(body))})
    before = count(db, Customer, workspace.id)
    sent = call(app, scope, [body[:5], body[5:]], stall=True)
    assert status_of(sent) == 408
    start = sent[0]
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"connection"] == b"close"  # uvicorn closes the connection after this answer
    assert b"content-security-policy" in headers  # hardened like every other answer
    problem = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert problem["code"] == "request_timeout" and problem["status"] == 408
    assert count(db, Customer, workspace.id) == before


def test_the_deadline_covers_the_whole_body_not_each_chunk(db, workspace, settings_env):
    """A byte every 0.1 s never waits long for any one chunk, and still may not hold the request."""
    from creditdesk.api.app import create_app

    settings_env(body_read_timeout_seconds="0.3")
    app = create_app(db=db)
    body = json.dumps({"name": "Trickled customer"}).encode()
    scope = http_scope("/v1/customers", headers={
        "Authorization": f"Bearer {workspace.api_key}", "Content-Type": "application/json",
        "Content-Length": str(len(body))})
    before = count(db, Customer, workspace.id)
    sent = call(app, scope, [bytes([b]) for b in body], gap=0.1)
    assert status_of(sent) == 408
    assert count(db, Customer, workspace.id) == before


def test_a_body_sent_in_time_is_served(db, workspace, settings_env):
    from creditdesk.api.app import create_app

    settings_env(body_read_timeout_seconds="2")
    app = create_app(db=db)
    body = json.dumps({"name": "Prompt customer"}).encode()
    scope = http_scope("/v1/customers", headers={
        "Authorization": f"Bearer {workspace.api_key}", "Content-Type": "application/json",
        "Content-Length": str(len(body))})
    before = count(db, Customer, workspace.id)
    sent = call(app, scope, [body[:10], body[10:]], gap=0.05)
    assert status_of(sent) == 201
    assert count(db, Customer, workspace.id) == before + 1


def test_a_slow_answer_after_the_body_is_not_cut():
    """Only receiving the body is timed: the app may take longer than the timeout to answer."""

    async def slow_app(scope, receive, send):
        message = await receive()
        assert message["type"] == "http.request"
        await asyncio.sleep(0.4)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    sent = call(BodyReadTimeout(slow_app, seconds=0.1), http_scope("/x", headers=CHUNKED), [b"payload"])
    assert status_of(sent) == 200


def test_the_app_is_told_the_client_left_and_its_late_answer_is_dropped():
    seen = []

    async def reading_app(scope, receive, send):
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    sent = call(BodyReadTimeout(reading_app, seconds=0.2), http_scope("/x", headers=CHUNKED), [b"a", b"b"],
                stall=True)
    assert seen == ["http.request", "http.disconnect"]
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [408]
    assert b"late" not in b"".join(m.get("body", b"") for m in sent)


def test_an_app_that_asks_again_after_the_timeout_gets_one_408_only():
    async def insistent_app(scope, receive, send):
        for _ in range(3):
            await receive()

    sent = call(BodyReadTimeout(insistent_app, seconds=0.1), http_scope("/x", headers=CHUNKED), [b"a", b"b"],
                stall=True)
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [408]
    assert b"late" not in b"".join(m.get("body", b"") for m in sent)


def test_zero_turns_the_timeout_off():
    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent = call(BodyReadTimeout(app, seconds=0), http_scope("/x", headers=CHUNKED), [b"a"], gap=0.2)
    assert status_of(sent) == 204


def test_a_request_without_a_body_is_not_timed():
    """No Content-Length or Transfer-Encoding: HTTP/1.1 says there is no body, so no timer is started
    (a GET costs nothing extra), even if its empty body were slow to be handed over."""

    async def app(scope, receive, send):
        message = await receive()
        assert message == {"type": "http.request", "body": b"", "more_body": False}
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent = call(BodyReadTimeout(app, seconds=0.1), http_scope("/x", method="GET"), [b""], gap=0.3)
    assert status_of(sent) == 200
    sent = call(BodyReadTimeout(app, seconds=0.1), http_scope("/x", method="GET", headers={"Content-Length": "0"}),
                [b""], gap=0.3)
    assert status_of(sent) == 200
