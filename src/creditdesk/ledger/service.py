"""Ledger operations: open accounts, post transfers (one-phase or two-phase), verify.

Callers lock the accounts they will debit (`lock_accounts`, stable id order) before deciding
amounts; `post` then re-checks every flag against the locked rows, so a rule is never enforced on
stale numbers. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from creditdesk import clock, rawsql
from creditdesk.ids import new_id
from creditdesk.ledger.errors import (
    AmountExceedsPending,
    ExceedsCredits,
    InvalidAmount,
    PendingAlreadyResolved,
    PendingNotFound,
    TransferKeyConflict,
    UnitMismatch,
)
from creditdesk.ledger.models import (
    AccountBalances,
    CREDITS_MUST_NOT_EXCEED_DEBITS,
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    NO_CACHE,
    PENDING,
    POST_PENDING,
    POSTED,
    VOID_PENDING,
    LedgerAccount,
    LedgerTransfer,
)


@dataclass(frozen=True)
class Reference:
    kind: str | None = None
    id: str | None = None
    url: str | None = None


@dataclass
class TransferSpec:
    debit_account_id: str
    credit_account_id: str
    amount: int
    code: str
    reference: Reference = field(default_factory=Reference)
    idempotency_key: str | None = None


def open_account(session: Session, *, workspace_id: str, unit: str, code: str, flags: int = 0,
                 system_key: str | None = None) -> LedgerAccount:
    account = LedgerAccount(id=new_id("la"), workspace_id=workspace_id, unit=unit, code=code, flags=flags,
                            system_key=system_key, debits_posted=0, credits_posted=0, debits_pending=0,
                            credits_pending=0, created_at=clock.now())
    session.add(account)
    # No ORM relationships point at accounts, so flush now: rows referencing it are inserted after.
    session.flush([account])
    return account


def system_account(session: Session, *, workspace_id: str, system_key: str) -> LedgerAccount | None:
    return session.scalar(select(LedgerAccount).where(LedgerAccount.workspace_id == workspace_id,
                                                      LedgerAccount.system_key == system_key))


def lock_accounts(session: Session, account_ids: Iterable[str]) -> dict[str, LedgerAccount]:
    """Lock (PostgreSQL: FOR UPDATE) and freshly load accounts, always in id order to avoid deadlocks."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    rows = session.scalars(
        select(LedgerAccount).where(LedgerAccount.id.in_(ids)).order_by(LedgerAccount.id)
        .with_for_update().execution_options(populate_existing=True)
    ).all()
    return {a.id: a for a in rows}


def _check_flags(account: LedgerAccount) -> None:
    if account.flags & DEBITS_MUST_NOT_EXCEED_CREDITS:
        if account.debits_posted + account.debits_pending > account.credits_posted:
            raise ExceedsCredits("Not enough credits.", account_id=account.id)
    if account.flags & CREDITS_MUST_NOT_EXCEED_DEBITS:
        if account.credits_posted + account.credits_pending > account.debits_posted:
            raise ExceedsCredits("The account would exceed its debits.", account_id=account.id)


def _accounts_for(session: Session, ids: set[str], locked: dict[str, LedgerAccount] | None) -> dict[str, LedgerAccount]:
    found = dict(locked or {})
    missing = [i for i in ids if i not in found]
    if missing:
        # Sink accounts (NO_CACHE) are read without a lock: nothing on them changes.
        rows = session.scalars(select(LedgerAccount).where(LedgerAccount.id.in_(missing))).all()
        cached = [a.id for a in rows if not a.flags & NO_CACHE]
        found.update({a.id: a for a in rows if a.flags & NO_CACHE})
        found.update(lock_accounts(session, cached))
    if len([i for i in ids if i in found]) != len(ids):
        raise PendingNotFound("Unknown ledger account.", code="ledger_account_not_found", http_status=404)
    return found


