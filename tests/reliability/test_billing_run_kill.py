"""The billing run killed with kill -9 in the middle, then run again (seed 002, issue 15): every subscription
is billed exactly once, invoice numbers have no gap and no repeat, the account balances equal the bills, and
the ledger verifies. On each database, with the real CLI in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

from sqlalchemy import func, select

from bench._world import subscriptions_world
from creditdesk import migrate
from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.subscription_models import Subscription
from creditdesk.db import Database
from creditdesk.ledger import service as ledger
from tests.reliability import summary

SUBSCRIPTIONS = 400
AS_OF = "2027-02-01"


def _billing_run(url: str, ws: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from creditdesk.cli import app; app()", "billing", "run",
                             "--as-of", AS_OF, "--workspace", ws, "--database-url", url, "--batch-size", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})


def _bills(db: Database, ws: str) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Invoice).where(Invoice.workspace_id == ws,
                                                                            Invoice.subscription_id.is_not(None)))


def test_a_billing_run_killed_mid_way_resumes_and_bills_each_subscription_once(bank_database):
    kind, url = bank_database
    db = Database(url)
    migrate.upgrade(db)
    ws = subscriptions_world(db, SUBSCRIPTIONS, 50)
    started = time.monotonic()
    child = _billing_run(url, ws)
    # Kill it once some batches are committed and before the end.
    deadline = time.monotonic() + 120
    while _bills(db, ws) < SUBSCRIPTIONS // 4 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    at_kill = _bills(db, ws)
    assert 0 < at_kill < SUBSCRIPTIONS, f"the kill came at {at_kill} bills of {SUBSCRIPTIONS}: not mid-way"
    again = _billing_run(url, ws)
    output = again.communicate(timeout=600)[0].decode()
    assert again.returncode == 0, output
    assert f"{SUBSCRIPTIONS - at_kill} bill(s) posted" in output, output
    third = _billing_run(url, ws)
    assert "0 bill(s) posted" in third.communicate(timeout=600)[0].decode()
    with db.read() as session:
        per_sub = dict(session.execute(select(Invoice.subscription_id, func.count()).where(
            Invoice.workspace_id == ws, Invoice.subscription_id.is_not(None)).group_by(Invoice.subscription_id)).all())
        numbers = sorted(session.scalars(select(Invoice.number).where(Invoice.workspace_id == ws)))
        due = session.scalar(select(func.count()).select_from(Subscription).where(
            Subscription.workspace_id == ws, Subscription.billed_through <= date.fromisoformat(AS_OF)))
        report = ledger.verify(session, workspace_id=ws)
    assert len(per_sub) == SUBSCRIPTIONS and set(per_sub.values()) == {1}
    assert numbers == [f"INV-{n:06d}" for n in range(1, SUBSCRIPTIONS + 1)]
    assert due == 0 and report.ok, report
    summary.add({"test": "billing run (kill -9)", "db": kind, "attempted": SUBSCRIPTIONS,
                 "acknowledged": SUBSCRIPTIONS, "refused": 0, "kills": 1, "violations": 0,
                 "seconds": round(time.monotonic() - started, 1),
                 "notes": f"killed at {at_kill} bills; the re-run billed {SUBSCRIPTIONS - at_kill}"})
    db.dispose()
