"""Failed-login counters in the database (issue 10, F10/F12): fixed windows per scope, shared by every
worker because they live in the database, and purged by the jobs."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import func, select

from creditdesk.config import Settings
from creditdesk.jobs import runner
from creditdesk.parties import throttle
from creditdesk.parties.models import LoginThrottle
from creditdesk.parties.throttle import Limit


def unique(scope: str, max_failures: int = 3, window: int = 300) -> Limit:
    return Limit(scope, os.urandom(8).hex(), max_failures, window)


def fail(db, limits, times: int = 1) -> None:
    for _ in range(times):
        db.write(lambda s: throttle.record_failure(s, limits))


def wait_for(db, limits) -> tuple[int, str | None]:
    with db.read() as session:
        return throttle.retry_after(session, limits)


def stored(db, limit: Limit) -> LoginThrottle | None:
    with db.read() as session:
        row = session.get(LoginThrottle, (limit.scope, limit.key))
        if row is not None:
            session.expunge(row)
        return row


def test_a_full_window_refuses_until_it_ends(db, frozen_clock):
    account, address = unique("account"), unique("address", max_failures=10)
    fail(db, [account, address], times=2)
    assert wait_for(db, [account, address]) == (0, None)
    fail(db, [account, address])
    assert stored(db, account).failures == 3
    assert wait_for(db, [account, address]) == (301, "account")
    frozen_clock.advance(seconds=200)
    assert wait_for(db, [account, address]) == (101, "account")
    frozen_clock.advance(seconds=100)
    assert wait_for(db, [account, address]) == (0, None)
    fail(db, [account])  # a new window starts at one
    row = stored(db, account)
    assert row.failures == 1 and row.window_start == frozen_clock.now()


def test_the_longest_wait_of_the_full_scopes_wins(db, frozen_clock):
    account, glob = unique("account", window=300), unique("global", max_failures=2, window=60)
    fail(db, [account], times=3)
    fail(db, [glob], times=2)
    assert wait_for(db, [account, glob]) == (301, "account")
    assert wait_for(db, [glob]) == (61, "global")


def test_a_window_starting_in_the_future_is_over(db, frozen_clock):
    account = unique("account")
    fail(db, [account], times=3)
    frozen_clock.advance(seconds=-30)  # the clock went back (or another node's clock is behind)
    assert wait_for(db, [account]) == (0, None)
    fail(db, [account])
    assert stored(db, account).failures == 1


def test_forget_clears_one_counter(db, frozen_clock):
    account, address = unique("account"), unique("address")
    fail(db, [account, address], times=3)
    db.write(lambda s: throttle.forget(s, account))
    assert stored(db, account) is None
    assert stored(db, address).failures == 3


def test_login_limits_hash_the_email_and_address_and_share_one_global_key():
    settings = Settings(login_failures_per_account=4, login_failures_per_address=9, login_failures_per_minute=50,
                        login_failure_window_seconds=120)
    limits = throttle.login_limits(settings, email=" Boss@Example.com ", address="10.0.0.1")
    by_scope = {lim.scope: lim for lim in limits}
    assert by_scope["account"] == throttle.login_limits(settings, email="boss@example.com", address="x")[0]
    assert "boss" not in by_scope["account"].key and "10.0.0" not in by_scope["address"].key
    assert (by_scope["account"].max_failures, by_scope["account"].window_seconds) == (4, 120)
    assert (by_scope["address"].max_failures, by_scope["global"].max_failures) == (9, 50)
    assert by_scope["global"].key == "all" and by_scope["global"].window_seconds == 60


def test_the_jobs_purge_windows_that_are_over(db, frozen_clock):
    old, recent = unique("account"), unique("account")
    fail(db, [old])
    frozen_clock.advance(seconds=3600)
    fail(db, [recent])
    result = runner.run_all(db)
    assert result["login_throttle_purged"] >= 1
    assert stored(db, old) is None and stored(db, recent) is not None
    with db.read() as session:
        cutoff = frozen_clock.now() - timedelta(seconds=300)
        assert session.scalar(select(func.count()).select_from(LoginThrottle)
                              .where(LoginThrottle.window_start < cutoff)) == 0