def post(session: Session, specs: Sequence[TransferSpec], *, workspace_id: str, operation_id: str | None = None,
         actor_id: str | None = None, pending: bool = False, timeout_at: datetime | None = None,
         locked: dict[str, LedgerAccount] | None = None) -> list[LedgerTransfer]:
    """Write transfers all together: each debit and credit, cached totals, flag checks.

    With `pending=True` they are two-phase: amounts are reserved (pending) until `post_pending`
    or `void_pending`.
    """
    if not specs:
        return []
    accounts = _accounts_for(session, {s.debit_account_id for s in specs} | {s.credit_account_id for s in specs},
                             locked)
    now = clock.now()
    transfers = []
    touched: dict[str, LedgerAccount] = {}
    # Keys of this batch: the new rows are only added at the end, so a query would not see them.
    batch_keys: dict[str, LedgerTransfer] = {}
    for spec in specs:
        if not isinstance(spec.amount, int) or isinstance(spec.amount, bool) or spec.amount <= 0:
            raise InvalidAmount("Transfer amounts are positive integers.", amount=spec.amount)
        debit, credit = accounts[spec.debit_account_id], accounts[spec.credit_account_id]
        if debit.workspace_id != workspace_id or credit.workspace_id != workspace_id:
            raise PendingNotFound("Unknown ledger account.", code="ledger_account_not_found", http_status=404)
        if debit.unit != credit.unit:
            raise UnitMismatch(f"Cannot move {debit.unit} into an account of {credit.unit}.")
        if spec.idempotency_key is not None:
            existing = batch_keys.get(spec.idempotency_key) or session.scalar(select(LedgerTransfer).where(
                LedgerTransfer.workspace_id == workspace_id, LedgerTransfer.idempotency_key == spec.idempotency_key))
            if existing is not None:
                if (existing.debit_account_id, existing.credit_account_id, existing.amount, existing.code,
                        existing.phase) != (spec.debit_account_id, spec.credit_account_id, spec.amount, spec.code,
                                            PENDING if pending else POSTED):
                    raise TransferKeyConflict("This transfer idempotency key was used for another transfer.")
                transfers.append(existing)
                continue
        if pending:
            if not debit.flags & NO_CACHE:
                debit.debits_pending += spec.amount
            if not credit.flags & NO_CACHE:
                credit.credits_pending += spec.amount
        else:
            if not debit.flags & NO_CACHE:
                debit.debits_posted += spec.amount
            if not credit.flags & NO_CACHE:
                credit.credits_posted += spec.amount
        touched[debit.id] = debit
        touched[credit.id] = credit
        transfer = LedgerTransfer(
            id=new_id("lt"), workspace_id=workspace_id, debit_account_id=debit.id, credit_account_id=credit.id,
            amount=spec.amount, unit=debit.unit, code=spec.code, phase=PENDING if pending else POSTED,
            timeout_at=timeout_at if pending else None, operation_id=operation_id,
            reference_kind=spec.reference.kind, reference_id=spec.reference.id, reference_url=spec.reference.url,
            actor_id=actor_id, idempotency_key=spec.idempotency_key, created_at=now)
        if spec.idempotency_key is not None:
            batch_keys[spec.idempotency_key] = transfer
        transfers.append(transfer)
    for account in touched.values():
        _check_flags(account)
    session.add_all([t for t in transfers if t not in session])
    return transfers


# --- the same for the hot path, in SQL text -----------------------------------------------------

@dataclass
class AccountTotals(AccountBalances):
    """An account's row as read in this transaction (locked, where it will be debited)."""
    id: str
    workspace_id: str
    unit: str
    flags: int
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int


ACCOUNT_TOTALS_COLUMNS = "id, workspace_id, unit, flags, debits_posted, credits_posted, debits_pending, credits_pending"
_ACCOUNT_TOTALS_SQL = f"SELECT {ACCOUNT_TOTALS_COLUMNS} FROM ledger_accounts WHERE id IN ({{ids}}) ORDER BY id"
_SET_TOTALS_SQL = "UPDATE ledger_accounts SET debits_posted = :debits_posted, credits_posted = :credits_posted WHERE id = :id"


