"""Cursor pagination on every list: each row exactly once, in a stable order; bad cursors refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from creditdesk import pagination
from creditdesk.pagination import Page, paginate

LISTS = ["customers", "offices", "users", "teams", "api-keys", "audit-events"]


def fill(client, workspace, n: int = 5) -> None:
    h = workspace.headers
    for i in range(n):
        assert client.post("/v1/customers", json={"name": f"Customer {i}"}, headers=h).status_code == 201
        assert client.post("/v1/offices", json={"name": f"Office {i}"}, headers=h).status_code == 201
        r = client.post("/v1/users", json={"name": f"User {i}", "email": f"user{i}@example.com", "is_staff": True},
                        headers=h)
        assert r.status_code == 201
        assert client.post("/v1/teams", json={"name": f"Team {i}"}, headers=h).status_code == 201
        assert client.post("/v1/api-keys", json={"name": f"Key {i}"}, headers=h).status_code == 201


def walk(client, workspace, resource: str, limit: int, **params) -> list[str]:
    ids, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        r = client.get(f"/v1/{resource}", params=query, headers=workspace.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["object"] == "list"
        assert len(page["data"]) <= limit
        ids += [row["id"] for row in page["data"]]
        pages += 1
        assert pages < 1000
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
        assert page["data"], "a page with a next cursor is never empty"


@pytest.mark.parametrize("resource", LISTS)
@pytest.mark.parametrize("limit", [1, 3, 500])
def test_limit_and_cursor_walk_every_row_exactly_once(client, workspace, resource, limit):
    fill(client, workspace)
    everything = client.get(f"/v1/{resource}", params={"limit": 500}, headers=workspace.headers).json()
    assert everything["next_cursor"] is None
    all_ids = [row["id"] for row in everything["data"]]
    assert len(all_ids) >= 5

    walked = walk(client, workspace, resource, limit)
    assert walked == all_ids
    assert len(set(walked)) == len(walked)
    expected = sorted(all_ids, reverse=resource == "audit-events")  # audit log: newest first
    assert walked == expected


@pytest.mark.parametrize("resource", LISTS)
def test_default_page_size(client, workspace, resource):
    r = client.get(f"/v1/{resource}", headers=workspace.headers)
    assert r.status_code == 200
    assert len(r.json()["data"]) <= 50


def test_default_page_is_50_and_continues(client, db, workspace):
    from tests.parties.factories import make_customer, master_actor

    actor = master_actor(db, workspace.id)
    for i in range(53):
        make_customer(db, actor=actor, name=f"C{i}")
    first = client.get("/v1/customers", headers=workspace.headers).json()
    assert len(first["data"]) == 50 and first["next_cursor"]
    rest = client.get("/v1/customers", params={"cursor": first["next_cursor"]}, headers=workspace.headers).json()
    assert len(rest["data"]) == 3 and rest["next_cursor"] is None


def test_rows_added_between_pages_do_not_shift_the_walk(client, workspace):
    h = workspace.headers
    for i in range(4):
        client.post("/v1/customers", json={"name": f"C{i}"}, headers=h)
    page1 = client.get("/v1/customers", params={"limit": 2}, headers=h).json()
    late = client.post("/v1/customers", json={"name": "Late"}, headers=h).json()["id"]
    page2 = client.get("/v1/customers", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=h).json()
    page3 = client.get("/v1/customers", params={"limit": 2, "cursor": page2["next_cursor"]}, headers=h).json()
    ids = [c["id"] for p in (page1, page2, page3) for c in p["data"]]
    assert len(ids) == len(set(ids)) == 5
    assert ids[-1] == late  # ids sort by creation time: the new row comes last, nothing is repeated


def test_pagination_combines_with_filters(client, workspace):
    h = workspace.headers
    for i in range(5):
        client.post("/v1/customers", json={"name": f"Alpha {i}"}, headers=h)
        client.post("/v1/customers", json={"name": f"Beta {i}"}, headers=h)
    walked = walk(client, workspace, "customers", 2, q="alpha")
    alphas = client.get("/v1/customers", params={"q": "alpha", "limit": 500}, headers=h).json()["data"]
    assert [c["id"] for c in alphas] == walked
    assert len(walked) == 5 and all(c["name"].startswith("Alpha") for c in alphas)


BAD_CURSORS = [
    "not-a-cursor",
    "!!!!",
    base64.urlsafe_b64encode(b"[1]").decode(),
    base64.urlsafe_b64encode(b'[null, 5]').decode(),
    base64.urlsafe_b64encode(b'{"a": 1}').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    base64.urlsafe_b64encode(b'[{"dt": "yesterday"}, "cus_x"]').decode(),
]


@pytest.mark.parametrize("resource", LISTS)
@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_bad_cursor_is_400(client, workspace, resource, cursor):
    r = client.get(f"/v1/{resource}", params={"cursor": cursor}, headers=workspace.headers)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "invalid_cursor"


def test_paginate_on_another_sort_column_walks_every_row_once(db, workspace, frozen_clock):
    """The keyset logic for a non-id sort column (used by later lists), NULLs included."""
    from sqlalchemy import select

    from creditdesk.parties.models import Customer
    from tests.parties.factories import make_customer, master_actor

    actor = master_actor(db, workspace.id)
    ids = []
    for name in ["b", "a", "c", "a", "b", "d"]:
        ids.append(make_customer(db, actor=actor, name=name))
    # external_ref keeps some NULLs; set the others through the service.
    from creditdesk.parties import schemas as ps
    from creditdesk.parties import service as parties

    refs = ["x", None, "x", None, "y", "a"]
    for cid, ref in zip(ids, refs):
        if ref is not None:
            db.write(lambda s, c=cid, r=ref: parties.update_customer(s, c, ps.CustomerUpdate(external_ref=r),
                                                                      actor=actor))
    for descending in (False, True):
        for column in (Customer.name, Customer.external_ref):
            walked, cursor = [], None
            with db.read() as session:
                stmt = select(Customer).where(Customer.workspace_id == workspace.id)
                while True:
                    page: Page = paginate(session, stmt, id_column=Customer.id, limit=2, cursor=cursor,
                                          sort_column=column, descending=descending)
                    walked += [(getattr(c, column.key), c.id) for c in page.items]
                    cursor = page.next_cursor
                    if cursor is None:
                        break
            non_null = sorted([w for w in walked if w[0] is not None], reverse=descending)
            nulls = sorted([w for w in walked if w[0] is None], reverse=descending)
            expected = non_null + nulls  # NULLs last either way
            assert walked == expected, (column.key, descending)
            assert len(walked) == len(ids)


# --- signed cursors (issue 10 item 13, finding F14) -----------------------------------------------------
# Forged or mistyped but well-formed cursors reached the SQL comparison: lists, bools and naive datetimes
# made the driver fail (500) on /v1/packs (5 of 6 sorts) and /v1/sms/logs. Cursors are now signed and their
# value is checked against the sort column: anything else is 400 invalid_cursor, never a 5xx.

PACK_SORTS = ["created", "expires_at", "name", "remaining", "quantity", "priority"]

# Every JSON type, nested values, and the datetime shape the encoder uses (naive, aware, malformed).
FUZZ_VALUES = [None, True, False, 0, 1, -1, 2**63, 1.5, "x", "", [], {}, [[1]], {"a": [{"b": {}}]},
               {"dt": "2020-01-01T00:00:00"}, {"dt": "2020-01-01T00:00:00+00:00"}, {"dt": 1}, {"dt": "soon"},
               {"dt": "2020-01-01T00:00:00+00:00", "extra": 1}]


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _signed(obj, *, key: bytes | None = None) -> str:
    """A cursor holding `obj`, signed as the server signs (or with another key): well-formed and authentic,
    so only the type checks stand between its value and the database."""
    payload = _b64(obj)
    if key is None:
        tag = pagination._tag(payload.encode())
    else:
        tag = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16]
    return f"{payload}.{base64.urlsafe_b64encode(tag).decode().rstrip('=')}"


def _aware_time_or_scalar(value) -> bool:
    if isinstance(value, dict):
        return set(value) == {"dt"} and value["dt"] == "2020-01-01T00:00:00+00:00"
    return value is None or isinstance(value, str) or (type(value) is int and abs(value) < 2**63)


def fuzz_cursors():
    """(cursor, whether it must be refused whatever the sort)."""
    for value in FUZZ_VALUES:
        yield _b64([value, "pack_x"]), True  # the old unsigned format: forged
        yield _b64(value), True
        yield _signed([value, 5]), True  # the id is not a string
        yield _signed(value), True  # not a [value, id] pair
        yield _signed([value, "pack_x"], key=b"another key" * 3), True
        yield _signed([value, "pack_x"]), not _aware_time_or_scalar(value)


def list_endpoints(client) -> list[str]:
    doc = client.get("/openapi.json").json()
    # Lists under an object's path (a price plan's prices) need that object: their own tests fuzz their cursors.
    return sorted(path for path, ops in doc["paths"].items() if "{" not in path
                  and any(p["name"] == "cursor" for p in ops.get("get", {}).get("parameters", ())))


@pytest.fixture
def sms_workspace(db, workspace):
    """The workspace with an SMS credit type: without one /v1/sms/logs answers before reading the cursor."""
    from creditdesk.sms import service as sms

    db.write(lambda session: sms.sms_credit_type(session, workspace.id))
    return workspace


def _fuzz(client, headers, path: str, params: dict) -> list[str]:
    failures = []
    for cursor, refused in fuzz_cursors():
        r = client.get(path, params={**params, "cursor": cursor}, headers=headers)
        problem = r.json() if r.headers["content-type"].startswith("application/problem+json") else {}
        if r.status_code >= 500 or (refused and (r.status_code, problem.get("code")) != (400, "invalid_cursor")):
            failures.append(f"{path} {params} {base64.urlsafe_b64decode(cursor.split('.')[0] + '==')!r}: "
                            f"{r.status_code} {r.text[:200]}")
        elif r.status_code not in (200, 400):
            failures.append(f"{path} {params}: unexpected {r.status_code}")
    return failures


def test_no_list_endpoint_answers_5xx_to_any_cursor(client, sms_workspace):
    paths = list_endpoints(client)
    assert {"/v1/packs", "/v1/sms/logs", "/v1/customers", "/v1/audit-events", "/v1/consumptions"} <= set(paths)
    failures = []
    for path in paths:
        if "{account_id}" in path:  # a list of one account (its statement): fuzzed on a real account
            path = path.replace("{account_id}", _an_account(client, sms_workspace.headers))
        failures += _fuzz(client, sms_workspace.headers, path, {})
    assert not failures, "\n".join(failures[:30])


def _an_account(client, headers) -> str:
    client.patch("/v1/billing/settings", json={"default_currency": "AUD"}, headers=headers)
    customer = client.post("/v1/customers", json={"name": "Fuzzed"}, headers=headers).json()["id"]
    return client.post("/v1/accounts", json={"customer_id": customer, "name": "Fuzzed"}, headers=headers).json()["id"]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", PACK_SORTS)
def test_no_pack_sort_answers_5xx_to_any_cursor(client, workspace, sort, order):
    h = workspace.headers
    assert client.post("/v1/credit-types", json={"code": "unit", "name": "Units"}, headers=h).status_code == 201
    body = {"holder": {"kind": "workspace"}, "credit_type": "unit", "quantity": 5, "name": "P"}
    assert client.post("/v1/packs", json=body, headers=h).status_code == 201
    failures = _fuzz(client, h, "/v1/packs", {"sort": sort, "order": order})
    assert not failures, "\n".join(failures[:30])


def test_every_pack_sort_walks_with_signed_cursors_and_refuses_another_sorts_cursor(client, workspace):
    h = workspace.headers
    assert client.post("/v1/credit-types", json={"code": "unit", "name": "Units"}, headers=h).status_code == 201
    for i, (qty, expires) in enumerate([(5, None), (7, "2030-01-01T00:00:00Z"), (5, "2029-01-01T00:00:00Z"),
                                        (9, None), (1, "2031-06-01T00:00:00Z")]):
        body = {"holder": {"kind": "workspace"}, "credit_type": "unit", "quantity": qty, "name": f"P{i % 3}",
                "priority": 10 * (i % 2)}
        if expires:
            body["expires_at"] = expires
        assert client.post("/v1/packs", json=body, headers=h).status_code == 201, body
    first_cursor = {}
    for sort in PACK_SORTS:
        for order in ("asc", "desc"):
            everything = client.get("/v1/packs", params={"sort": sort, "order": order, "limit": 500},
                                    headers=h).json()["data"]
            walked, cursor = [], None
            while True:
                r = client.get("/v1/packs", params={"sort": sort, "order": order, "limit": 2,
                                                     **({"cursor": cursor} if cursor else {})}, headers=h)
                assert r.status_code == 200, r.text
                walked += [p["id"] for p in r.json()["data"]]
                cursor = r.json()["next_cursor"]
                if not cursor:
                    break
                if order == "asc":  # the first page's cursor holds a value (NULLs sort last)
                    first_cursor.setdefault(sort, cursor)
            assert walked == [p["id"] for p in everything], (sort, order)
    # An authentic cursor of another sort carries a value of another type: refused, not sent to SQL.
    for mine, other in [("name", "expires_at"), ("name", "quantity"), ("expires_at", "priority"),
                        ("remaining", "name"), ("expires_at", "remaining")]:
        r = client.get("/v1/packs", params={"sort": other, "cursor": first_cursor[mine]}, headers=h)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor"), (mine, other, r.text)
    # A cursor changed by one character is refused.
    good = first_cursor["name"]
    tampered = good[:3] + ("A" if good[3] != "A" else "B") + good[4:]
    r = client.get("/v1/packs", params={"sort": "name", "cursor": tampered}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")


def test_invalid_cursor_is_documented_as_400(client):
    doc = client.get("/openapi.json").json()
    for path in list_endpoints(client):
        assert "400" in doc["paths"][path]["get"]["responses"], path
