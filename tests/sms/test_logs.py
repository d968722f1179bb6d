"""Logs (seed 003 "View Last 30 Day Log"): every incoming and outgoing credit movement of the last 30
days, for the accounts the viewer may manage."""

from __future__ import annotations

from datetime import timedelta

import pytest

from creditdesk.errors import NotPermitted
from creditdesk.sms import service as sms
from tests.sms.conftest import RefusingSender


def logs(world, who, account=None, **kw):
    acc = None if account is None else ("workspace" if account == "pool" else world.ids[account])
    with world.db.read() as session:
        return sms.list_logs(session, actor=world.actor(who), account=acc, **kw)


def summary(world, entries) -> list[tuple]:
    names = {v: k for k, v in world.ids.items()} | {world.ws: "pool"}
    return [(names[e.account.id], e.direction, e.movement, e.quantity,
             names.get(e.counterparty.id) if e.counterparty else None) for e in entries]


@pytest.fixture
def history(world, frozen_clock):
    """Day 0: the master buys 100 for the pool and 50 for Ann. Day 10: pool -> Ann 20, Ann sends a
    2-segment message, Ann gives Ben 5, and a send that fails (no movement)."""
    first_purchase = world.buy("master", "workspace", None, 100)
    ann_purchase = world.buy("master", "user", "Ann", 50)
    frozen_clock.advance(days=10)
    world.move("master", "pool", "Ann", 20)
    message = world.send("Ann", "x" * 200)
    world.move("Ann", "Ann", "Ben", 5)
    world.send("Ann", "never sent", sender=RefusingSender())
    return {"clock": frozen_clock, "pool_purchase": first_purchase, "ann_purchase": ann_purchase, "message": message}


def test_every_movement_of_an_account_newest_first(world, history):
    entries = logs(world, "master", "Ann").items
    assert summary(world, entries) == [
        ("Ann", "out", "transfer_out", 5, "Ben"),
        ("Ann", "out", "sent", 2, None),
        ("Ann", "in", "transfer_in", 20, "pool"),
        ("Ann", "in", "purchase", 50, None),
    ]
    sent, purchase = entries[1], entries[3]
    assert (sent.reference_kind, sent.reference_id, sent.actor_id, sent.actor_name) == (
        "sms_message", history["message"].id, world.ids["Ann"], "Ann")
    assert (purchase.reference_kind, purchase.reference_id) == ("sms_purchase", history["ann_purchase"].id)
    assert purchase.at == history["ann_purchase"].paid_at


def test_all_accounts_the_viewer_manages(world, history):
    assert summary(world, logs(world, "master").items) == [
        ("Ben", "in", "transfer_in", 5, "Ann"),
        ("Ann", "out", "transfer_out", 5, "Ben"),
        ("Ann", "out", "sent", 2, None),
        ("Ann", "in", "transfer_in", 20, "pool"),
        ("pool", "out", "transfer_out", 20, "Ann"),
        ("Ann", "in", "purchase", 50, None),
        ("pool", "in", "purchase", 100, None),
    ]
    # An office manager sees her offices' users, never the pool's side.
    assert {e.account.id for e in logs(world, "Mia").items} == {world.ids["Ann"], world.ids["Ben"]}


def test_only_the_last_30_days(world, history):
    clock = history["clock"]
    clock.advance(days=20, seconds=1)  # day 30 + 1 s: the day-0 purchases are out, day 10 is in
    assert [e.movement for e in logs(world, "master", "Ann").items] == ["transfer_out", "sent", "transfer_in"]
    assert logs(world, "master", "pool").items[0].movement == "transfer_out"
    assert len(logs(world, "master", "pool").items) == 1
    clock.advance(days=10)  # day 40 + 1 s
    assert logs(world, "master").items == []


def test_exactly_30_days_is_still_in(world, history):
    history["clock"].advance(days=20)  # day 30 exactly: the day-0 purchase is 30 days old
    assert summary(world, logs(world, "master", "pool").items)[-1] == ("pool", "in", "purchase", 100, None)


def test_logs_only_of_accounts_the_viewer_may_manage(world, history):
    assert [e.movement for e in logs(world, "Ann", "Ben").items] == ["transfer_in"]  # a team member
    with pytest.raises(NotPermitted):
        logs(world, "Ann", "Cat")
    with pytest.raises(NotPermitted):
        logs(world, "Ann", "pool")
    with pytest.raises(NotPermitted):
        logs(world, "Mia", "pool")
    with pytest.raises(NotPermitted):
        logs(world, "Mia", "Cat")
    assert len(logs(world, "Mia", "Ann").items) == 4
    # A member's "all accounts" are themselves and their team members.
    assert {e.account.id for e in logs(world, "Ann").items} == {world.ids["Ann"], world.ids["Ben"]}


