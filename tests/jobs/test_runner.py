"""The background jobs as `serve` runs them: one pass does hold timeouts, expiry and (SQLite) planner
statistics, and a second pass finds nothing left to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from creditdesk.jobs import runner
from tests.credits.helpers import grant, make_shop

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_run_all_expires_and_refreshes_statistics(db, frozen_clock):
    shop = make_shop(db)
    grant(db, shop.actor, "office", shop.berlin, 10, expires_at=T0 + timedelta(minutes=1))
    frozen_clock.advance(minutes=5)
    first = runner.run_all(db)
    assert first["packs_expired"] >= 1
    assert runner.run_all(db)["packs_expired"] == 0
    if db.is_sqlite:
        with db.read() as s:
            # PRAGMA optimize has analysed the tables it found worth analysing.
            assert s.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar() == 1
