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
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from creditdesk import audit, clock, idempotency
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import bill_engine, subscriptions
from creditdesk.billing import subscription_schemas as s
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.subscription_models import BillingRun, Subscription
from creditdesk.db import Database
from creditdesk.config import get_settings
from creditdesk.errors import Conflict, CreditdeskError, NotFound
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


@dataclass
class _Outcome:
    """What one batch did, per workspace: (subscription id, bill id or None) billed, and the refusals."""
    billed: dict[str, list[list]] = field(default_factory=dict)
    refused: dict[str, list[dict]] = field(default_factory=dict)


def _bill_batch(session: Session, ids: list[str], as_of: date, actor_for: Callable[[str], Actor],
                run: BillingRun) -> _Outcome:
    # Plain rows, locked (PostgreSQL) subscriptions first, then their accounts in id order; the ORM loads only
    # the few subscriptions the set-wise path leaves to bill_locked.
    outcome = _Outcome()
    subs = list(session.execute(select(*bill_engine.SUB_COLUMNS).where(Subscription.id.in_(ids))
                                .order_by(Subscription.id).with_for_update()))
    workspace_of = {sub.id: sub.workspace_id for sub in subs}
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
        for sub_id, invoice_id, _total in done:
            outcome.billed.setdefault(workspace_of[sub_id], []).append([sub_id, invoice_id])
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
            outcome.refused.setdefault(sub.workspace_id, []).append(
                {"subscription_id": sub.id, "number": sub.number, "code": exc.code, "message": exc.message})
            continue
        run.subscriptions_billed += 1
        outcome.billed.setdefault(sub.workspace_id, []).append([sub.id, invoice.id if invoice is not None else None])
        if invoice is not None:
            run.bills += 1
            run.total += invoice.total
    # What the batch billed and refused, per workspace, in its audit: the run's page lists them from there.
    for workspace_id in sorted(set(outcome.billed) | set(outcome.refused)):
        audit.record(session, actor=actor_for(workspace_id), action="billing_run.batch", object_type="billing_run",
                     object_id=run.id, after={"as_of": as_of, "billed": outcome.billed.get(workspace_id, []),
                                              "refused": outcome.refused.get(workspace_id, [])})
    return outcome


@dataclass(frozen=True)
class RunKey:
    """The key a run is started under, once (an API Idempotency-Key, a back-office form's one-time key): the
    same key and request answer the first run's stored answer and start nothing; another request under it is
    refused (IdempotencyKeyReused). `answer(run)` is what is stored for replays: (status, body)."""
    caller: str
    key: str
    fingerprint: str
    method: str
    path: str
    answer: Callable[[BillingRun], tuple[int, str]]


def _keep_claim(session: Session, claim: idempotency.Claim) -> None:
    """Push the in-flight claim's lock on while the run goes on (a run outlasts the lock): a retry meanwhile is
    told the run is in progress rather than taking the key over."""
    now = clock.now()
    updated = session.execute(update(idempotency.IdempotencyKey).where(
        idempotency.IdempotencyKey.workspace_id == claim.workspace_id,
        idempotency.IdempotencyKey.caller == claim.caller, idempotency.IdempotencyKey.key == claim.key,
        idempotency.IdempotencyKey.owner == claim.owner, idempotency.IdempotencyKey.state == "in_flight",
    ).values(locked_until=now + timedelta(seconds=get_settings().idempotency_lock_seconds))).rowcount
    if updated != 1:
        raise Conflict("This run's Idempotency-Key was taken over by a retry; this run stopped.",
                       code="idempotency_key_taken_over")


def run(db: Database, as_of: date, *, workspace_id: str | None = None, actor_for: Callable[[str], Actor],
        batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None,
        run_actor: Actor | None = None, key: RunKey | None = None) -> BillingRun | idempotency.Replay:
    """Bill every subscription due as of `as_of` (see the module); returns the run as recorded.

    Under a `key` (a workspace's run): the key is claimed in the transaction that records the run, kept
    while it runs, and the answer stored in the transaction that finishes it. A key already answered
    returns its `idempotency.Replay` and starts nothing; a key whose run is still going raises
    IdempotencyInProgress; another request under the key, IdempotencyKeyReused. A run that fails midway
    is marked failed and its key freed: running it again resumes (what was billed is not due any more)."""
    if key is not None and workspace_id is None:
        raise ValueError("a run under a key is a workspace's run")

    def start(session) -> tuple[str, idempotency.Claim | None] | idempotency.Replay:
        claim = None
        if key is not None:
            claimed = idempotency.claim_in(session, workspace_id=workspace_id, caller=key.caller, key=key.key,
                                           fingerprint=key.fingerprint, method=key.method, path=key.path)
            if isinstance(claimed, idempotency.Replay):
                return claimed
            claim = claimed
        row = BillingRun(id=new_id("brun"), workspace_id=workspace_id, as_of=as_of, status="running",
                         subscriptions_billed=0, bills=0, refused=0, total=0,
                         actor_id=run_actor.user_id if run_actor else None, started_at=clock.now())
        session.add(row)
        if run_actor is not None and workspace_id is not None:
            audit.record(session, actor=run_actor, action="billing_run.start", object_type="billing_run",
                         object_id=row.id, after={"as_of": as_of})
        return row.id, claim
    started = db.write(start)
    if isinstance(started, idempotency.Replay):
        return started
    run_id, claim = started
    try:
        after = ""
        while True:
            with db.read() as session:
                ids = list(session.scalars(_due(workspace_id, as_of).where(Subscription.id > after)
                                           .order_by(Subscription.id).limit(batch_size)))
            if not ids:
                break

            def batch(session, ids=ids) -> None:
                if claim is not None:
                    _keep_claim(session, claim)
                row = session.get(BillingRun, run_id)
                _bill_batch(session, ids, as_of, actor_for, row)
            db.write(batch)
            after = ids[-1]
            if progress is not None:
                progress(len(ids))
    except BaseException:
        log.exception("billing run %s failed", run_id)
        _failed(db, run_id, claim)
        raise

    def finish(session) -> BillingRun:
        row = session.get(BillingRun, run_id)
        row.status, row.finished_at = "completed", clock.now()
        if row.workspace_id is not None and run_actor is not None:
            audit.record(session, actor=run_actor, action="billing_run.complete", object_type="billing_run",
                         object_id=row.id, after=snapshot(row))
        session.flush()
        if claim is not None:
            status, body = key.answer(row)
            idempotency.complete(session, claim, status=status, body=body)
        session.expunge(row)
        return row
    return db.write(finish)


