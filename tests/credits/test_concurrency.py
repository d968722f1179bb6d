"""Many threads, each its own transaction (`db.write`), against one holder: never over the balance,
never a lost or doubled credit, and never an OperationalError/IntegrityError where a domain answer is due.
On SQLite, writers queue on the in-process write lock; on PostgreSQL, on the pack accounts' row locks."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from creditdesk.credits import schemas as cs
from creditdesk.credits import consumptions, transfers
from creditdesk.credits.holds import reverse_hold
from creditdesk.credits.packs import void_pack
from creditdesk.credits.errors import (
    AlreadyReversed,
    HoldNotPending,
    InsufficientCredits,
    PackNotActive,
)
from tests.credits.helpers import (
    assert_verified,
    balance,
    capture,
    consume,
    grant,
    hold,
    make_shop,
    release,
    remaining,
    transfer,
)


def race(n: int, fn) -> list:
    """Run fn(i) in n threads released together; each outcome is its result or the exception."""
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def run(i):
        barrier.wait()
        try:
            outcomes[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - every outcome is asserted
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def kinds(outcomes) -> Counter:
    return Counter("ok" if not isinstance(o, Exception) else type(o).__name__ for o in outcomes)


@pytest.fixture
def shop(db):
    return make_shop(db, "Concurrency")


def test_50_parallel_consumptions_of_the_whole_balance(db, shop):
    a = shop.actor
    packs = [grant(db, a, "office", shop.berlin, q) for q in (40, 35, 25)]
    outcomes = race(50, lambda i: consume(db, a, "office", shop.berlin, 100))
    assert kinds(outcomes) == Counter({"ok": 1, "InsufficientCredits": 49}), kinds(outcomes)
    [winner] = [o for o in outcomes if not isinstance(o, Exception)]
    assert sorted(line.amount for line in winner.lines) == [25, 35, 40]
    assert all(o.code == "insufficient_credits" for o in outcomes if isinstance(o, Exception))
    assert [remaining(db, a, p) for p in packs] == [0, 0, 0]
    assert balance(db, a, "office", shop.berlin)["total"] == 0
    assert_verified(db, shop.ws)


def test_8_threads_draining_10_packs_conserve_the_total(db, shop):
    a = shop.actor
    sizes = [13, 27, 8, 41, 19, 33, 5, 22, 30, 12]
    packs = [grant(db, a, "office", shop.berlin, q, priority=i % 3) for i, q in enumerate(sizes)]
    granted = sum(sizes)

    def drain(i):
        rnd = random.Random(i)
        consumed, partial = 0, False
        while True:
            amount = rnd.randint(1, 9)
            try:
                out = consume(db, a, "office", shop.berlin, amount, allow_partial=partial)
            except InsufficientCredits:
                if partial:
                    return consumed  # nothing left at all
                partial = True  # less than `amount` left: take what there is from now on
                continue
            assert out.amount == sum(line.amount for line in out.lines)
            assert out.amount == amount or partial
            consumed += out.amount

    outcomes = race(8, drain)
    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert sum(outcomes) == granted
    assert [remaining(db, a, p) for p in packs] == [0] * 10
    assert_verified(db, shop.ws)


def test_8_threads_taking_part_of_the_balance_conserve_it(db, shop):
    a = shop.actor
    packs = [grant(db, a, "office", shop.berlin, 50) for _ in range(10)]
    outcomes = race(8, lambda i: sum(consume(db, a, "office", shop.berlin, 1 + (i + k) % 7).amount
                                     for k in range(10)))
    assert all(isinstance(o, int) for o in outcomes), outcomes
    assert sum(outcomes) + sum(remaining(db, a, p) for p in packs) == 500
    assert_verified(db, shop.ws)


def test_concurrent_holds_and_consumptions_never_exceed_the_balance(db, shop):
    a = shop.actor
    grant(db, a, "office", shop.berlin, 60)
    grant(db, a, "office", shop.berlin, 40)

    def act(i):
        if i % 2:
            return ("hold", hold(db, a, "office", shop.berlin, 10))
        return ("consume", consume(db, a, "office", shop.berlin, 10))

    outcomes = race(30, act)
    assert kinds(outcomes) == Counter({"ok": 10, "InsufficientCredits": 20}), kinds(outcomes)
    holds = [o[1] for o in outcomes if isinstance(o, tuple) and o[0] == "hold"]
    consumed = [o[1] for o in outcomes if isinstance(o, tuple) and o[0] == "consume"]
    assert balance(db, a, "office", shop.berlin) == {"available": 0, "held": 10 * len(holds),
                                                     "total": 10 * len(holds), "frozen": 0}

    # Now release, capture and consume at once: whatever a release frees, a consumption may take.
    def settle(i):
        if i < len(holds):
            h = holds[i]
            return capture(db, a, h.id, 4) if i % 2 else release(db, a, h.id)
        return consume(db, a, "office", shop.berlin, 3)

    settled = race(len(holds) + 10, settle)
    assert all(not isinstance(o, Exception) or isinstance(o, InsufficientCredits) for o in settled), settled
    captured = sum(o.captured_amount for o in settled[:len(holds)])
    spent_after = sum(o.amount for o in settled[len(holds):] if not isinstance(o, Exception))
    left = balance(db, a, "office", shop.berlin)
    assert left["held"] == 0
    assert 10 * len(consumed) + captured + spent_after + left["available"] == 100
    assert_verified(db, shop.ws)


def test_capture_and_release_of_one_hold_race(db, shop):
    a = shop.actor
    grant(db, a, "office", shop.berlin, 100)
    h = hold(db, a, "office", shop.berlin, 50)
    outcomes = race(10, lambda i: capture(db, a, h.id, 20) if i % 2 else release(db, a, h.id))
    assert kinds(outcomes) == Counter({"ok": 1, "HoldNotPending": 9}), kinds(outcomes)
    [winner] = [o for o in outcomes if not isinstance(o, Exception)]
    expected = 80 if winner.status == "captured" else 100
    assert balance(db, a, "office", shop.berlin) == {"available": expected, "held": 0, "total": expected,
                                                     "frozen": 0}
    assert_verified(db, shop.ws)


def test_reversing_one_consumption_twice_at_once(db, shop):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100)
    c = consume(db, a, "office", shop.berlin, 70)
    outcomes = race(8, lambda i: db.write(lambda s: consumptions.reverse_consumption(s, c.id, actor=a).id))
    assert kinds(outcomes) == Counter({"ok": 1, "AlreadyReversed": 7}), kinds(outcomes)
    assert remaining(db, a, p) == 100
    h = hold(db, a, "office", shop.berlin, 40)
    capture(db, a, h.id)
    outcomes = race(8, lambda i: db.write(lambda s: reverse_hold(s, h.id, actor=a).id))
    assert kinds(outcomes) == Counter({"ok": 1, "AlreadyReversed": 7}), kinds(outcomes)
    assert remaining(db, a, p) == 100
    assert all(isinstance(o, AlreadyReversed) for o in outcomes if isinstance(o, Exception))
    assert_verified(db, shop.ws)


def test_void_change_holder_and_transfer_against_consumptions(db, shop):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100)

    def act(i):
        if i == 0:
            return db.write(lambda s: void_pack(s, p, cs.VoidPack(reason="race"), actor=a).status)
        if i == 1:
            return transfer(db, a, ("office", shop.paris), 15, from_pack_id=p).amount
        return consume(db, a, "office", shop.berlin, 5).amount

    outcomes = race(12, act)
    allowed = (InsufficientCredits, PackNotActive)
    assert all(not isinstance(o, Exception) or isinstance(o, allowed) for o in outcomes), outcomes
    assert outcomes[0] == "voided"
    spent = sum(o for o in outcomes[2:] if isinstance(o, int))
    moved = outcomes[1] if isinstance(outcomes[1], int) else 0
    assert remaining(db, a, p) == 0
    from tests.credits.test_service import sink

    assert sink(db, shop.ws, "breakage") == 100 - spent - moved
    assert balance(db, a, "office", shop.paris)["available"] == moved

    q = grant(db, a, "user", shop.anna, 100)

    def move(i):
        if i == 0:
            return db.write(lambda s: transfers.change_holder(s, q, cs.ChangeHolder(
                holder={"kind": "user", "id": shop.clara}), actor=a).holder_id)
        who = shop.anna if i % 2 else shop.clara
        return (who, consume(db, a, "user", who, 5).amount)

    outcomes = race(12, move)
    assert all(not isinstance(o, Exception) or isinstance(o, InsufficientCredits) for o in outcomes), outcomes
    assert outcomes[0] == shop.clara  # the change of holder made Clara a new pack of what was left
    spent = sum(o[1] for o in outcomes[1:] if isinstance(o, tuple))
    assert remaining(db, a, q) == 0
    assert balance(db, a, "user", shop.anna)["available"] == 0
    assert balance(db, a, "user", shop.clara)["available"] == 100 - spent
    assert_verified(db, shop.ws)


def test_two_releases_of_timed_out_holds_at_once(db, shop, frozen_clock):
    from creditdesk.jobs import runner

    a = shop.actor
    grant(db, a, "office", shop.berlin, 100)
    for _ in range(6):
        hold(db, a, "office", shop.berlin, 10, timeout_seconds=30)
    frozen_clock.advance(seconds=31)

    def act(i):
        if i < 3:
            return runner.release_timed_out_holds(db, workspace_id=shop.ws, batch_size=2)
        return consume(db, a, "office", shop.berlin, 20).amount

    outcomes = race(6, act)
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert balance(db, a, "office", shop.berlin) == {"available": 40, "held": 0, "total": 40, "frozen": 0}
    assert_verified(db, shop.ws)


def test_hold_not_pending_is_the_answer_after_a_timeout_release(db, shop, frozen_clock):
    a = shop.actor
    grant(db, a, "office", shop.berlin, 10)
    h = hold(db, a, "office", shop.berlin, 10, timeout_seconds=5)
    frozen_clock.advance(seconds=6)
    consume(db, a, "office", shop.berlin, 10)  # releases the hold on the way
    with pytest.raises(HoldNotPending):
        release(db, a, h.id)
