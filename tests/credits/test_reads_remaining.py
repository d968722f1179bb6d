"""The pack list filtered or sorted by remaining credits gives the pages the one-query keyset pagination
gave, whichever way it is planned: the remaining index for few packs of a range or a value, the packs
walked in page order for many (reads.SELECTIVE_ACCOUNTS decides; forced both ways here)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from creditdesk.credits import reads
from creditdesk.credits.models import Pack
from creditdesk.ledger.models import LedgerAccount
from tests.credits.helpers import consume, grant, hold, make_shop

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shop(db):
    """Packs with many ties in remaining: unused packs of a few sizes, some partly consumed or held, one
    depleted, several expiries (some shared) and none."""
    shop = make_shop(db, name="Remaining")
    rng = random.Random(7)
    holders = [("office", shop.berlin), ("office", shop.paris), ("user", shop.clara)]
    for i in range(36):
        kind, holder_id = holders[i % 3]
        expires = None if i % 5 == 0 else T0 + timedelta(days=400 + rng.choice([1, 1, 1, 2, 3, 9]))
        grant(db, shop.actor, kind, holder_id, rng.choice([5, 5, 5, 10, 10, 12, 40]), expires_at=expires)
    consume(db, shop.actor, "office", shop.berlin, 17)
    consume(db, shop.actor, "user", shop.clara, 9)
    hold(db, shop.actor, "office", shop.paris, 6)
    rows = everything(db, shop)
    assert {"active", "depleted"} <= {status for _, status, _, _ in rows}
    return shop


def everything(db, shop) -> list[tuple[Pack, LedgerAccount]]:
    with db.read() as s:
        rows = s.execute(select(Pack, LedgerAccount).join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
                         .where(Pack.workspace_id == shop.ws)).all()
        return [(p.id, p.status, p.expires_at, a.available) for p, a in rows]


def walk(db, shop, limit: int, **kw) -> list[tuple[str, int]]:
    out, cursor, pages = [], None, 0
    while True:
        with db.read() as s:
            page = reads.list_packs(s, actor=shop.actor, limit=limit, cursor=cursor, **kw)
            out += [(p.id, a.available) for p, a in page.items]
        pages += 1
        assert len(page.items) <= limit and pages < 200
        if page.next_cursor is None:
            assert len(page.items) <= limit
            return out
        assert len(page.items) == limit
        cursor = page.next_cursor


@pytest.fixture(params=["index", "walk"])
def plan(request, monkeypatch):
    monkeypatch.setattr(reads, "SELECTIVE_ACCOUNTS", 10**9 if request.param == "index" else 1)
    return request.param


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("limit", [1, 3, 7, 50])
@pytest.mark.parametrize("filters", [{}, {"status": ["active"]}, {"remaining_min": 5, "remaining_max": 12},
                                     {"remaining_max": 5}, {"holder_kind": "office", "status": ["active"]}])
def test_sort_by_remaining_pages_in_remaining_then_id_order(db, shop, plan, descending, limit, filters):
    rows = everything(db, shop)
    expected = [(pid, avail) for pid, status, _, avail in rows
                if (not filters.get("status") or status in filters["status"])
                and avail >= filters.get("remaining_min", -10**18) and avail <= filters.get("remaining_max", 10**18)]
    if filters.get("holder_kind"):
        with db.read() as s:
            offices = set(s.scalars(select(Pack.id).where(Pack.workspace_id == shop.ws, Pack.holder_kind == "office")))
        expected = [e for e in expected if e[0] in offices]
    expected.sort(key=lambda e: (e[1], e[0]), reverse=descending)
    assert len({a for _, a in expected}) < len(expected)  # ties, or this tests nothing
    assert walk(db, shop, limit, sort="remaining", descending=descending, **filters) == expected


@pytest.mark.parametrize("bounds", [{"remaining_max": 5}, {"remaining_min": 10}, {"remaining_min": 6, "remaining_max": 10},
                                    {"remaining_min": 1000}, {"remaining_max": 0}])
@pytest.mark.parametrize("sort", ["expires_at", "created"])
def test_remaining_filter_keeps_exactly_the_packs_in_range(db, shop, plan, bounds, sort):
    rows = everything(db, shop)
    inside = {pid for pid, status, _, avail in rows if status == "active"
              and bounds.get("remaining_min", -10**18) <= avail <= bounds.get("remaining_max", 10**18)}
    got = walk(db, shop, 4, status=["active"], sort=sort, **bounds)
    assert {pid for pid, _ in got} == inside and len(got) == len(inside)
    assert all(bounds.get("remaining_min", -10**18) <= avail <= bounds.get("remaining_max", 10**18)
               for _, avail in got)
    if sort == "created":
        assert [pid for pid, _ in got] == sorted(inside)
    else:
        by_id = {pid: exp for pid, _, exp, _ in rows}
        keys = [(by_id[pid] is None, by_id[pid] or T0, pid) for pid, _ in got]
        assert keys == sorted(keys)


def test_a_cursor_not_made_by_the_remaining_sort_is_answered_as_before(db, shop):
    from creditdesk.pagination import InvalidCursor, _encode

    with db.read() as s:
        # A NULL remaining never matches (the old keyset condition: remaining IS NULL and id after).
        page = reads.list_packs(s, actor=shop.actor, limit=5, sort="remaining", cursor=_encode(None, "pack_zzz"))
        assert page.items == [] and page.next_cursor is None
        # A value that is not an integer is refused (issue 10 item 13), never handed to the database.
        with pytest.raises(InvalidCursor):
            reads.list_packs(s, actor=shop.actor, limit=5, sort="remaining", descending=True,
                             cursor=_encode(10.5, "pack_zzz"))
