"""`creditdesk periods close`, the job that closes due periods, and `ledger verify` over period balances."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select, update
from typer.testing import CliRunner

from creditdesk.billing import postings
from creditdesk.billing.models import AccountingPeriod, PeriodBalance
from creditdesk.cli import app
from creditdesk.jobs import runner
from tests.billing.factories import Books


def cli(db, *args):
    url = db.url if db.is_sqlite else db.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(app, [*args, "--database-url", url])


def closed(db, ws_id) -> list[date]:
    with db.read() as s:
        return list(s.scalars(select(AccountingPeriod.end_date).where(AccountingPeriod.workspace_id == ws_id)
                              .order_by(AccountingPeriod.end_date)))


def test_periods_close_help():
    result = CliRunner().invoke(app, ["periods", "close", "--help"])
    assert result.exit_code == 0 and "--workspace" in result.output and "opening balance" in result.output


def test_cli_closes_due_periods_once_and_verify_checks_them(db, frozen_clock):
    frozen_clock.set(datetime(2026, 1, 20, tzinfo=UTC))
    books = Books(db, periods={"frequency": "monthly", "start_date": "2026-01-01"})
    account = books.account()
    db.write(lambda s: postings.post_account_entry(s, account, 1234, "debit", "adjustment"))
    frozen_clock.set(datetime(2026, 3, 2, tzinfo=UTC))
    result = cli(db, "periods", "close", "--workspace", books.ws.id)
    assert result.exit_code == 0, result.output
    assert "2 accounting period(s) closed" in result.output
    assert closed(db, books.ws.id) == [date(2026, 1, 31), date(2026, 2, 28)]
    again = cli(db, "periods", "close", "--workspace", books.ws.id)
    assert again.exit_code == 0 and "0 accounting period(s) closed" in again.output
    ok = cli(db, "ledger", "verify", "--workspace", books.ws.id)
    assert ok.exit_code == 0, ok.output
    assert "2 period opening balance(s) match the ledger" in ok.output
    db.write(lambda s: s.execute(update(PeriodBalance).where(PeriodBalance.account_id == account.id)
                                 .values(balance=0)))
    bad = cli(db, "ledger", "verify", "--workspace", books.ws.id)
    assert bad.exit_code == 1 and "the ledger says 1234" in bad.output


def test_cli_refuses_a_workspace_without_period_settings(db):
    books = Books(db)
    result = cli(db, "periods", "close", "--workspace", books.ws.id)
    assert result.exit_code == 1 and "no accounting period settings" in result.output


def test_the_jobs_close_due_periods(db, frozen_clock):
    frozen_clock.set(datetime(2026, 1, 20, tzinfo=UTC))
    books = Books(db, periods={"frequency": "quarterly", "start_date": "2026-01-01"})
    books.account()
    assert runner.close_due_periods(db, workspace_id=books.ws.id) == 0
    frozen_clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=UTC))
    assert runner.run_all(db)["periods_closed"] >= 1
    assert closed(db, books.ws.id) == [date(2026, 3, 31)]
    assert runner.close_due_periods(db, workspace_id=books.ws.id) == 0
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(PeriodBalance).where(
            PeriodBalance.workspace_id == books.ws.id)) == 1
