"""`creditdesk invoices export` (CSV to stdout or a file, filters, --help) and `ledger verify` over invoices."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from sqlalchemy import update
from typer.testing import CliRunner

from creditdesk.billing.invoice_models import Invoice
from creditdesk.cli import app
from tests.billing.factories import Shop
from tests.billing.test_cli_jobs import cli


def test_export_help():
    result = CliRunner().invoke(app, ["invoices", "export", "--help"])
    assert result.exit_code == 0
    for option in ("--workspace", "--output", "--status", "--overdue", "--due-before", "--customer"):
        assert option in result.output


def test_export_to_stdout_and_file_with_filters(db, frozen_clock, tmp_path):
    frozen_clock.set(datetime(2026, 3, 1, tzinfo=UTC))
    shop = Shop(db)
    account = shop.account()
    old = shop.posted(account, [("hours", "1.5")], issue_date=date(2026, 1, 1))
    shop.posted(account, [("widget", 2)])
    shop.invoice(account, [("widget", 1)])
    result = cli(db, "invoices", "export", "--workspace", shop.ws.id)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["status"] for r in rows] == ["posted", "posted", "draft"]
    assert rows[0]["number"] == "INV-000001" and rows[0]["total"] == "247.50" and rows[0]["overdue"] == "yes"
    assert rows[0]["account_number"] == account.number
    out = tmp_path / "overdue.csv"
    result = cli(db, "invoices", "export", "--workspace", shop.ws.id, "--overdue", "--output", str(out))
    assert result.exit_code == 0 and "1 invoice(s) written" in result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == [old.id]
    bad = cli(db, "invoices", "export", "--workspace", shop.ws.id, "--due-before", "March")
    assert bad.exit_code == 1


def test_ledger_verify_checks_invoices(db):
    shop = Shop(db)
    account = shop.account()
    inv = shop.posted(account)
    shop.pay(account, 1000)
    ok = cli(db, "ledger", "verify", "--workspace", shop.ws.id)
    assert ok.exit_code == 0 and "1 invoice(s) agree" in ok.output, ok.output
    # A broken cached figure (the check constraint keeps due = total - paid - credited, so both move).
    db.write(lambda s: s.execute(update(Invoice).where(Invoice.id == inv.id).values(
        amount_paid=0, amount_due=Invoice.total)))
    bad = cli(db, "ledger", "verify", "--workspace", shop.ws.id)
    assert bad.exit_code == 1 and "its allocations say paid 1000" in bad.output