def _failed(db: Database, run_id: str, claim: idempotency.Claim | None) -> None:
    """A run that stopped on an error: marked failed (its committed batches stay billed), its key freed."""
    def fn(session) -> None:
        row = session.get(BillingRun, run_id)
        if row is not None and row.status == "running":
            row.status, row.finished_at = "failed", clock.now()
    try:
        db.write(fn)
        if claim is not None:
            idempotency.release(db, claim)
    except Exception:  # the first error is the one to report
        log.exception("billing run %s: could not record its failure", run_id)


def get_run(session: Session, workspace_id: str, run_id: str) -> BillingRun:
    from creditdesk.repository import get_in_workspace

    return get_in_workspace(session, BillingRun, workspace_id, run_id, label="billing run")


def list_runs(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None
              ) -> Page[BillingRun]:
    stmt = select(BillingRun).where(BillingRun.workspace_id == actor.workspace_id)
    return paginate(session, stmt, id_column=BillingRun.id, limit=limit, cursor=cursor, descending=True)


@dataclass
class RunSummary:
    """A run as one workspace sees it: its own runs' figures, and a run over every workspace (the jobs, the CLI
    without --workspace) only for what it did in this one (other workspaces' figures never show)."""
    run: BillingRun
    subscriptions_billed: int
    bills: int
    refused: int
    billed: list[list] = field(default_factory=list)  # [subscription id, bill id or None]
    refusals: list[dict] = field(default_factory=list)  # subscription_id, number, code, message
    recorded: bool = True  # False: a run from before runs recorded what they billed


def _batches(session: Session, workspace_id: str, run_ids: list[str]) -> dict[str, list[dict]]:
    if not run_ids:
        return {}
    out: dict[str, list[dict]] = {}
    for object_id, after in session.execute(select(audit.AuditEvent.object_id, audit.AuditEvent.after).where(
            audit.AuditEvent.workspace_id == workspace_id, audit.AuditEvent.object_id.in_(run_ids),
            audit.AuditEvent.action == "billing_run.batch").order_by(audit.AuditEvent.id)):
        out.setdefault(object_id, []).append(after or {})
    return out


def _summary(row: BillingRun, workspace_id: str, batches: list[dict] | None) -> RunSummary:
    billed = [item for batch in batches or [] for item in batch.get("billed", [])]
    refusals = [item for batch in batches or [] for item in batch.get("refused", [])]
    if row.workspace_id == workspace_id:
        return RunSummary(row, row.subscriptions_billed, row.bills, row.refused, billed, refusals,
                          recorded=batches is not None or row.subscriptions_billed + row.refused == 0)
    return RunSummary(row, len(billed), sum(1 for _, bill_id in billed if bill_id), len(refusals), billed, refusals)


def list_summaries(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None
                   ) -> Page[RunSummary]:
    """The workspace's runs, newest first, with the runs over every workspace that billed or refused something
    in it (RunSummary)."""
    touched = select(audit.AuditEvent.object_id).where(audit.AuditEvent.workspace_id == actor.workspace_id,
                                                       audit.AuditEvent.action == "billing_run.batch")
    stmt = select(BillingRun).where((BillingRun.workspace_id == actor.workspace_id)
                                    | (BillingRun.workspace_id.is_(None) & BillingRun.id.in_(touched)))
    page = paginate(session, stmt, id_column=BillingRun.id, limit=limit, cursor=cursor, descending=True)
    batches = _batches(session, actor.workspace_id, [row.id for row in page.items])
    return Page([_summary(row, actor.workspace_id, batches.get(row.id)) for row in page.items], page.next_cursor)


def get_summary(session: Session, *, actor: Actor, run_id: str) -> RunSummary:
    """One run as the workspace sees it (NotFound for a run that did nothing in it)."""
    row = session.get(BillingRun, run_id)
    batches = _batches(session, actor.workspace_id, [run_id]).get(run_id) if row is not None else None
    if row is None or (row.workspace_id != actor.workspace_id and not (row.workspace_id is None and batches)):
        raise NotFound(f"No billing run {run_id!r} in this workspace.", object_id=run_id)
    return _summary(row, actor.workspace_id, batches)


def run_out(row: BillingRun) -> s.BillingRunOut:
    return s.BillingRunOut(id=row.id, as_of=row.as_of, status=row.status,
                           subscriptions_billed=row.subscriptions_billed, bills=row.bills, refused=row.refused,
                           started_at=clock.aware(row.started_at), finished_at=clock.aware(row.finished_at))