def account_totals(session: Session, account_ids: Iterable[str], *, lock: bool) -> dict[str, AccountTotals]:
    """Accounts as AccountTotals; `lock` locks them (PostgreSQL FOR UPDATE, in id order)."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    params = {f"a{n}": i for n, i in enumerate(ids)}
    sql = _ACCOUNT_TOTALS_SQL.format(ids=", ".join(":" + k for k in params))
    if lock and rawsql.dialect_name(session) != "sqlite":
        sql += " FOR UPDATE"
    return {row[0]: AccountTotals(*row) for row in rawsql.rows(session, sql, params)}


# Sink accounts' identity (workspace, unit, flags) never changes and their totals are never cached
# (NO_CACHE), so once read they need not be read again by this process.
_sinks: dict[str, AccountTotals] = {}


def sink_account(session: Session, account_id: str) -> AccountTotals:
    """A NO_CACHE account as AccountTotals (totals zero: nothing is kept on it); any other account
    is read and locked like account_totals(lock=True)."""
    known = _sinks.get(account_id)
    if known is not None:
        return AccountTotals(known.id, known.workspace_id, known.unit, known.flags, 0, 0, 0, 0)
    found = account_totals(session, [account_id], lock=False).get(account_id)
    if found is None:
        raise PendingNotFound("Unknown ledger account.", code="ledger_account_not_found", http_status=404)
    if not found.flags & NO_CACHE:
        return account_totals(session, [account_id], lock=True)[account_id]
    _sinks[account_id] = found
    return AccountTotals(found.id, found.workspace_id, found.unit, found.flags, 0, 0, 0, 0)


def post_locked(session: Session, specs: Sequence[TransferSpec], accounts: dict[str, AccountTotals], *,
                workspace_id: str, operation_id: str | None = None, actor_id: str | None = None) -> list[str]:
    """`post` (one-phase, no transfer keys) for accounts the caller has locked and read as AccountTotals,
    written with SQL text: the same checks, the same rows. Returns the new transfers' ids."""
    now = clock.now()
    touched: dict[str, AccountTotals] = {}
    for spec in specs:
        if not isinstance(spec.amount, int) or isinstance(spec.amount, bool) or spec.amount <= 0:
            raise InvalidAmount("Transfer amounts are positive integers.", amount=spec.amount)
        if spec.idempotency_key is not None:  # pragma: no cover - a caller's mistake
            raise ValueError("post_locked does not take transfer idempotency keys; use post")
        debit, credit = accounts.get(spec.debit_account_id), accounts.get(spec.credit_account_id)
        if debit is None or credit is None or debit.workspace_id != workspace_id or credit.workspace_id != workspace_id:
            raise PendingNotFound("Unknown ledger account.", code="ledger_account_not_found", http_status=404)
        if debit.unit != credit.unit:
            raise UnitMismatch(f"Cannot move {debit.unit} into an account of {credit.unit}.")
        if not debit.flags & NO_CACHE:
            debit.debits_posted += spec.amount
            touched[debit.id] = debit
        if not credit.flags & NO_CACHE:
            credit.credits_posted += spec.amount
            touched[credit.id] = credit
    for account in touched.values():
        _check_flags(account)
    ids = []
    for spec in specs:
        transfer_id = new_id("lt")
        ids.append(transfer_id)
        rawsql.insert(session, _TRANSFERS, {
            "id": transfer_id, "workspace_id": workspace_id, "debit_account_id": spec.debit_account_id,
            "credit_account_id": spec.credit_account_id, "amount": spec.amount,
            "unit": accounts[spec.debit_account_id].unit, "code": spec.code, "phase": POSTED,
            "operation_id": operation_id, "reference_kind": spec.reference.kind, "reference_id": spec.reference.id,
            "reference_url": spec.reference.url, "actor_id": actor_id, "created_at": now})
    for account in touched.values():
        rawsql.execute(session, _SET_TOTALS_SQL, {"debits_posted": account.debits_posted,
                                                  "credits_posted": account.credits_posted, "id": account.id}).close()
    rawsql.expire_cached(session, LedgerAccount, touched)
    return ids


