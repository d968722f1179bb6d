"""Billing runs (seed 002): bill every subscription due as of a day, in batches.

A subscription is due when it is active and a service still has days to bill on or before the day
(`subscriptions.billed_through <= as_of`). Each batch is one transaction: its subscriptions are locked with
their accounts, billed, and their `billed_through` moved past the day, all or nothing. Subscriptions of plain
accounts (no credit limit, no group, no pricing agreement) are billed set-wise (billing.bill_engine); the
others one by one (`subscriptions.bill_locked`), with every rule of a single bill. So:
- running it twice as of the same day bills nothing twice (what was billed is no longer due);
- a crash in the middle loses at most the batch under way, which was never committed; running again
  resumes where the committed batches stopped;
- a subscription refused by credit control (over the limit, no override, no preference paying first) is
  counted as refused, stays due, and does not stop the run (its own savepoint is rolled back).
The run's row (`billing_runs`) records what it billed, for the summary and GET /v1/billing-runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import bill_engine, subscriptions
from creditdesk.billing import subscription_schemas as s
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.subscription_models import BillingRun, Subscription
from creditdesk.db import Database
from creditdesk.errors import CreditdeskError
from creditdesk.ids import new_id
from creditdesk.pagination import Page, paginate

log = logging.getLogger(__name__)

BATCH_SIZE = 500


def _due(workspace_id: str | None, as_of: date):
    stmt = select(Subscription.id).where(Subscription.status == "active", Subscription.billed_through.is_not(None),
                                         Subscription.billed_through <= as_of)
    return stmt.where(Subscription.workspace_id == workspace_id) if workspace_id else stmt


def count_due(session: Session, as_of: date, *, workspace_id: str | None = None) -> int:
    return session.scalar(select(func.count()).select_from(_due(workspace_id, as_of).subquery()))


def _bill_batch(session: Session, ids: list[str], as_of: date, actor_for: Callable[[str], Actor],
                run: BillingRun) -> None:
    # Plain rows, locked (PostgreSQL) subscriptions first, then their accounts in id order; the ORM loads only
    # the few subscriptions the set-wise path leaves to bill_locked.
    subs = list(session.execute(select(*bill_engine.SUB_COLUMNS).where(Subscription.id.in_(ids))
                                .order_by(Subscription.id).with_for_update()))
    account_rows = {a.id: a for a in session.execute(
        select(*bill_engine.ACCOUNT_COLUMNS).where(BillingAccount.id.in_({sub.account_id for sub in subs}))
        .order_by(BillingAccount.id).with_for_update())}
    due = [sub for sub in subs
           if sub.status == "active" and sub.billed_through is not None and sub.billed_through <= as_of]
    plain = bill_engine.plain_accounts(session, list(account_rows.values()))
    fast = [sub for sub in due if sub.account_id in plain]
    slow = [sub.id for sub in due if sub.account_id not in plain]
    if fast:
        try:
            with session.begin_nested():
                done, left = bill_engine.bill_set(session, fast, as_of, actor_for=actor_for,
                                                  accounts_by_id=account_rows)
        except CreditdeskError:
            log.exception("billing run %s: the set-wise path refused a batch; billing it one by one", run.id)
            done, left = [], [sub.id for sub in fast]
        run.subscriptions_billed += len(done)
        run.bills += sum(1 for _, invoice_id, _ in done if invoice_id is not None)
        run.total += sum(total for *_, total in done)
        slow += left
    for sub_id in slow:
        sub = session.get(Subscription, sub_id)
        account = session.get(BillingAccount, sub.account_id)
        try:
            with session.begin_nested():
                invoice = subscriptions.bill_locked(session, sub, account, as_of, actor=actor_for(sub.workspace_id))
        except CreditdeskError as exc:
            log.info("billing run %s: subscription %s refused: %s", run.id, sub.number, exc.code)
            run.refused += 1
            continue
        run.subscriptions_billed += 1
        if invoice is not None:
            run.bills += 1
            run.total += invoice.total


def run(db: Database, as_of: date, *, workspace_id: str | None = None, actor_for: Callable[[str], Actor],
        batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None,
        run_actor: Actor | None = None) -> BillingRun:
    """Bill every subscription due as of `as_of` (see the module); returns the run as recorded."""
    def start(session) -> str:
        row = BillingRun(id=new_id("brun"), workspace_id=workspace_id, as_of=as_of, status="running",
                         subscriptions_billed=0, bills=0, refused=0, total=0,
                         actor_id=run_actor.user_id if run_actor else None, started_at=clock.now())
        session.add(row)
        return row.id
    run_id = db.write(start)
    after = ""
    while True:
        with db.read() as session:
            ids = list(session.scalars(_due(workspace_id, as_of).where(Subscription.id > after)
                                       .order_by(Subscription.id).limit(batch_size)))
        if not ids:
            break

        def batch(session, ids=ids) -> None:
            row = session.get(BillingRun, run_id)
            _bill_batch(session, ids, as_of, actor_for, row)
        db.write(batch)
        after = ids[-1]
        if progress is not None:
            progress(len(ids))

    def finish(session) -> BillingRun:
        row = session.get(BillingRun, run_id)
        row.status, row.finished_at = "completed", clock.now()
        if row.workspace_id is not None and run_actor is not None:
            audit.record(session, actor=run_actor, action="billing_run.complete", object_type="billing_run",
                         object_id=row.id, after=snapshot(row))
        session.flush()
        session.expunge(row)
        return row
    return db.write(finish)


def get_run(session: Session, workspace_id: str, run_id: str) -> BillingRun:
    from creditdesk.repository import get_in_workspace

    return get_in_workspace(session, BillingRun, workspace_id, run_id, label="billing run")


def list_runs(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None
              ) -> Page[BillingRun]:
    stmt = select(BillingRun).where(BillingRun.workspace_id == actor.workspace_id)
    return paginate(session, stmt, id_column=BillingRun.id, limit=limit, cursor=cursor, descending=True)


def run_out(row: BillingRun) -> s.BillingRunOut:
    return s.BillingRunOut(id=row.id, as_of=row.as_of, status=row.status,
                           subscriptions_billed=row.subscriptions_billed, bills=row.bills, refused=row.refused,
                           started_at=clock.aware(row.started_at), finished_at=clock.aware(row.finished_at))
