"""Pack expiry in bulk: what `service.expire_packs` does for a batch of packs, in a few statements.

Per pack the records are those the one-by-one version wrote: the pack becomes `expired`; its
available credits (posted balance less held) go to the credit type's breakage account in one
transfer (code `expire`, reference the pack) and the pack account's cached debits grow by as much;
one `pack.expire` audit event by the system actor, before `{"status": "active"}`, after
`{"status": "expired", "breakage": ..., "held": ...}`. Held credits stay held; when their hold ends
they follow to breakage (service._after_release).

The pack accounts are locked first, in id order (PostgreSQL: FOR UPDATE), and every pack is re-checked
under that lock, so several nodes may sweep at once and a re-run finds nothing left to do. (SQLite has
one writer at a time: the write transaction itself is the lock, so nothing more is taken there.)

What a batch costs (100k due packs among 1M, SQLite): one read of the packs and their balances, one
UPDATE of the packs, one of the moved accounts (their posted debits become credits less held: the same
as adding the available credits read under the lock), and the transfers and audit events inserted with
their values converted once per distinct value, not per row by the ORM's statement machinery.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from creditdesk import clock, rawsql
from creditdesk.audit import AuditEvent
from creditdesk.credits.models import CreditType, Pack
from creditdesk.ids import new_ids
from creditdesk.ledger.models import POSTED, LedgerAccount, LedgerTransfer

EXPIRE = "expire"


def expire_packs(session: Session, pack_ids: list[str], *, now: datetime | None = None) -> int:
    if not pack_ids:
        return 0
    now = now or clock.now()
    session.flush()  # the caller's pending changes first: the statements below are core, not ORM
    la, p = LedgerAccount.__table__, Pack.__table__
    conn = session.connection()
    ids = sorted(set(pack_ids))
    rows = []
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        if conn.dialect.name != "sqlite":
            # Lock the accounts (stable order), then read the packs and balances under the lock.
            accounts = select(p.c.ledger_account_id).where(p.c.id.in_(chunk))
            session.execute(select(la.c.id).where(la.c.id.in_(accounts)).order_by(la.c.id).with_for_update())
        rows += session.execute(
            select(p.c.id, p.c.workspace_id, p.c.credit_type_id, p.c.ledger_account_id, p.c.status, p.c.expires_at,
                   la.c.unit, la.c.credits_posted, la.c.debits_posted, la.c.debits_pending)
            .join(la, la.c.id == p.c.ledger_account_id).where(p.c.id.in_(chunk))).all()
    due = [r for r in rows if r.status == "active" and r.expires_at is not None and r.expires_at <= now]
    if not due:
        return 0
    breakage = dict(session.execute(select(CreditType.id, CreditType.breakage_account_id).where(
        CreditType.id.in_({r.credit_type_id for r in due}))).all())
    moved = [r for r in due if r.credits_posted - r.debits_posted - r.debits_pending > 0]
    # Audit events first, then transfers: with equal timestamps pack history orders by id, and the
    # "expired" event has always come before its breakage transfer.
    event_ids = new_ids("evt", len(due))
    transfer_ids = new_ids("lt", len(moved))
    transfers = [{"id": tid, "workspace_id": r.workspace_id, "debit_account_id": r.ledger_account_id,
                  "credit_account_id": breakage[r.credit_type_id],
                  "amount": r.credits_posted - r.debits_posted - r.debits_pending, "unit": r.unit, "code": EXPIRE,
                  "phase": POSTED, "pending_id": None, "timeout_at": None, "operation_id": None,
                  "reference_kind": "pack", "reference_id": r.id, "reference_url": None, "actor_id": None,
                  "idempotency_key": None, "created_at": now} for tid, r in zip(transfer_ids, moved)]
    before = {"status": "active"}
    events = [{"id": eid, "workspace_id": r.workspace_id, "actor_kind": "system", "actor_id": None,
               "api_key_id": None, "action": "pack.expire", "object_type": "pack", "object_id": r.id,
               "before": before,
               "after": {"status": "expired", "breakage": r.credits_posted - r.debits_posted - r.debits_pending,
                         "held": r.debits_pending}, "created_at": now}
              for eid, r in zip(event_ids, due)]
    due_ids = [r.id for r in due]
    for start in range(0, len(due_ids), 5000):
        conn.execute(update(p).where(p.c.id.in_(due_ids[start:start + 5000])).values(status="expired",
                                                                                      updated_at=now))
    if moved:
        # debits_posted + available = credits_posted - debits_pending: the row is locked since it was read.
        moved_ids = [r.ledger_account_id for r in moved]
        for start in range(0, len(moved_ids), 5000):
            conn.execute(update(la).where(la.c.id.in_(moved_ids[start:start + 5000]))
                         .values(debits_posted=la.c.credits_posted - la.c.debits_pending))
        _insert_many(conn, LedgerTransfer.__table__, transfers)
    _insert_many(conn, AuditEvent.__table__, events)
    _forget(session, {r.id for r in due}, {r.ledger_account_id for r in due})
    return len(due)


def _forget(session: Session, pack_ids: set[str], account_ids: set[str]) -> None:
    """Objects of the caller's session that the statements above changed are reloaded on next use."""
    for obj in list(session.identity_map.values()):
        if (isinstance(obj, Pack) and obj.id in pack_ids) or (isinstance(obj, LedgerAccount)
                                                              and obj.id in account_ids):
            session.expire(obj)


def _insert_many(conn, table, rows: list[dict]) -> None:
    """One executemany of these rows, each value converted by its column's type as the ORM would send it
    (rawsql's processors), once per distinct value object (the batch's `now` is one object)."""
    names = list(rows[0])
    dialect = conn.dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(marker for _ in names)})"
    processors = [rawsql.bind_processor(dialect, table.c[n]) for n in names]
    columns = []
    for name, processor in zip(names, processors):
        values = [r[name] for r in rows]
        if processor is not None:
            seen: dict[int, object] = {}
            values = [None if v is None else seen[id(v)] if id(v) in seen else seen.setdefault(id(v), processor(v))
                      for v in values]
        columns.append(values)
    conn.exec_driver_sql(sql, list(zip(*columns)))