_TRANSFERS = LedgerTransfer.__table__


def resolve_pending(session: Session, pending_id: str, *, workspace_id: str, amount: int | None = None,
                    void: bool = False, code: str | None = None, operation_id: str | None = None,
                    actor_id: str | None = None, locked: dict[str, LedgerAccount] | None = None) -> LedgerTransfer:
    """Post (all of it or less) or void a pending transfer. The part not posted returns to the debit account."""
    pending = session.scalar(select(LedgerTransfer).where(LedgerTransfer.id == pending_id,
                                                          LedgerTransfer.workspace_id == workspace_id))
    if pending is None or pending.phase != PENDING:
        raise PendingNotFound(f"No pending transfer {pending_id!r}.")
    post_amount = 0 if void else (pending.amount if amount is None else amount)
    if not void:
        if not isinstance(post_amount, int) or isinstance(post_amount, bool) or post_amount <= 0:
            raise InvalidAmount("Capture a positive whole amount, or void instead.")
        if post_amount > pending.amount:
            raise AmountExceedsPending(f"Only {pending.amount} is pending; cannot post {post_amount}.")
    # Lock first, then look for an earlier resolution: two concurrent resolutions of one pending
    # transfer queue on the debit account's lock, and the second sees the first's row (a check made
    # before the lock would let both through, to fail on UNIQUE(pending_id) as a 500).
    accounts = _accounts_for(session, {pending.debit_account_id, pending.credit_account_id}, locked)
    if session.scalar(select(LedgerTransfer.id).where(LedgerTransfer.pending_id == pending_id)) is not None:
        raise PendingAlreadyResolved("This reservation was already captured or released.")
    debit, credit = accounts[pending.debit_account_id], accounts[pending.credit_account_id]
    if not debit.flags & NO_CACHE:
        debit.debits_pending -= pending.amount
        debit.debits_posted += post_amount
    if not credit.flags & NO_CACHE:
        credit.credits_pending -= pending.amount
        credit.credits_posted += post_amount
    _check_flags(debit)
    _check_flags(credit)
    # A void records the amount it released; a post records the amount it posted.
    resolution = LedgerTransfer(
        id=new_id("lt"), workspace_id=workspace_id, debit_account_id=debit.id, credit_account_id=credit.id,
        amount=pending.amount if void else post_amount, unit=pending.unit, code=code or pending.code,
        phase=VOID_PENDING if void else POST_PENDING, pending_id=pending.id,
        operation_id=operation_id or pending.operation_id, reference_kind=pending.reference_kind,
        reference_id=pending.reference_id, reference_url=pending.reference_url, actor_id=actor_id,
        created_at=clock.now())
    session.add(resolution)
    return resolution


# --- verify ------------------------------------------------------------------------------------

@dataclass
class VerifyReport:
    accounts_checked: int = 0
    transfers_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def recomputed_totals(session: Session, *, workspace_id: str | None = None,
                      account_ids: Sequence[str] | None = None):
    """Per account: (debits_posted, credits_posted, debits_pending, credits_pending) from transfers alone."""
    t = LedgerTransfer
    resolved = aliased(LedgerTransfer)
    open_pending = and_(t.phase == PENDING, ~select(resolved.id).where(resolved.pending_id == t.id).exists())
    is_posted = t.phase.in_((POSTED, POST_PENDING))
    zero = literal(0)
    legs = union_all(
        select(t.debit_account_id.label("account_id"),
               func.sum(_case(is_posted, t.amount)).label("dp"), zero.label("cp"),
               func.sum(_case(open_pending, t.amount)).label("dn"), zero.label("cn"))
        .where(*_scope(t, workspace_id, account_ids, t.debit_account_id)).group_by(t.debit_account_id),
        select(t.credit_account_id.label("account_id"), zero.label("dp"),
               func.sum(_case(is_posted, t.amount)).label("cp"), zero.label("dn"),
               func.sum(_case(open_pending, t.amount)).label("cn"))
        .where(*_scope(t, workspace_id, account_ids, t.credit_account_id)).group_by(t.credit_account_id),
    ).subquery()
    stmt = select(legs.c.account_id, func.sum(legs.c.dp), func.sum(legs.c.cp), func.sum(legs.c.dn),
                  func.sum(legs.c.cn)).group_by(legs.c.account_id)
    return {row[0]: tuple(int(v or 0) for v in row[1:]) for row in session.execute(stmt)}


