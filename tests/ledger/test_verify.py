"""`verify` recomputes every balance from the transfers, and `creditdesk ledger verify` reports it.

Corruption is always made in a workspace of its own, so the other tests' books stay clean.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text, update
from typer.testing import CliRunner

from creditdesk.cli import app
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerAccount, LedgerTransfer
from creditdesk.ledger.service import TransferSpec
from tests.conftest import make_workspace
from tests.ledger.test_service import fund, open_books, post


def verify(db, ws):
    with db.read() as s:
        return ledger.verify(s, workspace_id=ws)


def cli(db, *args):
    result = CliRunner().invoke(app, [*args, "--database-url", db.url])
    return result


def busy_books(db, name="Verify"):
    """A workspace with posted, pending, posted-pending and voided transfers."""
    ws = make_workspace(db, name=name)
    books = open_books(db, ws.id)
    fund(db, books, 100)
    fund(db, books, 10, books.other)
    post(db, ws.id, TransferSpec(books.wallet, books.sink, 30, "spend"))
    [p1] = post(db, ws.id, TransferSpec(books.wallet, books.sink, 20, "hold"), pending=True)
    [p2] = post(db, ws.id, TransferSpec(books.wallet, books.other, 15, "hold"), pending=True)
    [p3] = post(db, ws.id, TransferSpec(books.wallet, books.sink, 5, "hold"), pending=True)
    db.write(lambda s: ledger.resolve_pending(s, p1, workspace_id=ws.id, amount=12))
    db.write(lambda s: ledger.resolve_pending(s, p2, workspace_id=ws.id, void=True))
    return ws, books, p3


def test_verify_is_clean_on_honest_books(db):
    ws, books, _ = busy_books(db)
    report = verify(db, ws.id)
    assert report.ok, report.problems
    assert report.accounts_checked == 4
    assert report.transfers_checked == 8
    with db.read() as s:
        assert ledger.recomputed_totals(s, workspace_id=ws.id)[books.wallet] == (42, 100, 5, 0)
        wallet = s.get(LedgerAccount, books.wallet)
        assert (wallet.debits_posted, wallet.credits_posted, wallet.debits_pending, wallet.credits_pending) == (
            42, 100, 5, 0)


def test_verify_catches_a_corrupted_cached_balance(db):
    ws, books, _ = busy_books(db, "Corrupt cache")
    db.write(lambda s: s.execute(update(LedgerAccount).where(LedgerAccount.id == books.wallet)
                                 .values(credits_posted=LedgerAccount.credits_posted + 7)))
    report = verify(db, ws.id)
    assert not report.ok
    assert any(books.wallet in p and "cached totals" in p for p in report.problems), report.problems
    # The cached numbers no longer balance against the other accounts of the unit either.
    assert any("unit pts" in p and "!=" in p for p in report.problems), report.problems


def test_verify_catches_a_pending_total_that_drifted(db):
    ws, books, _ = busy_books(db, "Corrupt pending")
    db.write(lambda s: s.execute(update(LedgerAccount).where(LedgerAccount.id == books.wallet)
                                 .values(debits_pending=0)))
    problems = verify(db, ws.id).problems
    assert any(books.wallet in p and "debits 42/0" in p and "recomputed debits 42/5" in p for p in problems), problems


def test_verify_catches_an_account_below_zero(db):
    ws, books, _ = busy_books(db, "Overdrawn")
    # A transfer slipped in past the no-overdraft check, with the cache kept consistent with it.
    db.write(lambda s: s.execute(text(
        "INSERT INTO ledger_transfers (id, workspace_id, debit_account_id, credit_account_id, amount, unit, code, "
        "phase, created_at) VALUES ('lt_forged', :ws, :d, :c, 500, 'pts', 'spend', 'posted', :at)"),
        {"ws": ws.id, "d": books.wallet, "c": books.sink, "at": "2026-01-01 00:00:00"}))
    db.write(lambda s: s.execute(update(LedgerAccount).where(LedgerAccount.id == books.wallet)
                                 .values(debits_posted=LedgerAccount.debits_posted + 500)))
    problems = verify(db, ws.id).problems
    assert any(books.wallet in p and "below zero" in p for p in problems), problems
    assert not any("cached totals" in p for p in problems), problems


def test_verify_catches_a_transfer_between_units(db):
    ws, books, _ = busy_books(db, "Units")
    db.write(lambda s: s.execute(update(LedgerTransfer).where(LedgerTransfer.workspace_id == ws.id,
                                                              LedgerTransfer.code == "spend")
                                 .values(unit="eur")))
    problems = verify(db, ws.id).problems
    assert any("in eur moves between accounts of pts and pts" in p for p in problems), problems


def test_verify_catches_a_capture_larger_than_its_reservation(db):
    ws, books, _ = busy_books(db, "Overcapture")
    db.write(lambda s: s.execute(update(LedgerTransfer).where(LedgerTransfer.workspace_id == ws.id,
                                                              LedgerTransfer.phase == "post_pending")
                                 .values(amount=25)))
    problems = verify(db, ws.id).problems
    assert any("posts 25, more than its pending 20" in p for p in problems), problems


def test_verify_of_one_workspace_ignores_another(db):
    bad, books, _ = busy_books(db, "Broken")
    good, _, _ = busy_books(db, "Fine")
    db.write(lambda s: s.execute(update(LedgerAccount).where(LedgerAccount.id == books.other)
                                 .values(credits_posted=LedgerAccount.credits_posted + 1)))
    assert verify(db, good.id).ok
    assert not verify(db, bad.id).ok


# --- the command ---

def test_cli_ledger_verify_exits_0_when_clean(db):
    ws, _, _ = busy_books(db, "CLI clean")
    result = cli(db, "ledger", "verify", "--workspace", ws.id)
    assert result.exit_code == 0, result.output
    assert "Ledger OK" in result.output
    assert "4 accounts, 8 transfers" in result.output


def test_cli_ledger_verify_exits_1_and_prints_the_problem(db):
    ws, books, _ = busy_books(db, "CLI broken")
    db.write(lambda s: s.execute(update(LedgerAccount).where(LedgerAccount.id == books.wallet)
                                 .values(debits_posted=LedgerAccount.debits_posted - 2)))
    result = cli(db, "ledger", "verify", "--workspace", ws.id)
    assert result.exit_code == 1, result.output
    assert books.wallet in result.output
    assert "cached totals" in result.output
    assert "problem(s)" in result.output
    assert "Ledger OK" not in result.output


@pytest.mark.parametrize("args", [["ledger", "verify", "--help"]])
def test_cli_ledger_verify_explains_itself(args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0
    assert "Exits 1" in result.output
