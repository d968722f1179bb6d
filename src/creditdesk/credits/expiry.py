"""Pack expiry in bulk: what `service.expire_packs` does for a batch of packs, in a few statements.

Per pack the records are those the one-by-one version wrote: the pack becomes `expired`; its
available credits (posted balance less held) go to the credit type's breakage account in one
transfer (code `expire`, reference the pack) and the pack account's cached debits grow by as much;
one `pack.expire` audit event by the system actor, before `{"status": "active"}`, after
`{"status": "expired", "breakage": ..., "held": ...}`. Held credits stay held; when their hold ends
they follow to breakage (service._after_release).

The pack accounts are locked first, in id order (PostgreSQL: FOR UPDATE), and every pack is re-checked
under that lock, so several nodes may sweep at once and a re-run finds nothing left to do.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from creditdesk import clock
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
    ids = sorted(set(pack_ids))
    rows = []
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        accounts = select(p.c.ledger_account_id).where(p.c.id.in_(chunk))
        # Lock the accounts (stable order), then read the packs and balances under the lock.
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
    events = [{"id": eid, "workspace_id": r.workspace_id, "actor_kind": "system", "actor_id": None,
               "api_key_id": None, "action": "pack.expire", "object_type": "pack", "object_id": r.id,
               "before": {"status": "active"},
               "after": {"status": "expired", "breakage": r.credits_posted - r.debits_posted - r.debits_pending,
                         "held": r.debits_pending}, "created_at": now}
              for eid, r in zip(event_ids, due)]
    conn = session.connection()
    due_ids = [r.id for r in due]
    for start in range(0, len(due_ids), 5000):
        conn.execute(update(p).where(p.c.id.in_(due_ids[start:start + 5000])).values(status="expired",
                                                                                      updated_at=now))
    if moved:
        conn.execute(update(la).where(la.c.id == bindparam("account_id"))
                     .values(debits_posted=la.c.debits_posted + bindparam("amount")),
                     [{"account_id": r.ledger_account_id, "amount": t["amount"]} for r, t in zip(moved, transfers)])
        conn.execute(insert(LedgerTransfer.__table__), transfers)
    conn.execute(insert(AuditEvent.__table__), events)
    _forget(session, {r.id for r in due}, {r.ledger_account_id for r in due})
    return len(due)


def _forget(session: Session, pack_ids: set[str], account_ids: set[str]) -> None:
    """Objects of the caller's session that the statements above changed are reloaded on next use."""
    for obj in list(session.identity_map.values()):
        if (isinstance(obj, Pack) and obj.id in pack_ids) or (isinstance(obj, LedgerAccount)
                                                              and obj.id in account_ids):
            session.expire(obj)
