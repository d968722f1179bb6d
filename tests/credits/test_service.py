"""Credits services directly: burn order, consume, holds, reverse, transfer, change holder, void,
expiry, eligibility, bad input, pack lists and history. Time moves with the frozen clock only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from typer.testing import CliRunner

from creditdesk.audit import AuditEvent
from creditdesk.cli import app
from creditdesk.credits import reads
from creditdesk.credits import schemas as cs
from creditdesk.credits import consumptions, credit_types, holds, projects, transfers
from creditdesk.credits.packs import update_pack, void_pack
from creditdesk.credits.errors import (
    AlreadyReversed,
    CreditsFrozen,
    HoldExpired,
    HoldNotPending,
    InsufficientCredits,
    InvalidCredits,
    NothingToMove,
    NothingToReverse,
    PackNotActive,
)
from creditdesk.credits.models import Consumption, CreditType, Hold, Pack
from creditdesk.errors import NotFound, NotPermitted
from creditdesk.jobs import runner
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerAccount, LedgerTransfer
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from tests.credits.helpers import (
    assert_verified,
    balance,
    capture,
    consume,
    grant,
    history,
    hold,
    lines,
    make_shop,
    pack,
    release,
    remaining,
    transfer,
)
from tests.parties.factories import actor_of, make_office, make_user

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(db, frozen_clock):
    return make_shop(db)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def sink(db, ws: str, kind: str, code: str = "credits") -> int:
    """What a workspace sink (issuance, consumed, breakage) received net, from its transfers."""
    with db.read() as s:
        ct = s.scalar(select(CreditType).where(CreditType.workspace_id == ws, CreditType.code == code))
        account_id = getattr(ct, f"{kind}_account_id")
        dp, cp, _, _ = ledger.recomputed_totals(s, account_ids=[account_id]).get(account_id, (0, 0, 0, 0))
    return cp - dp


def row_counts(db, ws: str) -> tuple[int, ...]:
    with db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(m).where(m.workspace_id == ws))
                     for m in (Pack, LedgerAccount, LedgerTransfer, Consumption, Hold))


def set_user(db, shop, user_id: str, **changes):
    db.write(lambda s: parties.update_user(s, user_id, ps.UserUpdate(**changes), actor=shop.actor))


def run_jobs(db, ws: str | None = None) -> dict:
    return {"holds": runner.release_timed_out_holds(db, workspace_id=ws),
            "packs": runner.expire_due_packs(db, workspace_id=ws)}


# --- burn order ----------------------------------------------------------------------------------

def test_burn_order_priority_expiry_free_before_paid_oldest(db, shop, frozen_clock):
    a = shop.actor
    packs = {}
    # Granted in a shuffled order, a minute apart (created_at decides only the last tie).
    for name, kw in [
        ("never", {}),
        ("june_paid_new", {"expires_at": at(2026, 6, 30), "price_paid": 500, "currency": "EUR"}),
        ("june_free", {"expires_at": at(2026, 6, 30)}),
        ("vip", {"priority": 10}),
        ("march", {"expires_at": at(2026, 3, 31)}),
        ("late_vip", {"priority": 200, "expires_at": at(2026, 2, 1)}),
    ]:
        packs[name] = grant(db, a, "office", shop.berlin, 10, name=name, **kw)
        frozen_clock.advance(minutes=1)
    # An older paid pack with the same priority and expiry as june_paid_new.
    packs["june_paid_old"] = grant(db, a, "office", shop.berlin, 10, name="june_paid_old",
                                   expires_at=at(2026, 6, 30), price_paid=500, currency="EUR",
                                   purchased_at=at(2025, 1, 1))
    expected = ["vip", "march", "june_free", "june_paid_new", "june_paid_old", "never", "late_vip"]
    # Oldest = created first (june_paid_new was created before june_paid_old, whatever the purchase date).
    with db.read() as s:
        elig = reads.eligibility(s, actor=a, context_kind="office", context_id=shop.berlin, credit_type="credits",
                                 product_code=None)
    assert [e.pack.name for e in elig.eligible] == expected
    assert [e.burn_rank for e in elig.eligible] == list(range(1, 8))
    assert elig.available == 70
    out = consume(db, a, "office", shop.berlin, 65)
    assert lines(out) == [(packs[n], 10) for n in expected[:6]] + [(packs["late_vip"], 5)]
    assert_verified(db, shop.ws)


def test_customer_and_project_contexts_burn_their_holders_packs(db, shop):
    a = shop.actor
    office_pack = grant(db, a, "office", shop.berlin, 10, name="office")
    anna_pack = grant(db, a, "user", shop.anna, 10, name="anna", priority=1)
    paris_pack = grant(db, a, "office", shop.paris, 10, name="paris")
    clara_pack = grant(db, a, "user", shop.clara, 10, name="clara")
    customer_pack = grant(db, a, "customer", shop.customer, 10, name="customer", priority=0)
    project = db.write(lambda s: projects.create_project(s, cs.ProjectCreate(
        name="Site", office_id=shop.berlin, contact_ids=[shop.anna]), actor=a).id)
    out = consume(db, a, "project", project, 20, reference=cs.ReferenceIn(kind="project", id=project))
    assert lines(out) == [(anna_pack, 10), (office_pack, 10)]
    with pytest.raises(InsufficientCredits):
        consume(db, a, "project", project, 1)
    # A customer context pays from the customer's own packs and its offices' (not its users').
    out = consume(db, a, "customer", shop.customer, 20)
    assert lines(out) == [(customer_pack, 10), (paris_pack, 10)]
    assert remaining(db, a, clara_pack) == 10
    # A user consumes only their own packs.
    with pytest.raises(InsufficientCredits):
        consume(db, a, "user", shop.anna, 1)
    assert lines(consume(db, a, "user", shop.clara, 3)) == [(clara_pack, 3)]


def test_workspace_pool(db, shop):
    a = shop.actor
    pool = grant(db, a, "workspace", None, 40)
    assert balance(db, a, "workspace", None)["available"] == 40
    assert lines(consume(db, a, "workspace", None, 15)) == [(pool, 15)]
    moved = transfer(db, a, ("user", shop.anna), 5, source=("workspace", None))
    assert moved.amount == 5
    assert balance(db, a, "workspace", None)["available"] == 20
    assert balance(db, a, "user", shop.anna)["available"] == 5


# --- all-or-nothing, partial, products, start dates -----------------------------------------------

def test_all_or_nothing_by_default_and_partial_on_request(db, shop):
    a = shop.actor
    p1 = grant(db, a, "office", shop.berlin, 20, priority=1)
    p2 = grant(db, a, "office", shop.berlin, 10, priority=2)
    before = row_counts(db, shop.ws)
    with pytest.raises(InsufficientCredits) as err:
        consume(db, a, "office", shop.berlin, 31)
    assert err.value.code == "insufficient_credits"
    assert err.value.details == {"available": 30, "requested": 31}
    assert row_counts(db, shop.ws) == before  # nothing half written
    out = consume(db, a, "office", shop.berlin, 31, allow_partial=True)
    assert (out.amount_requested, out.amount, out.allow_partial) == (31, 30, True)
    assert lines(out) == [(p1, 20), (p2, 10)]
    assert pack(db, a, p1).status == "depleted"
    with pytest.raises(InsufficientCredits):  # partial takes what there is, but there must be something
        consume(db, a, "office", shop.berlin, 1, allow_partial=True)
    assert_verified(db, shop.ws)


def test_product_codes_limit_what_a_pack_pays_for(db, shop):
    a = shop.actor
    sms_only = grant(db, a, "office", shop.berlin, 10, priority=1, product_codes=["sms", "mms"])
    anything = grant(db, a, "office", shop.berlin, 10, priority=2)
    assert lines(consume(db, a, "office", shop.berlin, 4, product_code="web")) == [(anything, 4)]
    assert lines(consume(db, a, "office", shop.berlin, 4)) == [(anything, 4)]  # no product: only "all" packs
    assert lines(consume(db, a, "office", shop.berlin, 12, product_code="mms")) == [(sms_only, 10), (anything, 2)]
    with pytest.raises(InsufficientCredits):
        consume(db, a, "office", shop.berlin, 1, product_code="sms")


def test_a_pack_not_started_waits(db, shop, frozen_clock):
    a = shop.actor
    later = grant(db, a, "office", shop.berlin, 10, starts_at=T0 + timedelta(days=2))
    assert pack(db, a, later).status == "active"
    assert balance(db, a, "office", shop.berlin)["available"] == 0
    with pytest.raises(InsufficientCredits):
        consume(db, a, "office", shop.berlin, 1)
    with pytest.raises(InsufficientCredits):
        hold(db, a, "office", shop.berlin, 1)
    frozen_clock.advance(days=2)
    assert lines(consume(db, a, "office", shop.berlin, 3)) == [(later, 3)]


def test_expiry_months_counts_from_purchase(db, shop):
    p = grant(db, shop.actor, "office", shop.berlin, 10, expiry_months=1, purchased_at=at(2026, 1, 31))
    assert pack(db, shop.actor, p).expires_at == at(2026, 2, 28)
    assert pack(db, shop.actor, p).expiry_months == 1


# --- frozen credits -----------------------------------------------------------------------------

def test_credits_of_a_user_without_the_types_permission_are_frozen(db, shop):
    a = shop.actor
    set_user(db, shop, shop.anna, permissions=["send_sms", "consume_credits"])
    anna = actor_of(db, shop.anna)  # SMS credits are spent by their holder only (governance.authorize_spend)
    sms = grant(db, a, "user", shop.anna, 50, credit_type="sms")
    plain = grant(db, a, "user", shop.anna, 5)
    assert lines(consume(db, anna, "user", shop.anna, 10, credit_type="sms")) == [(sms, 10)]
    set_user(db, shop, shop.anna, permissions=["consume_credits"])
    anna = actor_of(db, shop.anna)
    assert balance(db, a, "user", shop.anna, "sms") == {"available": 0, "held": 0, "total": 40, "frozen": 40}
    assert pack(db, a, sms).frozen is True
    assert pack(db, a, plain).frozen is False  # a type without required_permission never freezes
    # Refused as frozen, not as "insufficient": the credits are there, a transfer out is the way.
    with pytest.raises(CreditsFrozen) as refused:
        consume(db, anna, "user", shop.anna, 1, credit_type="sms")
    assert refused.value.details["frozen"] == 40
    with pytest.raises(CreditsFrozen):
        hold(db, anna, "user", shop.anna, 1, credit_type="sms")
    with pytest.raises(InsufficientCredits):  # more than even the frozen credits would pay
        consume(db, anna, "user", shop.anna, 41, credit_type="sms")
    assert lines(consume(db, anna, "user", shop.anna, 1)) == [(plain, 1)]
    # Frozen until transferred away: the transfer is allowed (to a user who may send), who can spend them.
    tia = make_user(db, actor=a, name="Tia", permissions=["send_sms", "consume_credits"],
                    primary_office_id=shop.paris)
    moved = transfer(db, a, ("user", tia), 40, source=("user", shop.anna), credit_type="sms")
    assert balance(db, a, "user", tia, "sms")["available"] == 40
    assert lines(consume(db, actor_of(db, tia), "user", tia, 40, credit_type="sms")) == [
        (moved.lines[0]["to_pack_id"], 40)]
    # Permission back: nothing left to thaw on Anna's side.
    set_user(db, shop, shop.anna, permissions=["send_sms"])
    assert balance(db, a, "user", shop.anna, "sms")["available"] == 0
    assert_verified(db, shop.ws)


def test_credits_of_a_deactivated_user_are_frozen(db, shop):
    a = shop.actor
    p = grant(db, a, "user", shop.clara, 20)
    set_user(db, shop, shop.clara, is_active=False)
    assert balance(db, a, "user", shop.clara)["frozen"] == 20
    with pytest.raises(CreditsFrozen):
        consume(db, a, "user", shop.clara, 1)
    set_user(db, shop, shop.clara, is_active=True)
    assert lines(consume(db, a, "user", shop.clara, 20)) == [(p, 20)]


# --- holds -------------------------------------------------------------------------------------

def test_held_credits_are_not_spendable(db, shop):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100)
    h = hold(db, a, "office", shop.berlin, 60, reference=cs.ReferenceIn(kind="message", id="m1"))
    assert (h.status, h.amount, lines(h)) == ("pending", 60, [(p, 60)])
    assert balance(db, a, "office", shop.berlin) == {"available": 40, "held": 60, "total": 100, "frozen": 0}
    with pytest.raises(InsufficientCredits):
        consume(db, a, "office", shop.berlin, 41)
    with pytest.raises(InsufficientCredits):
        hold(db, a, "office", shop.berlin, 41)
    consume(db, a, "office", shop.berlin, 40)
    assert pack(db, a, p).status == "active"  # held credits keep it active
    assert_verified(db, shop.ws)


def test_capture_part_releases_the_rest_in_burn_order(db, shop):
    a = shop.actor
    first = grant(db, a, "office", shop.berlin, 30, priority=1)
    second = grant(db, a, "office", shop.berlin, 50, priority=2)
    h = hold(db, a, "office", shop.berlin, 60)
    assert lines(h) == [(first, 30), (second, 30)]
    done = capture(db, a, h.id, 40)
    assert (done.status, done.captured_amount) == ("captured", 40)
    assert remaining(db, a, first) == 0 and remaining(db, a, second) == 40
    assert balance(db, a, "office", shop.berlin) == {"available": 40, "held": 0, "total": 40, "frozen": 0}
    assert pack(db, a, first).status == "depleted"
    assert sink(db, shop.ws, "consumed") == 40
    with pytest.raises(HoldNotPending):
        capture(db, a, h.id)
    with pytest.raises(HoldNotPending):
        release(db, a, h.id)
    assert_verified(db, shop.ws)


def test_capture_all_by_default_and_release(db, shop):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100)
    h1 = hold(db, a, "office", shop.berlin, 30)
    h2 = hold(db, a, "office", shop.berlin, 20)
    assert capture(db, a, h1.id).captured_amount == 30
    released = release(db, a, h2.id)
    assert (released.status, released.resolved_at) == ("released", T0)
    assert balance(db, a, "office", shop.berlin) == {"available": 70, "held": 0, "total": 70, "frozen": 0}
    with pytest.raises(HoldNotPending):
        release(db, a, h2.id)
    with pytest.raises(HoldNotPending):
        capture(db, a, h2.id)
    assert remaining(db, a, p) == 70
    assert_verified(db, shop.ws)


def test_capture_more_than_held_is_refused(db, shop):
    a = shop.actor
    grant(db, a, "office", shop.berlin, 100)
    h = hold(db, a, "office", shop.berlin, 30)
    with pytest.raises(InvalidCredits) as err:
        capture(db, a, h.id, 31)
    assert (err.value.code, err.value.http_status) == ("capture_exceeds_hold", 422)
    with pytest.raises(ValidationError):
        cs.CaptureRequest(amount=0)
    assert balance(db, a, "office", shop.berlin)["held"] == 30
    assert capture(db, a, h.id, 30).status == "captured"


def test_hold_timeout_releases_by_the_job(db, shop, frozen_clock):
    a = shop.actor
    grant(db, a, "office", shop.berlin, 100)
    h = hold(db, a, "office", shop.berlin, 60, timeout_seconds=600)
    frozen_clock.advance(seconds=599)
    assert run_jobs(db, shop.ws)["holds"] == 0
    assert balance(db, a, "office", shop.berlin)["held"] == 60
    frozen_clock.advance(seconds=1)
    with pytest.raises(HoldExpired):
        capture(db, a, h.id)
    assert run_jobs(db, shop.ws)["holds"] == 1
    assert run_jobs(db, shop.ws)["holds"] == 0
    with db.read() as s:
        assert s.get(Hold, h.id).status == "timed_out"
    assert balance(db, a, "office", shop.berlin) == {"available": 100, "held": 0, "total": 100, "frozen": 0}
    with pytest.raises(HoldNotPending):
        capture(db, a, h.id)
    assert_verified(db, shop.ws)


def test_a_timed_out_hold_is_released_lazily_by_a_consumption(db, shop, frozen_clock):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100)
    h = hold(db, a, "office", shop.berlin, 100, timeout_seconds=60)
    with pytest.raises(InsufficientCredits):
        consume(db, a, "office", shop.berlin, 1)
    frozen_clock.advance(seconds=61)
    # No job has run: the consumption finds the hold past its timeout and releases it first.
    assert lines(consume(db, a, "office", shop.berlin, 100)) == [(p, 100)]
    with db.read() as s:
        assert s.get(Hold, h.id).status == "timed_out"
    assert_verified(db, shop.ws)


def test_a_pack_expiring_while_held_honours_the_hold_until_its_timeout(db, shop, frozen_clock):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100, expires_at=T0 + timedelta(hours=1))
    h = hold(db, a, "office", shop.berlin, 60, timeout_seconds=2 * 3600)
    frozen_clock.advance(minutes=90)
    assert run_jobs(db, shop.ws) == {"holds": 0, "packs": 1}
    view = pack(db, a, p)
    assert (view.status, view.remaining, view.held) == ("expired", 0, 60)
    assert sink(db, shop.ws, "breakage") == 40
    assert balance(db, a, "office", shop.berlin) == {"available": 0, "held": 60, "total": 60, "frozen": 0}
    # Still honoured: the hold captures from the expired pack; what it does not capture is breakage.
    assert capture(db, a, h.id, 25).captured_amount == 25
    view = pack(db, a, p)
    assert (view.status, view.remaining, view.held, view.balance) == ("expired", 0, 0, 0)
    assert sink(db, shop.ws, "breakage") == 75
    assert sink(db, shop.ws, "consumed") == 25
    assert_verified(db, shop.ws)


def test_a_hold_on_an_expired_pack_goes_to_breakage_at_its_timeout(db, shop, frozen_clock):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100, expires_at=T0 + timedelta(hours=1))
    hold(db, a, "office", shop.berlin, 60, timeout_seconds=2 * 3600)
    frozen_clock.advance(minutes=90)
    run_jobs(db, shop.ws)
    frozen_clock.advance(hours=1)
    assert run_jobs(db, shop.ws) == {"holds": 1, "packs": 0}
    view = pack(db, a, p)
    assert (view.status, view.remaining, view.held, view.balance) == ("expired", 0, 0, 0)
    assert sink(db, shop.ws, "breakage") == 100
    assert [e.kind for e in history(db, a, p)] == ["grant", "hold", "expired", "expire", "release", "expire"]
    assert_verified(db, shop.ws)


# --- reverse -----------------------------------------------------------------------------------

def test_reverse_returns_credits_to_the_packs_they_came_from(db, shop):
    a = shop.actor
    p1 = grant(db, a, "office", shop.berlin, 10, priority=1)
    p2 = grant(db, a, "office", shop.berlin, 50, priority=2)
    c = consume(db, a, "office", shop.berlin, 25)
    consume(db, a, "office", shop.berlin, 5)
    assert pack(db, a, p1).status == "depleted"
    out = db.write(lambda s: consumptions.consumption_out(s, consumptions.reverse_consumption(s, c.id, actor=a, reason="oops")))
    assert (out.status, out.reversed_at) == ("reversed", T0)
    assert lines(out) == [(p1, 10), (p2, 15)]  # the original legs
    assert remaining(db, a, p1) == 10 and remaining(db, a, p2) == 45
    assert pack(db, a, p1).status == "active"
    assert sink(db, shop.ws, "consumed") == 5
    with pytest.raises(AlreadyReversed) as err:
        db.write(lambda s: consumptions.reverse_consumption(s, c.id, actor=a))
    assert err.value.code == "already_reversed"
    assert remaining(db, a, p1) == 10
    assert_verified(db, shop.ws)


def test_reverse_into_an_expired_pack_is_recorded_as_breakage(db, shop, frozen_clock):
    a = shop.actor
    short = grant(db, a, "office", shop.berlin, 10, expires_at=T0 + timedelta(days=1))
    long = grant(db, a, "office", shop.berlin, 10, expires_at=T0 + timedelta(days=30))
    c = consume(db, a, "office", shop.berlin, 15)
    assert lines(c) == [(short, 10), (long, 5)]
    frozen_clock.advance(days=2)
    # `short` was empty when it expired: the job leaves a depleted pack alone.
    assert run_jobs(db, shop.ws)["packs"] == 0
    assert pack(db, a, short).status == "depleted"
    db.write(lambda s: consumptions.reverse_consumption(s, c.id, actor=a))
    # The credits returned to it pass straight on to breakage, and the pack is now expired.
    view = pack(db, a, short)
    assert (view.remaining, view.balance, view.status) == (0, 0, "expired")
    assert remaining(db, a, long) == 10
    assert sink(db, shop.ws, "breakage") == 10
    assert sink(db, shop.ws, "consumed") == 0
    kinds = [(e.kind, e.amount) for e in history(db, a, short)]
    assert kinds[-3:] == [("reversal", 10), ("expired", 0), ("expire", -10)]
    assert_verified(db, shop.ws)


def test_reverse_into_a_pack_past_expiry_before_the_job(db, shop, frozen_clock):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 10, expires_at=T0 + timedelta(days=1))
    c = consume(db, a, "office", shop.berlin, 4)
    frozen_clock.advance(days=2)
    # The job has not run: the pack is still stored active with 6 left, but reads as expired (its expiry
    # has passed); the 4 coming back are breakage, the 6 wait for the job (and are not spendable meanwhile).
    db.write(lambda s: consumptions.reverse_consumption(s, c.id, actor=a))
    view = pack(db, a, p)
    assert (view.remaining, view.status) == (6, "expired")
    assert balance(db, a, "office", shop.berlin)["available"] == 0
    assert sink(db, shop.ws, "breakage") == 4
    assert run_jobs(db, shop.ws)["packs"] == 1
    assert sink(db, shop.ws, "breakage") == 10
    assert pack(db, a, p).status == "expired"
    assert_verified(db, shop.ws)


def test_reverse_a_captured_hold(db, shop):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100)
    h = hold(db, a, "office", shop.berlin, 60)
    with pytest.raises(NothingToReverse):
        db.write(lambda s: holds.reverse_hold(s, h.id, actor=a))
    capture(db, a, h.id, 45)
    out = db.write(lambda s: holds.hold_out(s, holds.reverse_hold(s, h.id, actor=a, reason="refund")))
    assert out.reversed_at == T0 and out.status == "captured"
    assert remaining(db, a, p) == 100
    assert sink(db, shop.ws, "consumed") == 0
    with pytest.raises(AlreadyReversed):
        db.write(lambda s: holds.reverse_hold(s, h.id, actor=a))
    assert remaining(db, a, p) == 100
    released = hold(db, a, "office", shop.berlin, 5)
    release(db, a, released.id)
    with pytest.raises(NothingToReverse):
        db.write(lambda s: holds.reverse_hold(s, released.id, actor=a))
    assert_verified(db, shop.ws)


def test_reversing_needs_manage_packs(db, shop):
    a = shop.actor
    grant(db, a, "office", shop.berlin, 10)
    clerk = actor_of(db, make_user(db, actor=a, name="Clerk", permissions=["consume_credits"]))
    c = consume(db, clerk, "office", shop.berlin, 4)
    with pytest.raises(NotPermitted):
        db.write(lambda s: consumptions.reverse_consumption(s, c.id, actor=clerk))
    assert balance(db, a, "office", shop.berlin)["available"] == 6


# --- transfers -----------------------------------------------------------------------------------

def test_transfer_creates_a_pack_that_keeps_the_terms(db, shop, frozen_clock):
    a = shop.actor
    src = grant(db, a, "office", shop.berlin, 100, name="Gold", priority=5, expires_at=at(2026, 6, 30),
                price_paid=10_000, currency="EUR", product_codes=["web", "seo"], external_ref="deal-7",
                purchased_at=at(2025, 12, 1), starts_at=at(2026, 1, 1))
    frozen_clock.advance(hours=1)
    out = transfer(db, a, ("user", shop.clara), 30, source=("office", shop.berlin), memo="for Clara")
    assert (out.amount, out.memo, out.to) == (30, "for Clara", {"kind": "user", "id": shop.clara})
    [line] = out.lines
    assert (line["from_pack_id"], line["amount"]) == (src, 30)
    new = pack(db, a, line["to_pack_id"])
    assert new.holder == {"kind": "user", "id": shop.clara}
    assert new.customer_id == shop.customer
    assert (new.quantity, new.remaining, new.expires_at, new.priority, new.is_paid) == (
        30, 30, at(2026, 6, 30), 5, True)
    assert (new.price_paid, new.currency, new.product_codes, new.source) == (3000, "EUR", ["seo", "web"], "transfer")
    assert (new.origin_pack_id, new.starts_at, new.purchased_at, new.name) == (
        src, at(2026, 1, 1), at(2025, 12, 1), "Gold")
    assert remaining(db, a, src) == 70
    # Both sides' history records the move and where it went.
    out_entry = [e for e in history(db, a, src) if e.kind == "transfer_out"]
    in_entry = [e for e in history(db, a, new.id) if e.kind == "transfer_in"]
    assert [(e.amount, e.balance_after, e.reference.kind, e.reference.id) for e in out_entry] == [
        (-30, 70, "credit_transfer", out.id)]
    assert [(e.amount, e.balance_after, e.reference.kind, e.reference.id) for e in in_entry] == [
        (30, 30, "credit_transfer", out.id)]
    assert sink(db, shop.ws, "issuance") == -100  # the transfer issued nothing new
    assert_verified(db, shop.ws)


def test_transfer_from_a_holder_splits_in_burn_order(db, shop):
    a = shop.actor
    free = grant(db, a, "user", shop.anna, 10, priority=1)
    paid = grant(db, a, "user", shop.anna, 30, priority=2, price_paid=300, currency="GBP")
    h = hold(db, a, "user", shop.anna, 5)
    assert lines(h) == [(free, 5)]
    out = transfer(db, a, ("office", shop.paris), 20, source=("user", shop.anna))
    assert [(line["from_pack_id"], line["amount"]) for line in out.lines] == [(free, 5), (paid, 15)]
    new_paid = pack(db, a, out.lines[1]["to_pack_id"])
    assert (new_paid.is_paid, new_paid.price_paid, new_paid.currency) == (True, 150, "GBP")
    new_free = pack(db, a, out.lines[0]["to_pack_id"])
    assert (new_free.is_paid, new_free.price_paid) == (False, 0)
    assert balance(db, a, "user", shop.anna) == {"available": 15, "held": 5, "total": 20, "frozen": 0}
    assert balance(db, a, "office", shop.paris)["available"] == 20
    with pytest.raises(InsufficientCredits):
        transfer(db, a, ("office", shop.paris), 16, source=("user", shop.anna))
    assert_verified(db, shop.ws)


def test_transfer_from_one_pack_and_bad_transfers(db, shop):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 10)
    other = grant(db, a, "workspace", None, 10, credit_type="sms")
    out = transfer(db, a, ("office", shop.paris), 4, from_pack_id=p)
    assert out.from_ == {"kind": "office", "id": shop.berlin, "pack_id": p}
    before = row_counts(db, shop.ws)
    with pytest.raises(InvalidCredits) as err:
        transfer(db, a, ("office", shop.berlin), 1, from_pack_id=p)
    assert err.value.code == "same_holder"
    with pytest.raises(InvalidCredits) as err:
        transfer(db, a, ("office", shop.paris), 1, from_pack_id=other)
    assert err.value.code == "credit_type_mismatch"
    with pytest.raises(InsufficientCredits):
        transfer(db, a, ("office", shop.paris), 7, from_pack_id=p)
    with pytest.raises(InvalidCredits) as err:
        transfer(db, a, ("office", shop.paris), 1)
    assert err.value.code == "transfer_source_required"
    db.write(lambda s: void_pack(s, p, cs.VoidPack(reason="x"), actor=a))
    before = row_counts(db, shop.ws)
    with pytest.raises(PackNotActive):
        transfer(db, a, ("office", shop.paris), 1, from_pack_id=p)
    assert row_counts(db, shop.ws) == before


# --- change holder -------------------------------------------------------------------------------

def test_change_holder_is_a_transfer_out_and_in_at_its_time(db, shop, frozen_clock):
    """A change of holder never re-attributes history: what remains moves, now, to a new pack of the new
    holder (origin_pack_id: the old one); the old pack keeps its holder and every line of its history."""
    a = shop.actor
    p = grant(db, a, "user", shop.anna, 50)
    consume(db, a, "user", shop.anna, 10)
    frozen_clock.advance(minutes=5)
    moved = db.write(lambda s: transfers.change_holder(s, p, cs.ChangeHolder(
        holder={"kind": "user", "id": shop.clara}, reason="Anna left"), actor=a).id)
    assert moved != p
    new = pack(db, a, moved)
    assert (new.holder, new.quantity, new.remaining, new.origin_pack_id, new.source) == (
        {"kind": "user", "id": shop.clara}, 40, 40, p, "transfer")
    old = pack(db, a, p)
    assert (old.holder, old.quantity, old.remaining, old.status) == ({"kind": "user", "id": shop.anna}, 50, 0,
                                                                      "depleted")
    assert balance(db, a, "user", shop.anna)["available"] == 0
    assert balance(db, a, "user", shop.clara)["available"] == 40
    with pytest.raises(InsufficientCredits):
        consume(db, a, "user", shop.anna, 1)
    assert lines(consume(db, a, "user", shop.clara, 5)) == [(moved, 5)]
    # user -> office -> user: a new pack each time
    second = db.write(lambda s: transfers.change_holder(s, moved, cs.ChangeHolder(
        holder={"kind": "office", "id": shop.paris}), actor=a).id)
    assert balance(db, a, "office", shop.paris)["available"] == 35
    third = db.write(lambda s: transfers.change_holder(s, second, cs.ChangeHolder(
        holder={"kind": "user", "id": shop.ben}), actor=a).id)
    view = pack(db, a, third)
    assert (view.holder, view.remaining, view.quantity, view.origin_pack_id) == (
        {"kind": "user", "id": shop.ben}, 35, 35, second)
    # The old pack's history: what happened while Anna held it, then the out line at the time of the change.
    old_history = history(db, a, p)
    assert [(e.kind, e.amount, e.balance_after) for e in old_history] == [
        ("grant", 50, 50), ("consume", -10, 40), ("transfer_out", -40, 0), ("holder_change", 0, 0)]
    assert old_history[2].at == T0 + timedelta(minutes=5) and old_history[0].at == T0
    change = old_history[3].detail
    assert (change["holder_id"], change["reason"], change["to_pack_id"]) == (
        {"before": shop.anna, "after": shop.clara}, "Anna left", moved)
    # The new pack's history starts with the in line at the time of the change (nothing before it).
    assert [(e.kind, e.amount, e.at) for e in history(db, a, moved)][:2] == [
        ("transfer_in", 40, T0 + timedelta(minutes=5)), ("consume", -5, T0 + timedelta(minutes=5))]
    with db.read() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.object_id == p,
                                                  AuditEvent.action == "pack.change_holder").order_by(AuditEvent.id))
        assert (event.after["balance_moved"], event.after["to_pack_id"]) == (40, moved)
    assert_verified(db, shop.ws)


def test_change_holder_leaves_held_credits_with_their_hold(db, shop):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 30)
    h = hold(db, a, "office", shop.berlin, 10)
    moved = db.write(lambda s: transfers.change_holder(s, p, cs.ChangeHolder(
        holder={"kind": "office", "id": shop.paris}), actor=a).id)
    assert (pack(db, a, moved).remaining, pack(db, a, p).remaining, pack(db, a, p).held) == (20, 0, 10)
    capture(db, a, h.id, 4)  # the hold ends on the pack it was taken from
    assert (pack(db, a, p).remaining, pack(db, a, p).held) == (6, 0)
    # All of a pack on hold: nothing to move.
    q = grant(db, a, "office", shop.paris, 5, priority=-1)
    hold(db, a, "office", shop.paris, 5)
    before = row_counts(db, shop.ws)
    with pytest.raises(NothingToMove):
        db.write(lambda s: transfers.change_holder(s, q, cs.ChangeHolder(
            holder={"kind": "office", "id": shop.berlin}), actor=a))
    assert row_counts(db, shop.ws) == before
    assert_verified(db, shop.ws)


def test_change_holder_refusals(db, shop):
    a = shop.actor
    p = grant(db, a, "user", shop.anna, 50)
    with pytest.raises(InvalidCredits) as err:
        db.write(lambda s: transfers.change_holder(s, p, cs.ChangeHolder(holder={"kind": "user", "id": shop.anna}),
                                                 actor=a))
    assert err.value.code == "same_holder"
    with pytest.raises(NotFound):
        db.write(lambda s: transfers.change_holder(s, p, cs.ChangeHolder(holder={"kind": "user", "id": "usr_nope"}),
                                                 actor=a))
    clerk = actor_of(db, make_user(db, actor=a, name="Clerk2", permissions=["consume_credits"]))
    with pytest.raises(NotPermitted):
        db.write(lambda s: transfers.change_holder(s, p, cs.ChangeHolder(holder={"kind": "user", "id": shop.ben}),
                                                 actor=clerk))
    db.write(lambda s: void_pack(s, p, cs.VoidPack(reason="gone"), actor=a))
    with pytest.raises(PackNotActive):
        db.write(lambda s: transfers.change_holder(s, p, cs.ChangeHolder(holder={"kind": "user", "id": shop.ben}),
                                                 actor=a))
    assert pack(db, a, p).holder == {"kind": "user", "id": shop.anna}


# --- void ----------------------------------------------------------------------------------------

def test_void_sends_the_remainder_to_breakage(db, shop):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100)
    consume(db, a, "office", shop.berlin, 30)
    db.write(lambda s: void_pack(s, p, cs.VoidPack(reason="fraud"), actor=a))
    view = pack(db, a, p)
    assert (view.status, view.void_reason, view.remaining, view.balance) == ("voided", "fraud", 0, 0)
    assert sink(db, shop.ws, "breakage") == 70
    with pytest.raises(InsufficientCredits):
        consume(db, a, "office", shop.berlin, 1)
    with pytest.raises(PackNotActive) as err:
        db.write(lambda s: void_pack(s, p, cs.VoidPack(reason="again"), actor=a))
    assert err.value.code == "pack_already_voided"
    with pytest.raises(ValidationError):
        cs.VoidPack(reason="")
    kinds = [(e.kind, e.amount) for e in history(db, a, p)]
    assert kinds[-2:] == [("void", -70), ("voided", 0)]
    assert_verified(db, shop.ws)


def test_void_with_credits_on_hold(db, shop):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100)
    h1 = hold(db, a, "office", shop.berlin, 30)
    h2 = hold(db, a, "office", shop.berlin, 20)
    db.write(lambda s: void_pack(s, p, cs.VoidPack(reason="closing"), actor=a))
    assert sink(db, shop.ws, "breakage") == 50
    assert capture(db, a, h1.id, 10).captured_amount == 10  # a hold made before the void is honoured
    release(db, a, h2.id)
    view = pack(db, a, p)
    assert (view.status, view.remaining, view.held, view.balance) == ("voided", 0, 0, 0)
    assert sink(db, shop.ws, "breakage") == 90
    assert sink(db, shop.ws, "consumed") == 10
    assert_verified(db, shop.ws)


# --- expiry --------------------------------------------------------------------------------------

def test_expiry_job_is_safe_to_rerun(db, shop, frozen_clock):
    a = shop.actor
    soon = grant(db, a, "office", shop.berlin, 10, expires_at=T0 + timedelta(days=1))
    later = grant(db, a, "office", shop.berlin, 10, expires_at=T0 + timedelta(days=10))
    never = grant(db, a, "office", shop.berlin, 10)
    empty = grant(db, a, "office", shop.berlin, 10, expires_at=T0 + timedelta(days=1), priority=0)
    consume(db, a, "office", shop.berlin, 10)  # empties `empty` (priority 0): depleted, not expired
    consume(db, a, "office", shop.berlin, 4)
    assert run_jobs(db, shop.ws)["packs"] == 0
    frozen_clock.advance(days=1)
    assert run_jobs(db, shop.ws)["packs"] == 1
    assert run_jobs(db, shop.ws)["packs"] == 0
    assert [pack(db, a, p).status for p in (soon, later, never, empty)] == ["expired", "active", "active", "depleted"]
    assert sink(db, shop.ws, "breakage") == 6
    frozen_clock.advance(days=30)
    assert run_jobs(db, shop.ws)["packs"] == 1
    assert sink(db, shop.ws, "breakage") == 16
    assert balance(db, a, "office", shop.berlin)["available"] == 10
    with db.read() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.workspace_id == shop.ws,
                                                    AuditEvent.action == "pack.expire")).all()
        assert sorted(e.object_id for e in events) == sorted([soon, later])
        assert {e.actor_kind for e in events} == {"system"}
    assert_verified(db, shop.ws)


def test_an_expired_but_unprocessed_pack_is_not_spendable(db, shop, frozen_clock):
    a = shop.actor
    grant(db, a, "office", shop.berlin, 10, expires_at=T0 + timedelta(hours=1))
    frozen_clock.advance(hours=1)
    with pytest.raises(InsufficientCredits):
        consume(db, a, "office", shop.berlin, 1)
    assert balance(db, a, "office", shop.berlin)["available"] == 0


def test_two_concurrent_expiry_runs_expire_each_pack_once(db, shop, frozen_clock):
    a = shop.actor
    ids = [grant(db, a, "office", shop.berlin, 5 + i, expires_at=T0 + timedelta(days=1)) for i in range(12)]
    frozen_clock.advance(days=2)
    barrier = threading.Barrier(3)
    results, errors = [], []

    def run():
        barrier.wait()
        try:
            results.append(runner.expire_due_packs(db, batch_size=4, workspace_id=shop.ws))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(results) == 12
    with db.read() as s:
        accounts = [s.get(Pack, p).ledger_account_id for p in ids]
        per_pack = dict(s.execute(select(LedgerTransfer.debit_account_id, func.count()).where(
            LedgerTransfer.debit_account_id.in_(accounts), LedgerTransfer.code == "expire")
            .group_by(LedgerTransfer.debit_account_id)).all())
        assert per_pack == {acc: 1 for acc in accounts}
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.workspace_id == shop.ws, AuditEvent.action == "pack.expire")) == 12
    assert sink(db, shop.ws, "breakage") == sum(5 + i for i in range(12))
    assert_verified(db, shop.ws)


def test_cli_jobs_expire(db, shop, frozen_clock):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 10, expires_at=T0 + timedelta(days=1))
    frozen_clock.advance(days=1)
    result = CliRunner().invoke(app, ["jobs", "expire", "--workspace", shop.ws, "--database-url", db.url])
    assert result.exit_code == 0, result.output
    assert "1 pack(s) expired." in result.output
    assert pack(db, a, p).status == "expired"
    again = CliRunner().invoke(app, ["jobs", "expire", "--workspace", shop.ws, "--database-url", db.url])
    assert again.exit_code == 0 and "0 pack(s) expired." in again.output
    assert_verified(db, shop.ws)


def test_cli_jobs_release_holds(db, shop, frozen_clock):
    a = shop.actor
    grant(db, a, "office", shop.berlin, 10)
    hold(db, a, "office", shop.berlin, 10, timeout_seconds=5)
    frozen_clock.advance(seconds=5)
    result = CliRunner().invoke(app, ["jobs", "release-holds", "--workspace", shop.ws, "--database-url", db.url])
    assert result.exit_code == 0, result.output
    assert "1 hold(s) released." in result.output
    assert balance(db, a, "office", shop.berlin)["available"] == 10


# --- eligibility explained -----------------------------------------------------------------------

def test_eligibility_explains_every_near_miss(db, shop, frozen_clock):
    a = shop.actor
    project = db.write(lambda s: projects.create_project(s, cs.ProjectCreate(
        name="Site", office_id=shop.berlin, contact_ids=[shop.anna]), actor=a).id)
    ok = grant(db, a, "office", shop.berlin, 10, name="ok")
    ok_anna = grant(db, a, "user", shop.anna, 10, name="ok_anna", priority=1)
    paris = grant(db, a, "office", shop.paris, 10, name="paris")
    expired = grant(db, a, "office", shop.berlin, 10, name="expired", expires_at=T0 + timedelta(hours=1))
    depleted = grant(db, a, "office", shop.berlin, 10, name="depleted", priority=-1)
    consume(db, a, "office", shop.berlin, 10)  # burns `depleted` (priority -1)
    future = grant(db, a, "office", shop.berlin, 10, name="future", starts_at=T0 + timedelta(days=5))
    product = grant(db, a, "office", shop.berlin, 10, name="product", product_codes=["other"])
    sms = grant(db, a, "user", shop.anna, 10, name="sms", credit_type="sms")
    frozen_clock.advance(hours=2)
    with db.read() as s:
        out = reads.eligibility(s, actor=a, context_kind="project", context_id=project, credit_type="credits",
                                product_code="web")
    assert [e.pack.id for e in out.eligible] == [ok_anna, ok]
    assert out.available == 20
    reasons = {m.pack.id: m.reasons for m in out.not_eligible}
    assert reasons == {
        paris: ["holder_mismatch"],
        expired: ["expired"],
        depleted: ["depleted"],
        future: ["not_started"],
        product: ["product_not_covered"],
        sms: ["own_credits_only", "other_credit_type"],  # SMS credits pay for their holder's own use only
    }
    # Frozen: Anna loses send_sms; her sms pack is frozen for an sms question.
    set_user(db, shop, shop.anna, permissions=[])
    with db.read() as s:
        out = reads.eligibility(s, actor=a, context_kind="user", context_id=shop.anna, credit_type="sms",
                                product_code=None)
    assert out.eligible == []
    assert {m.pack.id: m.reasons for m in out.not_eligible}[sms] == ["frozen"]
    assert {m.pack.id: m.reasons for m in out.not_eligible}[ok_anna] == ["other_credit_type"]


def test_eligibility_agrees_with_consume(db, shop, frozen_clock):
    a = shop.actor
    for i in range(6):
        grant(db, a, "office", shop.berlin, 3 + i, priority=i % 3, expires_at=T0 + timedelta(days=10 - i)
              if i % 2 else None, price_paid=i, currency="EUR" if i else None)
    with db.read() as s:
        out = reads.eligibility(s, actor=a, context_kind="office", context_id=shop.berlin, credit_type="credits",
                                product_code=None)
    expected = [(e.pack.id, e.pack.remaining) for e in out.eligible]
    assert lines(consume(db, a, "office", shop.berlin, out.available)) == expected


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("quantity", [0, -1, 10**16])
def test_quantities_must_be_positive(quantity):
    with pytest.raises(ValidationError):
        cs.PackCreate(holder={"kind": "workspace"}, credit_type="credits", quantity=quantity, name="x")
    with pytest.raises(ValidationError):
        cs.ConsumeRequest(context={"kind": "workspace"}, credit_type="credits", amount=quantity)
    with pytest.raises(ValidationError):
        cs.HoldRequest(context={"kind": "workspace"}, credit_type="credits", amount=quantity)
    with pytest.raises(ValidationError):
        cs.TransferRequest.model_validate({"from": {"kind": "workspace"}, "to": {"kind": "workspace"},
                                           "credit_type": "credits", "amount": quantity})


def test_bad_grants_write_nothing(db, shop):
    a = shop.actor
    other = make_shop(db, "Other shop")
    before = row_counts(db, shop.ws)
    with pytest.raises(InvalidCredits) as err:
        grant(db, a, "office", shop.berlin, 10, credit_type="minutes")
    assert (err.value.code, err.value.http_status) == ("unknown_credit_type", 422)
    for kind, holder_id in (("office", other.berlin), ("user", other.anna), ("customer", other.customer)):
        with pytest.raises(NotFound) as err:
            grant(db, a, kind, holder_id, 10)
        assert err.value.code == "not_found"
    with pytest.raises(NotFound):
        grant(db, a, "office", shop.berlin, 10, relationship_manager_id=other.anna)
    with pytest.raises(InvalidCredits) as err:
        grant(db, a, "office", shop.berlin, 10, starts_at=at(2026, 3, 1), expires_at=at(2026, 2, 1))
    assert err.value.code == "expiry_before_start"
    with pytest.raises(InvalidCredits) as err:
        grant(db, a, "office", shop.berlin, 10, starts_at=at(2026, 3, 1), expires_at=at(2026, 3, 1))
    assert err.value.code == "expiry_before_start"
    with pytest.raises(InvalidCredits) as err:
        grant(db, a, "office", shop.berlin, 10, expires_at=at(2026, 3, 1), expiry_months=2)
    assert err.value.code == "expiry_ambiguous"
    with pytest.raises(InvalidCredits) as err:
        grant(db, a, "office", shop.berlin, 10, price_paid=100)
    assert err.value.code == "currency_required"
    with pytest.raises(InvalidCredits) as err:
        grant(db, a, "office", None, 10)
    assert err.value.code == "holder_id_required"
    assert row_counts(db, shop.ws) == before


def test_bad_consumptions_write_nothing(db, shop):
    a = shop.actor
    other = make_shop(db, "Other shop 2")
    grant(db, a, "office", shop.berlin, 10)
    their_pack = grant(db, other.actor, "office", other.berlin, 10)
    before = row_counts(db, shop.ws)
    with pytest.raises(InvalidCredits) as err:
        consume(db, a, "office", shop.berlin, 1, credit_type="minutes")
    assert err.value.code == "unknown_credit_type"
    with pytest.raises(NotFound):
        consume(db, a, "office", other.berlin, 1)
    with pytest.raises(NotFound):
        consume(db, a, "project", "prj_nope", 1)
    with pytest.raises(NotFound):
        db.write(lambda s: void_pack(s, their_pack, cs.VoidPack(reason="x"), actor=a))
    with pytest.raises(NotFound):
        transfer(db, a, ("office", shop.berlin), 1, from_pack_id=their_pack)
    assert row_counts(db, shop.ws) == before
    assert remaining(db, other.actor, their_pack) == 10


def test_granting_with_an_idempotency_key_creates_one_pack(db, shop):
    a = shop.actor
    first = grant(db, a, "office", shop.berlin, 10, idempotency_key="deal-42")
    again = grant(db, a, "office", shop.berlin, 10, idempotency_key="deal-42")
    assert first == again
    assert balance(db, a, "office", shop.berlin)["available"] == 10
    other = make_shop(db, "Other keys")
    theirs = grant(db, other.actor, "office", other.berlin, 10, idempotency_key="deal-42")
    assert theirs != first


def test_concurrent_grants_with_one_idempotency_key_create_one_pack(db, shop):
    a = shop.actor
    barrier = threading.Barrier(6)
    results, errors = [], []

    def run():
        barrier.wait()
        try:
            results.append(grant(db, a, "office", shop.berlin, 10, idempotency_key="race"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert balance(db, a, "office", shop.berlin)["available"] == 10
    assert_verified(db, shop.ws)


# --- pack list -----------------------------------------------------------------------------------

def list_ids(db, actor, **kw) -> list[str]:
    with db.read() as s:
        page = reads.list_packs(s, actor=actor, limit=500, **kw)
        assert page.next_cursor is None
        return [p.id for p, _ in page.items]


def walk(db, actor, limit: int, **kw) -> list[str]:
    seen, cursor = [], None
    while True:
        with db.read() as s:
            page = reads.list_packs(s, actor=actor, limit=limit, cursor=cursor, **kw)
            seen += [p.id for p, _ in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.fixture
def catalogue(db, shop):
    a = shop.actor
    dan = make_user(db, actor=a, name="Dan", is_staff=False, primary_office_id=shop.paris,
                    additional_office_ids=[shop.berlin])
    # SMS credits go to staff users who may send (governance): Sam, in Paris like Clara.
    sam = make_user(db, actor=a, name="Sam", permissions=["send_sms"], primary_office_id=shop.paris)
    p = {
        "berlin": grant(db, a, "office", shop.berlin, 100, name="Berlin retainer", notes="Renewal in May",
                        expires_at=at(2026, 6, 30)),
        "anna": grant(db, a, "user", shop.anna, 40, name="Anna hours", status_label="Chasing",
                      expires_at=at(2026, 3, 31)),
        "dan": grant(db, a, "user", dan, 25, name="Dan top-up", external_ref="CRM-99"),
        "paris": grant(db, a, "office", shop.paris, 60, name="Paris retainer", expires_at=at(2026, 12, 31)),
        "clara_sms": grant(db, a, "user", sam, 500, name="Clara SMS", credit_type="sms"),
        "pool": grant(db, a, "workspace", None, 1000, name="Pool"),
    }
    consume(db, a, "office", shop.berlin, 70)
    consume(db, a, "user", shop.anna, 40)
    db.write(lambda s: void_pack(s, p["pool"], cs.VoidPack(reason="cleanup"), actor=a))
    p["dan_id"] = dan
    return p


def test_pack_list_filters(db, shop, catalogue):
    a, p = shop.actor, catalogue
    assert list_ids(db, a, holder_kind="user", holder_id=shop.anna) == [p["anna"]]
    assert set(list_ids(db, a, holder_kind="office")) == {p["berlin"], p["paris"]}
    # An office's list includes its users' packs (primary or additional office).
    assert set(list_ids(db, a, office_id=shop.berlin)) == {p["berlin"], p["anna"], p["dan"]}
    assert set(list_ids(db, a, office_id=shop.paris)) == {p["paris"], p["clara_sms"], p["dan"]}
    assert set(list_ids(db, a, customer_id=shop.customer)) == {p["berlin"], p["anna"], p["dan"], p["paris"],
                                                              p["clara_sms"]}
    assert list_ids(db, a, status=["depleted"]) == [p["anna"]]
    assert list_ids(db, a, status=["voided"]) == [p["pool"]]
    assert set(list_ids(db, a, status=["active", "depleted"])) == {p["berlin"], p["anna"], p["dan"], p["paris"],
                                                                  p["clara_sms"]}
    assert list_ids(db, a, credit_type="sms") == [p["clara_sms"]]
    assert set(list_ids(db, a, remaining_min=25, remaining_max=60)) == {p["berlin"], p["dan"], p["paris"]}
    assert set(list_ids(db, a, remaining_max=0)) == {p["anna"], p["pool"]}
    assert set(list_ids(db, a, expires_from=at(2026, 4, 1))) == {p["berlin"], p["paris"]}
    assert list_ids(db, a, expires_from=at(2026, 3, 1), expires_to=at(2026, 6, 1)) == [p["anna"]]
    assert list_ids(db, a, q="RETAINER", credit_type="credits", holder_kind="office",
                    remaining_min=31) == [p["paris"]]
    assert list_ids(db, a, q="renewal") == [p["berlin"]]
    assert list_ids(db, a, q="chasing") == [p["anna"]]
    assert list_ids(db, a, q="crm-99") == [p["dan"]]
    assert list_ids(db, a, status_label="Chasing") == [p["anna"]]
    assert list_ids(db, a, q="nothing like this") == []
    # Another workspace sees none of them.
    other = make_shop(db, "Lister")
    assert list_ids(db, other.actor) == []


@pytest.mark.parametrize("sort", ["created", "expires_at", "name", "remaining", "quantity", "priority"])
@pytest.mark.parametrize("descending", [False, True])
def test_pack_list_sorts_and_cursor_walks_everything_once(db, shop, catalogue, sort, descending):
    a = shop.actor
    everything = list_ids(db, a, sort=sort, descending=descending)
    assert len(everything) == 6
    for limit in (1, 2, 4):
        assert walk(db, a, limit, sort=sort, descending=descending) == everything
    with db.read() as s:
        rows = [(p, acc) for p, acc in reads.list_packs(s, actor=a, limit=500, sort=sort,
                                                        descending=descending).items]
        key = {
            "created": lambda r: r[0].id,
            "expires_at": lambda r: r[0].expires_at,
            "name": lambda r: r[0].name,
            "remaining": lambda r: r[1].available,
            "quantity": lambda r: r[0].quantity,
            "priority": lambda r: r[0].priority,
        }[sort]
        values = [key(r) for r in rows]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=descending)
    assert values[len(present):] == [None] * (len(values) - len(present))  # never-expiring packs last


def test_pack_list_cursor_with_filters(db, shop, catalogue):
    a = shop.actor
    everything = list_ids(db, a, customer_id=shop.customer, sort="remaining", descending=True)
    assert walk(db, a, 2, customer_id=shop.customer, sort="remaining", descending=True) == everything
    assert len(everything) == 5


# --- history -----------------------------------------------------------------------------------

def test_pack_history_running_balances_and_links(db, shop, frozen_clock):
    a = shop.actor
    p = grant(db, a, "office", shop.berlin, 100)
    project = db.write(lambda s: projects.create_project(s, cs.ProjectCreate(name="Site", office_id=shop.berlin),
                                                        actor=a).id)
    frozen_clock.advance(minutes=1)
    c = consume(db, a, "project", project, 30, reference=cs.ReferenceIn(kind="project", id=project))
    frozen_clock.advance(minutes=1)
    h = hold(db, a, "office", shop.berlin, 20, reference=cs.ReferenceIn(
        kind="message", id="msg-1", url="https://sms.example/msg-1"))
    frozen_clock.advance(minutes=1)
    capture(db, a, h.id, 5)
    frozen_clock.advance(minutes=1)
    db.write(lambda s: consumptions.reverse_consumption(s, c.id, actor=a))
    frozen_clock.advance(minutes=1)
    db.write(lambda s: update_pack(s, p, cs.PackUpdate(status_label="Reviewed"), actor=a))
    frozen_clock.advance(minutes=1)
    consume(db, a, "office", shop.berlin, 95, reference=cs.ReferenceIn(kind="invoice", id="inv-9"))
    entries = history(db, a, p)
    assert [(e.kind, e.amount, e.balance_after, e.held_after) for e in entries] == [
        ("grant", 100, 100, 0),
        ("consume", -30, 70, 0),
        ("hold", 0, 70, 20),
        ("capture", -5, 65, 0),
        ("reversal", 30, 95, 0),
        ("edited", 0, 95, 0),
        ("consume", -95, 0, 0),
    ]
    assert entries[1].reference.model_dump() == {"kind": "project", "id": project, "url": f"/projects/{project}"}
    assert entries[1].operation_id == c.id
    assert entries[2].reference.url == "https://sms.example/msg-1"
    assert entries[3].operation_id == h.id
    assert entries[5].detail == {"status_label": {"before": "", "after": "Reviewed"}}
    assert entries[6].reference.model_dump() == {"kind": "invoice", "id": "inv-9", "url": None}
    assert all(e.actor_id == a.user_id for e in entries)
    assert pack(db, a, p).status == "depleted"
    with db.read() as s:
        assert reads.projects_using_pack(s, s.get(Pack, p)) == [project]


def test_pack_of_another_workspace_has_no_history(db, shop):
    other = make_shop(db, "Historian")
    theirs = grant(db, other.actor, "office", other.berlin, 10)
    with pytest.raises(NotFound):
        history(db, shop.actor, theirs)
    with pytest.raises(NotFound):
        pack(db, shop.actor, theirs)


# --- permissions ---------------------------------------------------------------------------------

def test_who_may_do_what(db, shop):
    a = shop.actor
    nobody = actor_of(db, make_user(db, actor=a, name="Nobody"))
    clerk = actor_of(db, make_user(db, actor=a, name="Clerk3", permissions=["consume_credits"]))
    manager = actor_of(db, make_user(db, actor=a, name="Boss", role="manager"))
    p = grant(db, a, "office", shop.berlin, 10)
    with pytest.raises(NotPermitted):
        grant(db, nobody, "office", shop.berlin, 10)
    with pytest.raises(NotPermitted):
        consume(db, nobody, "office", shop.berlin, 1)
    with pytest.raises(NotPermitted):
        hold(db, nobody, "office", shop.berlin, 1)
    with pytest.raises(NotPermitted):
        transfer(db, clerk, ("office", shop.paris), 1, from_pack_id=p)
    with pytest.raises(NotPermitted):
        db.write(lambda s: void_pack(s, p, cs.VoidPack(reason="x"), actor=clerk))
    with pytest.raises(NotPermitted):
        db.write(lambda s: credit_types.create_credit_type(s, cs.CreditTypeCreate(code="x", name="X"), actor=manager))
    grant(db, manager, "office", shop.berlin, 5)
    consume(db, clerk, "office", shop.berlin, 1)
    assert balance(db, a, "office", shop.berlin)["available"] == 14


def test_office_factory_unused_guard(db, shop):
    # An office of the workspace itself (no customer) holds packs like any other.
    own = make_office(db, actor=shop.actor, name="HQ")
    p = grant(db, shop.actor, "office", own, 10)
    assert pack(db, shop.actor, p).customer_id is None
    assert lines(consume(db, shop.actor, "office", own, 10)) == [(p, 10)]
