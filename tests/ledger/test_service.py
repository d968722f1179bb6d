"""The ledger core on its own: accounts, one- and two-phase transfers, flags, idempotency, units.

Nothing here knows about packs: a "source" account (no flags) funds "wallet" accounts that may not
go below zero (DEBITS_MUST_NOT_EXCEED_CREDITS), like issuance funds packs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from creditdesk.ledger import service as ledger
from creditdesk.ledger.errors import (
    AmountExceedsPending,
    ExceedsCredits,
    InvalidAmount,
    PendingAlreadyResolved,
    PendingNotFound,
    TransferKeyConflict,
    UnitMismatch,
)
from creditdesk.ledger.models import (
    CREDITS_MUST_NOT_EXCEED_DEBITS,
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    NO_CACHE,
    PENDING,
    POST_PENDING,
    POSTED,
    VOID_PENDING,
    LedgerAccount,
    LedgerTransfer,
)
from creditdesk.ledger.service import Reference, TransferSpec
from tests.conftest import make_workspace


@dataclass
class Books:
    ws: str
    source: str
    wallet: str
    other: str
    sink: str


def open_books(db, ws: str, unit: str = "pts") -> Books:
    def fn(s):
        source = ledger.open_account(s, workspace_id=ws, unit=unit, code="source")
        wallet = ledger.open_account(s, workspace_id=ws, unit=unit, code="wallet", flags=DEBITS_MUST_NOT_EXCEED_CREDITS)
        other = ledger.open_account(s, workspace_id=ws, unit=unit, code="wallet", flags=DEBITS_MUST_NOT_EXCEED_CREDITS)
        sink = ledger.open_account(s, workspace_id=ws, unit=unit, code="sink", flags=NO_CACHE)
        return Books(ws, source.id, wallet.id, other.id, sink.id)
    return db.write(fn)


def post(db, ws, *specs, **kw):
    return db.write(lambda s: [t.id for t in ledger.post(s, list(specs), workspace_id=ws, **kw)])


def totals(db, account_id) -> tuple[int, int, int, int]:
    with db.read() as s:
        a = s.get(LedgerAccount, account_id)
        return a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending


def available(db, account_id) -> int:
    with db.read() as s:
        return s.get(LedgerAccount, account_id).available


def assert_verified(db, ws):
    with db.read() as s:
        report = ledger.verify(s, workspace_id=ws)
    assert report.ok, report.problems


@pytest.fixture
def books(db, workspace) -> Books:
    return open_books(db, workspace.id)


def fund(db, books: Books, amount: int, account: str | None = None):
    return post(db, books.ws, TransferSpec(books.source, account or books.wallet, amount, "fund"))


# --- one-phase ---

def test_post_moves_amounts_and_keeps_the_books_balanced(db, books):
    fund(db, books, 100)
    post(db, books.ws, TransferSpec(books.wallet, books.sink, 30, "spend", Reference("invoice", "inv_1", "/i/1")))
    assert totals(db, books.source) == (100, 0, 0, 0)
    assert totals(db, books.wallet) == (30, 100, 0, 0)
    assert available(db, books.wallet) == 70
    # A sink keeps no cached totals (never a hot row); its balance is the sum of its transfers.
    assert totals(db, books.sink) == (0, 0, 0, 0)
    with db.read() as s:
        assert ledger.recomputed_totals(s, account_ids=[books.sink])[books.sink] == (0, 30, 0, 0)
        spend = s.scalar(select(LedgerTransfer).where(LedgerTransfer.debit_account_id == books.wallet))
        assert (spend.amount, spend.unit, spend.code, spend.phase) == (30, "pts", "spend", POSTED)
        assert (spend.reference_kind, spend.reference_id, spend.reference_url) == ("invoice", "inv_1", "/i/1")
    assert_verified(db, books.ws)


def test_several_transfers_are_written_all_or_nothing(db, books):
    fund(db, books, 50)
    with pytest.raises(ExceedsCredits):
        post(db, books.ws, TransferSpec(books.wallet, books.sink, 40, "spend"),
             TransferSpec(books.wallet, books.other, 20, "move"))
    assert totals(db, books.wallet) == (0, 50, 0, 0)
    assert totals(db, books.other) == (0, 0, 0, 0)
    ids = post(db, books.ws, TransferSpec(books.wallet, books.sink, 30, "spend"),
               TransferSpec(books.wallet, books.other, 20, "move"), operation_id="op_1")
    assert len(ids) == 2
    assert available(db, books.wallet) == 0
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(LedgerTransfer)
                        .where(LedgerTransfer.operation_id == "op_1")) == 2
    assert_verified(db, books.ws)


def test_no_overdraft_flag_refuses_going_below_zero(db, books):
    fund(db, books, 10)
    with pytest.raises(ExceedsCredits) as err:
        post(db, books.ws, TransferSpec(books.wallet, books.sink, 11, "spend"))
    assert err.value.code == "insufficient_credits"
    post(db, books.ws, TransferSpec(books.wallet, books.sink, 10, "spend"))
    with pytest.raises(ExceedsCredits):
        post(db, books.ws, TransferSpec(books.wallet, books.sink, 1, "spend"))
    assert totals(db, books.wallet) == (10, 10, 0, 0)


def test_credits_must_not_exceed_debits_flag(db, workspace):
    def fn(s):
        return ledger.open_account(s, workspace_id=workspace.id, unit="pts", code="limit",
                                   flags=CREDITS_MUST_NOT_EXCEED_DEBITS).id
    limited = db.write(fn)
    books = open_books(db, workspace.id)
    with pytest.raises(ExceedsCredits):
        post(db, workspace.id, TransferSpec(books.source, limited, 1, "fund"))
    post(db, workspace.id, TransferSpec(limited, books.wallet, 5, "draw"))
    post(db, workspace.id, TransferSpec(books.wallet, limited, 5, "repay"))
    with pytest.raises(ExceedsCredits):
        post(db, workspace.id, TransferSpec(books.source, limited, 1, "fund"))
    assert_verified(db, workspace.id)


@pytest.mark.parametrize("amount", [0, -5, 1.5, True])
def test_amounts_are_positive_integers(db, books, amount):
    fund(db, books, 10)
    with pytest.raises(InvalidAmount):
        post(db, books.ws, TransferSpec(books.wallet, books.sink, amount, "spend"))
    assert totals(db, books.wallet) == (0, 10, 0, 0)


def test_unit_mismatch_is_refused(db, workspace):
    pts = open_books(db, workspace.id, "pts")
    eur = open_books(db, workspace.id, "eur")
    fund(db, pts, 10)
    with pytest.raises(UnitMismatch) as err:
        post(db, workspace.id, TransferSpec(pts.wallet, eur.wallet, 5, "move"))
    assert err.value.http_status == 422
    assert totals(db, pts.wallet) == (0, 10, 0, 0)
    assert totals(db, eur.wallet) == (0, 0, 0, 0)


def test_accounts_of_another_workspace_are_unknown(db, books):
    other = make_workspace(db, name="Elsewhere")
    theirs = open_books(db, other.id)
    fund(db, theirs, 10)
    with pytest.raises(PendingNotFound) as err:
        post(db, books.ws, TransferSpec(theirs.wallet, books.wallet, 5, "steal"))
    assert err.value.code == "ledger_account_not_found"
    with pytest.raises(PendingNotFound):
        post(db, books.ws, TransferSpec(books.source, "la_doesnotexist", 5, "fund"))
    assert totals(db, theirs.wallet) == (0, 10, 0, 0)


def test_the_database_refuses_a_zero_amount_or_a_self_transfer(db, books):
    """The CHECK constraints hold even for code that bypasses `post`."""
    from sqlalchemy.exc import IntegrityError

    from creditdesk import clock
    from creditdesk.ids import new_id

    for debit, credit, amount in ((books.source, books.wallet, 0), (books.wallet, books.wallet, 5)):
        def fn(s, debit=debit, credit=credit, amount=amount):
            s.add(LedgerTransfer(id=new_id("lt"), workspace_id=books.ws, debit_account_id=debit,
                                 credit_account_id=credit, amount=amount, unit="pts", code="x", phase=POSTED,
                                 created_at=clock.now()))
        with pytest.raises(IntegrityError):
            db.write(fn)


# --- idempotency ---

def test_transfer_idempotency_key_applies_once(db, books):
    fund(db, books, 100)
    spec = TransferSpec(books.wallet, books.sink, 30, "spend", idempotency_key="k-1")
    first = post(db, books.ws, spec)
    again = post(db, books.ws, TransferSpec(books.wallet, books.sink, 30, "spend", idempotency_key="k-1"))
    assert first == again
    assert totals(db, books.wallet) == (30, 100, 0, 0)
    with pytest.raises(TransferKeyConflict):
        post(db, books.ws, TransferSpec(books.wallet, books.sink, 31, "spend", idempotency_key="k-1"))
    with pytest.raises(TransferKeyConflict):
        post(db, books.ws, TransferSpec(books.wallet, books.other, 30, "spend", idempotency_key="k-1"))
    with pytest.raises(TransferKeyConflict):  # the same transfer as a reservation is another transfer
        post(db, books.ws, TransferSpec(books.wallet, books.sink, 30, "spend", idempotency_key="k-1"), pending=True)
    assert totals(db, books.wallet) == (30, 100, 0, 0)
    assert_verified(db, books.ws)


def test_transfer_idempotency_keys_are_per_workspace(db, books):
    other = make_workspace(db, name="Other books")
    theirs = open_books(db, other.id)
    fund(db, books, 10)
    fund(db, theirs, 10)
    post(db, books.ws, TransferSpec(books.wallet, books.sink, 4, "spend", idempotency_key="same"))
    post(db, other.id, TransferSpec(theirs.wallet, theirs.sink, 4, "spend", idempotency_key="same"))
    assert available(db, books.wallet) == 6
    assert available(db, theirs.wallet) == 6


def test_a_key_repeated_inside_one_post_applies_once(db, books):
    fund(db, books, 100)
    ids = post(db, books.ws, TransferSpec(books.wallet, books.sink, 10, "spend", idempotency_key="dup"),
               TransferSpec(books.wallet, books.sink, 10, "spend", idempotency_key="dup"))
    assert ids[0] == ids[1]
    assert available(db, books.wallet) == 90
    assert_verified(db, books.ws)


def test_concurrent_posts_with_one_key_apply_once(db, books):
    fund(db, books, 1000)
    barrier = threading.Barrier(8)
    results, errors = [], []

    def worker():
        barrier.wait()
        try:
            results.append(post(db, books.ws, TransferSpec(books.wallet, books.sink, 7, "spend",
                                                           idempotency_key="race")))
        except Exception as exc:  # noqa: BLE001 - the test reports any
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({tuple(r) for r in results}) == 1
    assert available(db, books.wallet) == 993
    assert_verified(db, books.ws)


# --- two-phase ---

def test_pending_counts_against_the_balance_until_posted(db, books):
    fund(db, books, 100)
    [pid] = post(db, books.ws, TransferSpec(books.wallet, books.sink, 60, "hold"), pending=True)
    assert totals(db, books.wallet) == (0, 100, 60, 0)
    assert available(db, books.wallet) == 40
    with pytest.raises(ExceedsCredits):
        post(db, books.ws, TransferSpec(books.wallet, books.sink, 41, "spend"))
    with pytest.raises(ExceedsCredits):
        post(db, books.ws, TransferSpec(books.wallet, books.sink, 41, "hold"), pending=True)
    assert_verified(db, books.ws)
    resolution = db.write(lambda s: ledger.resolve_pending(s, pid, workspace_id=books.ws, code="capture").id)
    assert totals(db, books.wallet) == (60, 100, 0, 0)
    with db.read() as s:
        t = s.get(LedgerTransfer, resolution)
        assert (t.phase, t.pending_id, t.amount, t.code) == (POST_PENDING, pid, 60, "capture")
    assert_verified(db, books.ws)


def test_partial_post_returns_the_rest(db, books):
    fund(db, books, 100)
    [pid] = post(db, books.ws, TransferSpec(books.wallet, books.sink, 60, "hold"), pending=True)
    db.write(lambda s: ledger.resolve_pending(s, pid, workspace_id=books.ws, amount=25))
    assert totals(db, books.wallet) == (25, 100, 0, 0)
    assert available(db, books.wallet) == 75
    assert_verified(db, books.ws)


def test_void_returns_everything(db, books):
    fund(db, books, 100)
    [pid] = post(db, books.ws, TransferSpec(books.wallet, books.other, 60, "hold"), pending=True)
    assert totals(db, books.other) == (0, 0, 0, 60)
    assert available(db, books.other) == 0  # pending credits are not spendable on the receiving side
    rid = db.write(lambda s: ledger.resolve_pending(s, pid, workspace_id=books.ws, void=True, code="release").id)
    assert totals(db, books.wallet) == (0, 100, 0, 0)
    assert totals(db, books.other) == (0, 0, 0, 0)
    with db.read() as s:
        t = s.get(LedgerTransfer, rid)
        assert (t.phase, t.amount) == (VOID_PENDING, 60)
        assert s.get(LedgerTransfer, pid).phase == PENDING  # append-only: the pending row is never changed
    assert_verified(db, books.ws)


def test_a_pending_transfer_resolves_once(db, books):
    fund(db, books, 100)
    [pid] = post(db, books.ws, TransferSpec(books.wallet, books.sink, 60, "hold"), pending=True)
    db.write(lambda s: ledger.resolve_pending(s, pid, workspace_id=books.ws, amount=10))
    for kwargs in ({}, {"void": True}, {"amount": 5}):
        with pytest.raises(PendingAlreadyResolved):
            db.write(lambda s, kw=kwargs: ledger.resolve_pending(s, pid, workspace_id=books.ws, **kw))
    assert totals(db, books.wallet) == (10, 100, 0, 0)
    assert_verified(db, books.ws)


def test_bad_resolutions_are_refused(db, books):
    fund(db, books, 100)
    [pid] = post(db, books.ws, TransferSpec(books.wallet, books.sink, 60, "hold"), pending=True)
    [posted] = post(db, books.ws, TransferSpec(books.wallet, books.sink, 1, "spend"))
    with pytest.raises(AmountExceedsPending):
        db.write(lambda s: ledger.resolve_pending(s, pid, workspace_id=books.ws, amount=61))
    for bad in (0, -1):
        with pytest.raises(InvalidAmount):
            db.write(lambda s, bad=bad: ledger.resolve_pending(s, pid, workspace_id=books.ws, amount=bad))
    with pytest.raises(PendingNotFound):
        db.write(lambda s: ledger.resolve_pending(s, posted, workspace_id=books.ws))
    with pytest.raises(PendingNotFound):
        db.write(lambda s: ledger.resolve_pending(s, "lt_nope", workspace_id=books.ws))
    other = make_workspace(db, name="Not theirs")
    with pytest.raises(PendingNotFound):
        db.write(lambda s: ledger.resolve_pending(s, pid, workspace_id=other.id))
    assert totals(db, books.wallet) == (1, 100, 60, 0)
    assert_verified(db, books.ws)


def test_concurrent_resolutions_of_one_pending_transfer(db, books):
    """Two nodes capturing and releasing the same reservation: exactly one wins, the other is told so
    (never a 500 from the unique pending_id)."""
    fund(db, books, 100)
    [pid] = post(db, books.ws, TransferSpec(books.wallet, books.sink, 60, "hold"), pending=True)
    barrier = threading.Barrier(6)
    outcomes = []

    def worker(i):
        barrier.wait()
        try:
            db.write(lambda s: ledger.resolve_pending(s, pid, workspace_id=books.ws, void=i % 2 == 0,
                                                      amount=None if i % 2 == 0 else 20))
            outcomes.append("ok")
        except PendingAlreadyResolved:
            outcomes.append("already")
        except Exception as exc:  # noqa: BLE001
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already"] * 5 + ["ok"], outcomes
    d, c, dn, cn = totals(db, books.wallet)
    assert (c, dn, cn) == (100, 0, 0) and d in (0, 20)
    assert_verified(db, books.ws)
