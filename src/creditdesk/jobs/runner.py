"""Background jobs: pack expiry, hold timeouts, the SMS purchase charges and message hand-overs whose
request died after its commit, webhook deliveries (retries and recoveries), and forgetting expired idempotency keys and login-throttle windows. Each
batch is its own transaction.

Safe on several nodes at once and safe to re-run: every batch re-checks, under the pack's ledger
account lock, that the pack or hold is still due, so a second node finds nothing left to do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from creditdesk import idempotency
from creditdesk.credits import expiry, repository
from creditdesk.db import Database
from creditdesk.sms import service as sms

log = logging.getLogger("creditdesk.jobs")


def expire_due_packs(db: Database, *, batch_size: int = 500, workspace_id: str | None = None,
                     progress: Callable[[int], None] | None = None) -> int:
    total = 0
    while True:
        with db.read() as session:
            ids = repository.due_pack_ids(session, limit=batch_size, workspace_id=workspace_id)
        if not ids:
            return total
        done = db.write(lambda session: expiry.expire_packs(session, ids))
        total += done
        if progress:
            progress(len(ids))


def release_timed_out_holds(db: Database, *, batch_size: int = 200, workspace_id: str | None = None,
                            progress: Callable[[int], None] | None = None) -> int:
    total = 0
    while True:
        released = db.write(lambda session: expiry.release_timed_out_holds(session, workspace_id=workspace_id,
                                                                           limit=batch_size))
        total += released
        if progress and released:
            progress(released)
        if released < batch_size:
            return total


def purge_idempotency_keys(db: Database, *, batch_size: int = idempotency.PURGE_BATCH) -> int:
    """Forget idempotency keys past their retention, a batch per transaction so that a backlog never
    holds the write lock (or a long PostgreSQL transaction) for long."""
    total = 0
    while True:
        purged = db.write(lambda session: idempotency.purge_expired(session, limit=batch_size))
        total += purged
        if purged < batch_size:
            return total


def bill_due_subscriptions(db: Database) -> int:
    """Bill every subscription due as of today (billing.billing_runs: nothing twice, resumable), as the system."""
    from creditdesk import clock
    from creditdesk.audit import Actor
    from creditdesk.billing import billing_runs

    with db.read() as session:
        if not billing_runs.count_due(session, clock.now().date()):
            return 0  # no run row for nothing: the jobs run every few seconds
    return billing_runs.run(db, clock.now().date(), actor_for=Actor.system).subscriptions_billed


def close_due_periods(db: Database, *, workspace_id: str | None = None, actor_for=None,
                      progress: Callable[[int], None] | None = None) -> int:
    """Close every accounting period that is over, earliest first, one period per transaction (billing.periods).
    `actor_for(workspace_id)`: who closes (default: the system). Safe on several nodes: each closing
    re-checks under the billing settings row's lock what is still due."""
    from creditdesk.audit import Actor
    from creditdesk.billing import periods

    with db.read() as session:
        workspaces = [workspace_id] if workspace_id else periods.workspaces_with_periods(session)
    total = 0
    for ws in workspaces:
        actor = actor_for(ws) if actor_for else Actor.system(ws)
        while db.write(lambda session: periods.close_due_period(session, ws, actor=actor)) is not None:
            total += 1
            if progress:
                progress(1)
    return total


def send_expiry_emails(db: Database) -> int:
    """The expiry warnings and notices that are due (notify.expiry_emails); how many were sent. A failure
    here must not stop the other jobs: it is logged and the next run retries."""
    from creditdesk.notify import expiry_emails

    try:
        return expiry_emails.send_due(db)["sent"]
    except Exception:
        log.exception("expiry emails failed")
        return 0


def send_due_communications(db: Database) -> int:
    """Bill communications left queued by a request that died after its commit, or due for a retry
    (notify.communications); a failure is logged and the next run retries."""
    from creditdesk.notify import communications

    try:
        return communications.complete_due(db)
    except Exception:
        log.exception("bill communications failed")
        return 0


def emit_pack_expiring(db: Database) -> int:
    """pack.expiring events that are due (webhooks.expiring); a failure is logged and the next run retries."""
    from creditdesk.webhooks import expiring

    try:
        return expiring.emit_all_due(db)
    except Exception:
        log.exception("pack.expiring events failed")
        return 0


def deliver_webhooks(db: Database) -> int:
    """Webhook deliveries due (retries, and those whose process died after the commit): webhooks.delivery.
    A failure here must not stop the other jobs: logged, and the next run retries."""
    from creditdesk.webhooks import delivery

    try:
        return delivery.deliver_due(db)
    except Exception:
        log.exception("webhook deliveries failed")
        return 0


def run_all(db: Database) -> dict:
    # External calls first: a message still to hand over must not see its hold time out in this very run.
    result = {"sms_calls_completed": sms.complete_due_calls(db),
              "holds_released": release_timed_out_holds(db), "packs_expired": expire_due_packs(db)}
    from creditdesk.billing import payment_preferences  # card charges made first, left due by a crash

    result["card_charges_completed"] = payment_preferences.complete_due_charges(db)
    result["subscriptions_billed"] = bill_due_subscriptions(db)
    result["periods_closed"] = close_due_periods(db)
    result["expiry_emails"] = send_expiry_emails(db)
    result["communications_completed"] = send_due_communications(db)
    result["pack_expiring_events"] = emit_pack_expiring(db)
    result["webhooks_delivered"] = deliver_webhooks(db)  # after the jobs above: their events are handed over
    result["login_throttle_purged"] = purge_login_throttle(db)
    refresh_planner_statistics(db)
    result["idempotency_keys_purged"] = purge_idempotency_keys(db)
    return result


def purge_login_throttle(db: Database) -> int:
    """Failed-login counters whose window is over: without this the table would keep every email and
    address ever tried."""
    from creditdesk.config import get_settings
    from creditdesk.parties import throttle

    window = get_settings().login_failure_window_seconds
    return db.write(lambda session: throttle.purge_expired(session, longest_window_seconds=window))


def refresh_planner_statistics(db: Database) -> None:
    """SQLite's planner picks indexes by statistics it never gathers on its own; without them the pack
    report can choose a scan over every pack. `PRAGMA optimize` refreshes what has gone stale (a no-op
    most of the time), bounded by analysis_limit. PostgreSQL's autovacuum does this itself."""
    if not db.is_sqlite:
        return

    def optimize(session) -> None:
        conn = session.connection()
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("PRAGMA optimize")
    db.write(optimize)


class JobLoop:
    """Runs the jobs every `interval` seconds in a daemon thread (started by `creditdesk serve`)."""

    def __init__(self, db: Database, interval: float):
        self.db = db
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="creditdesk-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                result = run_all(self.db)
                if any(result.values()):
                    log.info("jobs: %s", result)
            except Exception:  # a failed run is retried at the next tick
                log.exception("background jobs failed")
