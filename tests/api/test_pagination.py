"""Cursor pagination on every list: each row exactly once, in a stable order; bad cursors refused."""

from __future__ import annotations

import base64

import pytest

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
def test_bad_cursor_is_422(client, workspace, resource, cursor):
    r = client.get(f"/v1/{resource}", params={"cursor": cursor}, headers=workspace.headers)
    assert r.status_code == 422, r.text
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
