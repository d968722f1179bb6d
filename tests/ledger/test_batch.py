"""ledger.batch: many operations planned in memory, refused whole or written with one statement per table."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from creditdesk.ledger import service as ledger
from creditdesk.ledger.batch import TRANSFER_COLUMNS, Batch, Operation
from creditdesk.ledger.errors import (
    AmountExceedsPending,
    ExceedsCredits,
    InvalidAmount,
    PendingAlreadyResolved,
    PendingNotFound,
    UnitMismatch,
)
from creditdesk.ledger.models import DEBITS_MUST_NOT_EXCEED_CREDITS, LedgerAccount, LedgerTransfer
from creditdesk.ledger.service import TransferSpec
from tests.conftest import make_workspace
from tests.ledger.test_service import Books, assert_verified, fund, open_books, post, totals


def transfer_count(db, ws: str) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(LedgerTransfer).where(LedgerTransfer.workspace_id == ws))


@contextmanager
def statements(db):
    """Every statement sent to the database meanwhile, as (SQL, executemany?)."""
    seen: list[tuple[str, bool]] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, executemany))
    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)


def test_the_batch_writes_every_column_of_a_transfer():
    assert TRANSFER_COLUMNS == tuple(c.key for c in LedgerTransfer.__table__.columns)


@pytest.fixture
def books(db, workspace) -> Books:
    b = open_books(db, workspace.id)
    fund(db, b, 100)
    return b


def _refused(db, books: Books, build) -> Exception:
    """Apply one operation in a batch; it must be refused in memory: nothing is written, not even a statement."""
    def fn(s):
        batch = Batch(s)
        op = build(Operation(books.ws, operation_id="op_refused"))
        batch.load([op])  # the reads
        with statements(db) as seen:
            error = batch.try_apply(op)
            batch.write()
        assert seen == []
        return error
    before = transfer_count(db, books.ws), totals(db, books.wallet)
    error = db.write(fn)
    assert (transfer_count(db, books.ws), totals(db, books.wallet)) == before
    return error


def test_an_overdraft_on_a_flagged_account_is_refused_in_memory(db, books):
    error = _refused(db, books, lambda op: op.post(TransferSpec(books.wallet, books.sink, 60, "spend"),
                                                   TransferSpec(books.wallet, books.other, 41, "move")))
    assert isinstance(error, ExceedsCredits) and error.code == "insufficient_credits"
    # A pending debit counts too.
    error = _refused(db, books, lambda op: op.pend(TransferSpec(books.wallet, books.sink, 101, "hold")))
    assert isinstance(error, ExceedsCredits)


@pytest.mark.parametrize("amount", [0, -3, True, 2.0])
def test_amounts_other_than_positive_integers_are_refused_in_memory(db, books, amount):
    error = _refused(db, books, lambda op: op.post(TransferSpec(books.wallet, books.sink, 5, "spend"),
                                                   TransferSpec(books.source, books.wallet, amount, "fund")))
    assert isinstance(error, InvalidAmount)


def test_units_unknown_accounts_and_other_workspaces_are_refused_in_memory(db, books):
    eur = open_books(db, books.ws, "eur")
    error = _refused(db, books, lambda op: op.post(TransferSpec(books.wallet, eur.wallet, 5, "move")))
    assert isinstance(error, UnitMismatch)
    error = _refused(db, books, lambda op: op.post(TransferSpec(books.wallet, "la_nope", 5, "move")))
    assert isinstance(error, PendingNotFound) and error.code == "ledger_account_not_found"
    theirs = open_books(db, make_workspace(db, name="Theirs").id)
    error = _refused(db, books, lambda op: op.post(TransferSpec(books.wallet, theirs.wallet, 5, "move")))
    assert isinstance(error, PendingNotFound) and error.code == "ledger_account_not_found"


def test_resolving_twice_or_more_than_pending_is_refused_in_memory(db, books):
    [pid] = post(db, books.ws, TransferSpec(books.wallet, books.sink, 30, "hold"), pending=True)
    error = _refused(db, books, lambda op: op.resolve(pid, amount=31))
    assert isinstance(error, AmountExceedsPending)
    error = _refused(db, books, lambda op: op.resolve(pid, amount=10).resolve(pid, void=True))
    assert isinstance(error, PendingAlreadyResolved)
    db.write(lambda s: ledger.resolve_pending(s, pid, workspace_id=books.ws, void=True))
    error = _refused(db, books, lambda op: op.resolve(pid, amount=5))
    assert isinstance(error, PendingAlreadyResolved)
    assert totals(db, books.wallet) == (0, 100, 0, 0)
    assert_verified(db, books.ws)


def test_a_refused_operation_adds_nothing_and_the_others_are_written(db, books):
    def fn(s):
        batch = Batch(s)
        ops = [Operation(books.ws, operation_id="op_a").post(TransferSpec(books.wallet, books.sink, 70, "spend")),
               # Would overdraw after op_a: refused whole, its first leg included.
               Operation(books.ws, operation_id="op_b").post(TransferSpec(books.wallet, books.other, 10, "move"),
                                                            TransferSpec(books.wallet, books.sink, 25, "spend")),
               Operation(books.ws, operation_id="op_c").pend(TransferSpec(books.wallet, books.other, 30, "hold")),
               Operation(books.ws, operation_id="op_d").post(TransferSpec(books.wallet, books.sink, 1, "spend"))]
        batch.load(ops)
        errors = [batch.try_apply(op) for op in ops]
        batch.write()
        return [type(e).__name__ if e else None for e in errors]
    assert db.write(fn) == [None, "ExceedsCredits", None, "ExceedsCredits"]
    with db.read() as s:
        ops = s.scalars(select(LedgerTransfer.operation_id).where(LedgerTransfer.workspace_id == books.ws,
                                                                  LedgerTransfer.code != "fund")
                        .order_by(LedgerTransfer.id)).all()
    assert ops == ["op_a", "op_c"]
    assert totals(db, books.wallet) == (70, 100, 30, 0)
    assert totals(db, books.other) == (0, 0, 0, 30)
    assert_verified(db, books.ws)


def test_a_batch_of_many_postings_is_one_statement_per_table(db, books):
    n = 40

    def fn(s):
        batch = Batch(s)
        ops = []
        for i in range(n):
            op = Operation(books.ws, operation_id=f"many_op_{i}")
            new = op.open_account(unit="pts", code="wallet", flags=DEBITS_MUST_NOT_EXCEED_CREDITS)
            op.post(TransferSpec(books.source, new, 3, "fund"), TransferSpec(new, books.sink, 1, "spend"),
                    TransferSpec(books.wallet, books.other, 1, "move"))
            op.pend(TransferSpec(books.wallet, books.sink, 1, "hold"))
            ops.append(op)
        batch.load(ops)
        with statements(db) as seen:
            for op in ops:
                assert batch.try_apply(op) is None
            batch.write()
        return seen
    seen = db.write(fn)
    written = [(sql.split()[0] + " " + sql.split()[2 if sql.startswith("INSERT") else 1], many) for sql, many in seen]
    assert written == [("INSERT ledger_accounts", True), ("INSERT ledger_transfers", True),
                       ("UPDATE ledger_accounts", True)]
    assert transfer_count(db, books.ws) == 1 + 4 * n
    assert totals(db, books.wallet) == (n, 100, n, 0)
    assert_verified(db, books.ws)


def test_posting_keeps_the_sessions_accounts_current(db, books):
    def fn(s):
        wallet = s.get(LedgerAccount, books.wallet)
        ledger.post(s, [TransferSpec(books.wallet, books.sink, 7, "spend")], workspace_id=books.ws,
                    locked={wallet.id: wallet})
        assert wallet not in s.dirty  # the batch wrote the row; the ORM has nothing left to send
        return wallet.available
    assert db.write(fn) == 93


# One step of a random batch: (kind, account index, account index, amount).
_steps = st.lists(st.tuples(st.sampled_from(["post", "pend", "capture", "void"]), st.integers(0, 3),
                            st.integers(0, 3), st.integers(-1, 40)), min_size=1, max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(_steps, min_size=1, max_size=5), min_size=1, max_size=3))
def test_totals_equal_verify_after_random_batches(db, workspace, batches):
    b = open_books(db, workspace.id)
    fund(db, b, 50)
    fund(db, b, 50, b.other)
    names = [b.source, b.wallet, b.other, b.sink]
    for ops_steps in batches:
        def fn(s, ops_steps=ops_steps):
            open_pendings = [t for (t,) in s.execute(select(LedgerTransfer.id).where(
                LedgerTransfer.workspace_id == b.ws, LedgerTransfer.phase == "pending"))]
            batch = Batch(s)
            for steps in ops_steps:
                op = Operation(b.ws)
                for kind, d, c, amount in steps:
                    if kind in ("post", "pend") and d != c:
                        spec = TransferSpec(names[d], names[c], amount, kind)
                        op.post(spec) if kind == "post" else op.pend(spec)
                    elif kind in ("capture", "void") and open_pendings:
                        pid = open_pendings[(d + c) % len(open_pendings)]
                        op.resolve(pid, void=kind == "void", amount=None if amount % 3 == 0 else amount)
                batch.try_apply(op)
            batch.write()
        db.write(fn)
        assert_verified(db, b.ws)
