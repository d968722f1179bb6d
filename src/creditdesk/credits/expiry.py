"""Expiry: packs past their expiry (in bulk), holds past their timeout; SQL text in repository.py (one place)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from creditdesk import audit, clock, webhooks
from creditdesk.audit import Actor, AuditEvent, snapshot
from creditdesk.credits.models import CreditType, Hold, Pack
from creditdesk.credits.packs import refresh_status
from creditdesk.credits.repository import EXPIRE, HOLD, RELEASE, VOID, due_clause
from creditdesk.ids import new_ids
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import PENDING, LedgerAccount, LedgerTransfer
from creditdesk.ledger.service import Reference, TransferSpec


def expire_packs(session: Session, pack_ids: list[str], *, now: datetime | None = None) -> int:
    """Expire these packs if still due: available credits go to breakage; held credits stay held until
    their hold ends, then follow. Safe to run on several nodes at once and to re-run. In bulk: a few
    statements per batch, the same records as pack by pack.

    Per pack the records are those the one-by-one version wrote: the pack becomes `expired`; its
    available credits (posted balance less held) go to the credit type's breakage account in one
    transfer (code `expire`, reference the pack) and the pack account's cached debits grow by as much;
    one `pack.expire` audit event by the system actor, before `{"status": "active"}`, after
    `{"status": "expired", "breakage": ..., "held": ...}`. Held credits stay held; when their hold ends
    they follow to breakage (after_release, below).

    The pack accounts are locked first, in id order (PostgreSQL: FOR UPDATE), and every pack is re-checked
    under that lock, so several nodes may sweep at once and a re-run finds nothing left to do. (SQLite has
    one writer at a time: the write transaction itself is the lock, so nothing more is taken there.)

    What a batch costs (100k due packs among 1M, SQLite): one read of the packs and their balances, one
    UPDATE of the packs, the breakage transfers and the moved accounts' totals written by the ledger's
    batch (ledger/batch.py: one executemany each, the accounts read above passed in as already locked),
    and the audit events inserted with their values converted once per distinct value, not per row by the
    ORM's statement machinery.
    """
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
        # Only the packs still due (the sweep's own test, repository.due_clause), under the lock.
        rows += session.execute(
            select(p.c.id, p.c.credit_type_id, la.c.id, la.c.workspace_id, la.c.unit, la.c.flags,
                   la.c.debits_posted, la.c.credits_posted, la.c.debits_pending, la.c.credits_pending)
            .join(la, la.c.id == p.c.ledger_account_id)
            .where(p.c.id.in_(chunk), due_clause(now))).all()
    if not rows:
        return 0
    # (pack id, credit type id, the pack account's totals as read under the lock)
    due = [(pack_id, ct_id, ledger.AccountTotals(*account)) for pack_id, ct_id, *account in rows]
    breakage = dict(session.execute(select(CreditType.id, CreditType.breakage_account_id).where(
        CreditType.id.in_({r[1] for r in due}))).all())
    # What each pack had left to expire, and held, before the sweep.
    left = [(a.available, a.debits_pending) for _, _, a in due]
    moved = [(r, available) for r, (available, _) in zip(due, left) if available > 0]
    # Audit events first, then transfers: with equal timestamps pack history orders by id, and the
    # "expired" event has always come before its breakage transfer.
    event_ids = new_ids("evt", len(due))
    transfer_ids = new_ids("lt", len(moved))
    due_ids = [r[0] for r in due]
    for start in range(0, len(due_ids), 5000):
        conn.execute(update(p).where(p.c.id.in_(due_ids[start:start + 5000])).values(status="expired",
                                                                                      updated_at=now))
    if moved:
        # Available credits go to breakage, one transfer per pack, through the ledger's batch (one
        # statement for the transfers, one for the accounts' totals).
        batch = ledger.Batch(session, accounts=[a for (_, _, a), _ in moved], now=now)
        refused = batch.post_many([
            (tid, account.workspace_id, account.id, breakage[ct_id], available, EXPIRE, None, "pack", pack_id, None,
             None) for tid, ((pack_id, ct_id, account), available) in zip(transfer_ids, moved)])
        if refused:  # pragma: no cover - what is moved is what the locked account has available
            raise refused[0][1]
        batch.write()
    before = {"status": "active"}
    _insert_many(session, AuditEvent.__table__, _EVENT_COLUMNS, [
        (eid, account.workspace_id, "system", None, None, "pack.expire", "pack", pack_id, before,
         {"status": "expired", "breakage": available, "held": held}, now)
        for eid, (pack_id, _, account), (available, held) in zip(event_ids, due, left)])
    for (pack_id, _, account), (available, held) in zip(due, left):
        webhooks.emit(session, account.workspace_id, "pack.expired", {"id": pack_id, "breakage": available, "held": held})
    _forget(session, set(due_ids))
    return len(due)


# --- holds past their timeout ----------------------------------------------------------------------

def hold_pendings(session: Session, hold: Hold) -> list[LedgerTransfer]:
    return list(session.scalars(select(LedgerTransfer).where(
        LedgerTransfer.operation_id == hold.id, LedgerTransfer.phase == PENDING).order_by(LedgerTransfer.id)))


def release(session: Session, hold: Hold, pendings: list[LedgerTransfer], accounts, *, actor: Actor,
            timed_out: bool) -> None:
    before = snapshot(hold)
    ct = session.get(CreditType, hold.credit_type_id)
    op = ledger.Operation(hold.workspace_id, actor_id=actor.user_id)
    for pending in pendings:
        op.resolve(pending.id, void=True, code=RELEASE)
    if pendings:
        ledger.one_shot(session, op, accounts=accounts)
    after_release(session, actor=actor, ct=ct, hold=hold,
                  released=[(p.debit_account_id, p.amount) for p in pendings], accounts=accounts)
    hold.status = "timed_out" if timed_out else "released"
    hold.resolved_at = clock.now()
    audit.record(session, actor=actor, action="hold.timeout" if timed_out else "hold.release", object_type="hold",
                 object_id=hold.id, before=before, after=snapshot(hold))


def after_release(session: Session, *, actor: Actor, ct: CreditType, hold: Hold, released: list[tuple[str, int]],
                  accounts: dict[str, LedgerAccount]) -> None:
    """Released credits of a pack that expired (or was voided) while held go to breakage now."""
    # Every pack of the hold (not only those with something released): a fully captured pack is depleted.
    packs = {p.ledger_account_id: p for p in session.scalars(select(Pack).where(
        Pack.ledger_account_id.in_(list({a for a, _ in released} | set(accounts)))))}
    breakage = [TransferSpec(acc, ct.breakage_account_id, amount, VOID if packs[acc].status == "voided" else EXPIRE,
                             Reference("hold", hold.id))
                for acc, amount in released if amount > 0 and packs[acc].status in ("expired", "voided")]
    if breakage:
        ledger.post(session, breakage, workspace_id=hold.workspace_id, operation_id=hold.id, actor_id=actor.user_id,
                    locked=accounts)
    for pack in packs.values():
        refresh_status(pack, accounts[pack.ledger_account_id])


def release_timed_out_holds(session: Session, *, workspace_id: str | None = None, account_ids: list[str] | None = None,
                            locked: dict[str, LedgerAccount] | None = None, limit: int = 500) -> int:
    """Release pending holds past their timeout (all of a workspace, or those touching some accounts)."""
    now = clock.now()
    stmt = select(Hold).where(Hold.status == "pending", Hold.timeout_at <= now)
    if workspace_id:
        stmt = stmt.where(Hold.workspace_id == workspace_id)
    if account_ids is not None:
        stmt = stmt.where(Hold.id.in_(select(LedgerTransfer.operation_id).where(
            LedgerTransfer.debit_account_id.in_(account_ids), LedgerTransfer.phase == PENDING,
            LedgerTransfer.code == HOLD)))
    count = 0
    for hold in session.scalars(stmt.order_by(Hold.id).limit(limit)).all():
        pendings = hold_pendings(session, hold)
        accounts = dict(locked or {})
        accounts.update(ledger.lock_accounts(session, [t.debit_account_id for t in pendings
                                                       if t.debit_account_id not in accounts]))
        session.refresh(hold)
        if hold.status != "pending":
            continue
        release(session, hold, pendings, accounts, actor=Actor.system(hold.workspace_id), timed_out=True)
        count += 1
    return count


def _forget(session: Session, pack_ids: set[str]) -> None:
    """Packs of the caller's session that the statements above changed are reloaded on next use (the
    ledger's batch keeps the session's accounts current itself)."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Pack) and obj.id in pack_ids:
            session.expire(obj)


_EVENT_COLUMNS = ("id", "workspace_id", "actor_kind", "actor_id", "api_key_id", "action", "object_type", "object_id",
                  "before", "after", "created_at")


def _insert_many(session: Session, table, names: tuple[str, ...], rows: list[tuple]) -> None:
    """One executemany of these rows (values in `names` order), each value converted by its column's type
    as the ORM would send it (the type's public bind_processor), once per distinct value object (`now` is
    one object)."""
    conn = session.connection()
    dialect = conn.dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(marker for _ in names)})"
    converting = [(n, f) for n, f in enumerate(table.c[name].type.bind_processor(dialect) for name in names)
                  if f is not None]
    if converting:
        seen: dict[tuple[int, int], tuple] = {}

        def convert(v, n, f):
            if v is None:
                return None
            hit = seen.get((n, id(v)))
            if hit is None or hit[0] is not v:
                hit = seen[(n, id(v))] = (v, f(v))
            return hit[1]
        rows = [list(row) for row in rows]
        for row in rows:
            for n, f in converting:
                row[n] = convert(row[n], n, f)
    conn.exec_driver_sql(sql, [tuple(row) for row in rows])