def _scope(t, workspace_id, account_ids, column):
    conds = []
    if workspace_id:
        conds.append(t.workspace_id == workspace_id)
    if account_ids is not None:
        conds.append(column.in_(list(account_ids)))
    return conds


def _case(cond, value):
    from sqlalchemy import case

    return case((cond, value), else_=0)


def verify(session: Session, *, workspace_id: str | None = None, progress=None) -> VerifyReport:
    """Recompute every balance from the transfers and check the ledger's invariants."""
    report = VerifyReport()
    totals = recomputed_totals(session, workspace_id=workspace_id)
    stmt = select(LedgerAccount)
    if workspace_id:
        stmt = stmt.where(LedgerAccount.workspace_id == workspace_id)
    per_unit: dict[tuple[str, str], list[int]] = {}
    for account in session.scalars(stmt.order_by(LedgerAccount.id)).yield_per(5000):
        report.accounts_checked += 1
        if progress:
            progress()
        dp, cp, dn, cn = totals.get(account.id, (0, 0, 0, 0))
        if not account.flags & NO_CACHE:
            cached = (account.debits_posted, account.credits_posted, account.debits_pending, account.credits_pending)
            if cached != (dp, cp, dn, cn):
                report.problems.append(
                    f"account {account.id} ({account.code}, {account.unit}): cached totals "
                    f"{_fmt(cached)} != recomputed {_fmt((dp, cp, dn, cn))}")
            dp, cp, dn, cn = cached
        if account.flags & DEBITS_MUST_NOT_EXCEED_CREDITS and dp + dn > cp:
            report.problems.append(f"account {account.id} ({account.code}, {account.unit}) is below zero: "
                                   f"credits {cp} < debits {dp} + pending {dn}")
        if account.flags & CREDITS_MUST_NOT_EXCEED_DEBITS and cp + cn > dp:
            report.problems.append(f"account {account.id} ({account.code}, {account.unit}) exceeds its debits")
        sums = per_unit.setdefault((account.workspace_id, account.unit), [0, 0, 0, 0])
        sums[0] += dp
        sums[1] += cp
        sums[2] += dn
        sums[3] += cn
    for (ws, unit), (dp, cp, dn, cn) in sorted(per_unit.items()):
        if dp != cp or dn != cn:
            report.problems.append(f"workspace {ws}, unit {unit}: debits {dp}/{dn} (posted/pending) != "
                                   f"credits {cp}/{cn}")

    t = LedgerTransfer
    da, ca = aliased(LedgerAccount), aliased(LedgerAccount)
    scope = [t.workspace_id == workspace_id] if workspace_id else []
    report.transfers_checked = session.scalar(select(func.count()).select_from(t).where(*scope)) or 0
    for tid, unit, du, cu in session.execute(
            select(t.id, t.unit, da.unit, ca.unit).join(da, da.id == t.debit_account_id)
            .join(ca, ca.id == t.credit_account_id)
            .where(*scope, (t.unit != da.unit) | (t.unit != ca.unit)).limit(100)):
        report.problems.append(f"transfer {tid} in {unit} moves between accounts of {du} and {cu}")
    pend = aliased(LedgerTransfer)
    for tid, amount, pamount in session.execute(
            select(t.id, t.amount, pend.amount).join(pend, pend.id == t.pending_id)
            .where(*scope, t.phase == POST_PENDING, t.amount > pend.amount).limit(100)):
        report.problems.append(f"transfer {tid} posts {amount}, more than its pending {pamount}")
    return report


def _fmt(values) -> str:
    return "debits %d/%d credits %d/%d (posted/pending)" % (values[0], values[2], values[1], values[3])
