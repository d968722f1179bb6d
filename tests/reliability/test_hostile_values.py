"""Values the schemas let through but the database cannot hold, and unknown query parameters:
refused as bad input (422), never a 500 and never silently ignored.

Found by schemathesis on PostgreSQL (NUL in any text) and by hand from there (integers past 64 bits,
dates that leave years 1..9999 once moved to UTC). Over HTTP against the live server, on both backends.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from creditdesk.ledger.models import LedgerTransfer
from tests.api.helpers import counts
from tests.conftest import make_workspace

HUGE = "100000000000000000000000"
EARLY = "0001-01-01T00:00:00+14:00"
LATE = "9999-12-31T23:59:59-14:00"

# (method, path, body or query, expected code)
CASES = [
    ("GET", "/v1/customers/cus_%00x", None, "invalid_characters"),
    ("GET", "/v1/packs", {"holder_id": "a\x00b"}, "invalid_characters"),
    ("GET", "/v1/packs", {"q": "\x00"}, "invalid_characters"),
    ("GET", "/v1/consumptions", {"reference_id": "x\x00"}, "invalid_characters"),
    ("POST", "/v1/customers", {"name": "a\x00b"}, "invalid_characters"),
    ("POST", "/v1/consumptions", {"context": {"kind": "office", "id": "off_\x00"}, "credit_type": "unit",
                                  "amount": 1}, "invalid_characters"),
    ("POST", "/v1/packs", {"holder": {"kind": "workspace"}, "credit_type": "unit", "quantity": 1, "name": "x",
                           "product_codes": ["ok", "n\x00"]}, "invalid_characters"),
    ("PATCH", "/v1/workspace", {"name": "\x00"}, "invalid_characters"),
    ("GET", "/v1/packs", {"remaining_min": HUGE}, "value_out_of_range"),
    ("GET", "/v1/packs", {"remaining_max": HUGE}, "value_out_of_range"),
    ("GET", "/v1/packs", {"expires_from": EARLY}, "value_out_of_range"),
    ("GET", "/v1/packs", {"expires_to": LATE}, "value_out_of_range"),
    ("GET", "/v1/audit-events", {"since": EARLY}, "value_out_of_range"),
    ("GET", "/v1/audit-events", {"until": LATE}, "value_out_of_range"),
    ("POST", "/v1/packs", {"holder": {"kind": "workspace"}, "credit_type": "unit", "quantity": 1, "name": "x",
                           "expires_at": LATE}, "value_out_of_range"),
    # A misspelt filter must not silently widen a list (found by schemathesis: unknown parameters were ignored).
    ("GET", "/v1/packs", {"holdr_id": "off_x"}, "unknown_query_parameter"),
    ("GET", "/v1/consumptions", {"reference": "x"}, "unknown_query_parameter"),
]


@pytest.fixture(scope="module")
def hostile_ws(db, live_server):
    ws = make_workspace(db, name="Hostile values")
    r = httpx.post(live_server.base_url + "/v1/credit-types", json={"code": "unit", "name": "Units"},
                   headers=ws.headers, timeout=30)
    assert r.status_code == 201, r.text
    return ws


@pytest.mark.parametrize("method,path,payload,code", CASES,
                         ids=[f"{m} {p} {sorted(b)[0] if b else ''}" for m, p, b, _ in CASES])
def test_unstorable_values_are_refused_as_bad_input(db, live_server, hostile_ws, method, path, payload, code):
    ws = hostile_ws
    before = counts(db, ws.id)
    with db.read() as session:
        transfers = session.scalar(select(func.count()).select_from(LedgerTransfer)
                                   .where(LedgerTransfer.workspace_id == ws.id))
    kwargs = {"params": payload} if method == "GET" else {"json": payload}
    r = httpx.request(method, live_server.base_url + path, headers=ws.headers, timeout=30, **kwargs)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code
    assert counts(db, ws.id) == before
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(LedgerTransfer)
                              .where(LedgerTransfer.workspace_id == ws.id)) == transfers


def test_a_backslash_u_text_is_not_a_nul(db, live_server, hostile_ws):
    # The JSON text "a\\u0000b" is six ordinary characters: kept, not refused.
    r = httpx.post(live_server.base_url + "/v1/customers", content=b'{"name": "a\\\\u0000b"}',
                   headers={**hostile_ws.headers, "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "a\\u0000b"


def test_expiry_months_past_year_9999_is_refused(live_server, hostile_ws):
    r = httpx.post(live_server.base_url + "/v1/packs", headers=hostile_ws.headers, timeout=30,
                   json={"holder": {"kind": "workspace"}, "credit_type": "unit", "quantity": 1, "name": "x",
                         "purchased_at": "9999-12-31T23:00:00Z", "expiry_months": 12})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "expiry_out_of_range"


@pytest.mark.parametrize("depth", [900, 5000, 100_000])
@pytest.mark.parametrize("path", ["/login", "/v1/packs", "/v1/sms/purchases", "/v1/customers", "/does-not-exist"])
def test_nul_inside_deep_json_is_400_not_500(db, live_server, hostile_ws, path, depth):
    # Issue 10 item 14 (F15): the recursive NUL walk raised RecursionError at about 900 levels, before
    # authentication, on every path. Refused as malformed JSON (too deep), with or without a key.
    body = ('{"a":' + "[" * depth + '"\\u0000"' + "]" * depth + "}").encode()
    before = counts(db, hostile_ws.id)
    for headers in ({"Content-Type": "application/json"},
                    {**hostile_ws.headers, "Content-Type": "application/json", "Idempotency-Key": f"deep-{depth}"}):
        r = httpx.post(live_server.base_url + path, content=body, headers=headers, timeout=30)
        assert r.status_code == 400, r.text[:300]
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "malformed_json"
    assert counts(db, hostile_ws.id) == before
    assert httpx.get(live_server.base_url + "/healthz", timeout=30).status_code == 200
