"""External calls after commit: a payment gateway, an SMS sender, a card charge.

They must not run inside a transaction, which PostgreSQL may retry (charging or sending twice) and which
on SQLite holds the one write lock while a gateway thinks. So the row that needs the call (an SMS purchase
or message, a gateway charge) is decided and committed first, with its call *due* (a `..._due_at` column);
the call runs after the commit with an idempotency key derived from the row's id; its outcome is recorded
in a second, short transaction, which clears the due column. A call that never got its outcome recorded
(the process died in between) is still due: a recovery job claims it (`claim_due`) and makes it again,
with the same key, once its lease ends. Used by creditdesk.sms.service and billing.payment_preferences.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from creditdesk import clock
from creditdesk.db import Database, after_commit, database_of

log = logging.getLogger(__name__)

CALL_LEASE_SECONDS = 60  # how long the caller that made the row (or a recovery) owns its call
MAX_CALL_LEASE_SECONDS = 3600


def call_lease(attempt: int) -> timedelta:
    """How long attempt number `attempt` (1 = the request's own) owns the call: doubling, capped."""
    return timedelta(seconds=min(CALL_LEASE_SECONDS * 2 ** max(attempt - 1, 0), MAX_CALL_LEASE_SECONDS))


def idempotency_key(object_id: str) -> str:
    """The key a gateway or provider dedupes on: one per row, the same on every call."""
    return f"creditdesk:{object_id}"


def detached(db: Database, model, object_id: str):
    """The row as committed, detached from any session: read, then no connection is held."""
    with db.read() as session:
        row = session.get(model, object_id)
        if row is not None:
            session.expunge(row)
    return row


def run_after_commit(session: Session, row, complete) -> None:
    """Once the caller's transaction has committed, run `complete(db, row id)` (the external call and its
    outcome) and show the outcome on `row`, the object the service returned. Never raises: the commit
    has happened, and a failed call is left due for the recovery job."""
    kind, object_id = type(row).__name__, row.id  # now: a savepoint rolled back later would expire the row
    db = database_of(session)
    if db is None:  # a session made outside Database: the recovery job will make the call
        log.warning("no database on the session: %s %s is left for the recovery job", kind, object_id)
        return

    def run() -> None:
        try:
            final = complete(db, object_id)
        except Exception:
            log.exception("recording the outcome of %s %s failed; the recovery job retries it", kind, object_id)
            return
        if final is not None:  # None: the row was rolled back with a savepoint, nothing was called
            for column in row.__table__.columns:
                set_committed_value(row, column.key, getattr(final, column.key))
    after_commit(session, run)


def claim_due(session: Session, model, due, attempts, *, workspace_id: str | None, limit: int) -> list[str]:
    """Claim up to `limit` rows whose call is due (a new, longer lease each), so that several nodes never
    make the same call at once. Returns their ids."""
    now = clock.now()
    stmt = select(model.id, attempts).where(due <= now)
    if workspace_id:
        stmt = stmt.where(model.workspace_id == workspace_id)
    claimed = []
    for object_id, tried in session.execute(stmt.order_by(due, model.id).limit(limit)).all():
        # Still due on the row as it is now: a concurrent claimer that got there first moved it on.
        won = session.execute(update(model).where(model.id == object_id, due <= now)
                              .values({due: now + call_lease(tried + 1), attempts: tried + 1})
                              .execution_options(synchronize_session=False)).rowcount
        if won == 1:
            claimed.append(object_id)
    return claimed
