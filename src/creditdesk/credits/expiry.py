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
        # Only the packs still due (the sweep's own test, as service.due_pack_ids has it), under the lock.
        rows += session.execute(
            select(p.c.id, p.c.workspace_id, p.c.credit_type_id, p.c.ledger_account_id,
                   la.c.unit, la.c.credits_posted, la.c.debits_posted, la.c.debits_pending)
            .join(la, la.c.id == p.c.ledger_account_id)
            .where(p.c.id.in_(chunk), p.c.status == "active", p.c.expires_at.is_not(None),
                   p.c.expires_at <= now)).all()
    if not rows:
        return 0
    due = [(pack_id, ws, ct_id, account_id, unit, credits_posted - debits_posted - debits_pending, debits_pending)
           for pack_id, ws, ct_id, account_id, unit, credits_posted, debits_posted, debits_pending in rows]
    breakage = dict(session.execute(select(CreditType.id, CreditType.breakage_account_id).where(
        CreditType.id.in_({r[2] for r in due}))).all())
    moved = [r for r in due if r[5] > 0]
    # Audit events first, then transfers: with equal timestamps pack history orders by id, and the
    # "expired" event has always come before its breakage transfer.
    event_ids = new_ids("evt", len(due))
    transfer_ids = new_ids("lt", len(moved))
    due_ids = [r[0] for r in due]
    for start in range(0, len(due_ids), 5000):
        conn.execute(update(p).where(p.c.id.in_(due_ids[start:start + 5000])).values(status="expired",
                                                                                      updated_at=now))
    if moved:
        # debits_posted + available = credits_posted - debits_pending: the row is locked since it was read.
        moved_ids = [r[3] for r in moved]
        for start in range(0, len(moved_ids), 5000):
            conn.execute(update(la).where(la.c.id.in_(moved_ids[start:start + 5000]))
                         .values(debits_posted=la.c.credits_posted - la.c.debits_pending))
        _insert_many(conn, LedgerTransfer.__table__, _TRANSFER_COLUMNS, [
            (tid, ws, account_id, breakage[ct_id], available, unit, EXPIRE, POSTED, None, None, None, "pack",
             pack_id, None, None, None, now)
            for tid, (pack_id, ws, ct_id, account_id, unit, available, _) in zip(transfer_ids, moved)])
    before = {"status": "active"}
    _insert_many(conn, AuditEvent.__table__, _EVENT_COLUMNS, [
        (eid, ws, "system", None, None, "pack.expire", "pack", pack_id, before,
         {"status": "expired", "breakage": available, "held": held}, now)
        for eid, (pack_id, ws, _, _, _, available, held) in zip(event_ids, due)])
    _forget(session, set(due_ids), {r[3] for r in due})
    return len(due)


def _forget(session: Session, pack_ids: set[str], account_ids: set[str]) -> None:
    """Objects of the caller's session that the statements above changed are reloaded on next use."""
    for obj in list(session.identity_map.values()):
        if (isinstance(obj, Pack) and obj.id in pack_ids) or (isinstance(obj, LedgerAccount)
                                                              and obj.id in account_ids):
            session.expire(obj)


_TRANSFER_COLUMNS = ("id", "workspace_id", "debit_account_id", "credit_account_id", "amount", "unit", "code", "phase",
                     "pending_id", "timeout_at", "operation_id", "reference_kind", "reference_id", "reference_url",
                     "actor_id", "idempotency_key", "created_at")
_EVENT_COLUMNS = ("id", "workspace_id", "actor_kind", "actor_id", "api_key_id", "action", "object_type", "object_id",
                  "before", "after", "created_at")


def _insert_many(conn, table, names: tuple[str, ...], rows: list[tuple]) -> None:
    """One executemany of these rows (values in `names` order), each value converted by its column's type
    as the ORM would send it (rawsql's processors), once per distinct value object (`now` is one object)."""
    dialect = conn.dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(marker for _ in names)})"
    converting = [(n, f) for n, f in enumerate(rawsql.bind_processor(dialect, table.c[name]) for name in names)
                  if f is not None]
    if converting:
        seen: dict[int, object] = {}

        def convert(v, f):
            if v is None:
                return None
            key = id(v)
            if key not in seen:
                seen[key] = f(v)
            return seen[key]
        rows = [list(row) for row in rows]
        for row in rows:
            for n, f in converting:
                row[n] = convert(row[n], f)
    conn.exec_driver_sql(sql, [tuple(row) for row in rows])