def test_pages(world, history):
    first = logs(world, "master", limit=3)
    assert len(first.items) == 3 and first.next_cursor
    second = logs(world, "master", limit=3, cursor=first.next_cursor)
    third = logs(world, "master", limit=3, cursor=second.next_cursor)
    assert third.next_cursor is None
    assert [e.id + e.account.id for e in first.items + second.items + third.items] == [
        e.id + e.account.id for e in logs(world, "master").items]


def test_csv_rows(world, history):
    with world.db.read() as session:
        rows = [sms.log_csv_row(e) for e in sms.iter_logs(session, actor=world.actor("master"),
                                                          account=world.ids["Ann"], batch=2)]
    assert len(rows) == 4 and all(len(r) == len(sms.LOG_CSV_COLUMNS) for r in rows)
    by_column = [dict(zip(sms.LOG_CSV_COLUMNS, r)) for r in rows]
    assert by_column[0] == {
        "date_utc": "2026-01-25T12:00:00Z", "account_kind": "user", "account_id": world.ids["Ann"],
        "account_name": "Ann", "direction": "out", "movement": "transfer_out", "quantity": "5",
        "counterparty_kind": "user", "counterparty_id": world.ids["Ben"], "counterparty_name": "Ben",
        "reference": "Transfer", "memo": "", "reference_kind": "credit_transfer",
        "reference_id": by_column[0]["reference_id"], "actor_id": world.ids["Ann"], "actor_name": "Ann",
        "movement_id": by_column[0]["reference_id"]}
    assert by_column[0]["reference_id"].startswith("xfer_")
    assert by_column[1]["reference"] == "SMS to +61400000001"
    assert by_column[3]["date_utc"] == "2026-01-15T12:00:00Z" and by_column[3]["movement"] == "purchase"
    assert by_column[3]["reference"] == "Receipt SMS-000002"


def test_a_change_of_holder_is_an_out_and_in_pair_at_its_time(world, frozen_clock):
    """F1: a change of holder never rewrites the logs. The seller of the credits keeps their purchase line
    and shows a transfer out at the time of the change; the new holder shows a transfer in at that time,
    never a purchase from before they held the credits. It follows the transfer rules."""
    from creditdesk.credits import schemas as cs
    from creditdesk.credits import transfers
    from creditdesk.errors import InvalidInput

    purchase = world.buy("master", "user", "Ann", 300)
    frozen_clock.advance(days=3)

    def change(who, pack_id, to):
        return world.write(lambda session: transfers.change_holder(session, pack_id, cs.ChangeHolder(
            holder={"kind": "user", "id": world.ids[to]}, reason="Ann left"), actor=world.actor(who)))

    with pytest.raises(InvalidInput) as refused:  # Dan has no send_sms: SMS credits cannot go to him
        change("master", purchase.pack_id, "Dan")
    assert refused.value.code == "recipient_cannot_send_sms"
    moved = change("master", purchase.pack_id, "Ben")
    ann = logs(world, "master", "Ann").items
    assert summary(world, ann) == [("Ann", "out", "transfer_out", 300, "Ben"), ("Ann", "in", "purchase", 300, None)]
    assert ann[1].at == purchase.paid_at and ann[0].at == purchase.paid_at + timedelta(days=3)
    assert (ann[1].pack_id, ann[1].reference_id) == (purchase.pack_id, purchase.id)
    ben = logs(world, "master", "Ben").items
    assert summary(world, ben) == [("Ben", "in", "transfer_in", 300, "Ann")]
    assert (ben[0].at, ben[0].pack_id) == (purchase.paid_at + timedelta(days=3), moved.id)
    assert (world.balance("Ann")["available"], world.balance("Ben")["available"]) == (0, 300)


def test_all_accounts_keep_both_sides_of_a_transfer_that_emptied_an_account(world, history):
    """B8: Ann loses send_sms, a master moves all her credits to Ben. Ann leaves the Manage SMS credits
    box (nothing left, cannot send), but the master's and her office manager's "all accounts" logs still
    show her side of the transfer next to Ben's."""
    world.set_permissions("Ann", [])
    left = world.balance("Ann")["frozen"]
    world.move("master", "Ann", "Ben", left)
    assert "Ann" not in world.accounts("master")
    for viewer in ("master", "Mia"):
        rows = summary(world, logs(world, viewer).items)
        # The move may take several packs (one line each); both sides add up to it (+5 from the history).
        out = sum(r[3] for r in rows if r[:3] == ("Ann", "out", "transfer_out") and r[4] == "Ben")
        got = sum(r[3] for r in rows if r[:3] == ("Ben", "in", "transfer_in") and r[4] == "Ann")
        assert out == got == left + 5, (viewer, rows)
    # Her own log, asked for by name, is still the master's to read.
    assert [e.movement for e in logs(world, "master", "Ann").items][0] == "transfer_out"
