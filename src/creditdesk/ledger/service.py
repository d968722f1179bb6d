"""Ledger operations: open accounts, post transfers (one-phase or two-phase), verify.

Callers lock the accounts they will debit (`lock_accounts`, stable id order) before deciding
amounts; every posting then goes through ledger.batch (the one writer of ledger rows), which
re-checks every flag against the locked rows, so a rule is never enforced on stale numbers.
`post`, `post_locked` and `resolve_pending` are one operation in a batch of its own. Nothing here
commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from creditdesk import clock, rawsql
from creditdesk.ids import new_id
from creditdesk.ledger.batch import (  # noqa: F401 - the ledger's API, re-exported
    ACCOUNT_TOTALS_COLUMNS,
    AccountTotals,
    Batch,
    Operation,
    Reference,
    Transfer,
    TransferSpec,
    _sinks,
    check_flags,
    one_shot,
)
from creditdesk.ledger.errors import PendingNotFound
from creditdesk.ledger.models import (
    CREDITS_MUST_NOT_EXCEED_DEBITS,
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    NO_CACHE,
    PENDING,
    POST_PENDING,
    POSTED,
    LedgerAccount,
    LedgerTransfer,
)


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


_ACCOUNT_TOTALS_SQL = f"SELECT {ACCOUNT_TOTALS_COLUMNS} FROM ledger_accounts WHERE id IN ({{ids}}) ORDER BY id"


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


def sink_account(session: Session, account_id: str) -> AccountTotals:
    """A NO_CACHE account as AccountTotals (totals zero: nothing is kept on it); any other account
    is read and locked like account_totals(lock=True)."""
    known = _sinks.get(account_id)
    if known is not None:
        return known
    found = account_totals(session, [account_id], lock=False).get(account_id)
    if found is None:
        raise PendingNotFound("Unknown ledger account.", code="ledger_account_not_found", http_status=404)
    if not found.flags & NO_CACHE:
        return account_totals(session, [account_id], lock=True)[account_id]
    _sinks[account_id] = found
    return found


def post(session: Session, specs: Sequence[TransferSpec], *, workspace_id: str, operation_id: str | None = None,
         actor_id: str | None = None, pending: bool = False, timeout_at: datetime | None = None,
         locked: dict[str, LedgerAccount] | None = None) -> list[Transfer]:
    """Write transfers all together (one operation of a Batch of its own): each debit and credit,
    cached totals, flag checks, transfer idempotency keys (the same transfer again is the one
    already made; another transfer under a used key is refused).

    With `pending=True` they are two-phase: amounts are reserved (pending) until `resolve_pending`.
    """
    if not specs:
        return []
    op = Operation(workspace_id, operation_id=operation_id, actor_id=actor_id)
    if pending:
        op.pend(*specs, timeout_at=timeout_at)
    else:
        op.post(*specs)
    return one_shot(session, op, accounts=locked)


def post_locked(session: Session, specs: Sequence[TransferSpec], accounts: dict[str, AccountTotals], *,
                workspace_id: str, operation_id: str | None = None, actor_id: str | None = None) -> list[str]:
    """`post` (one-phase) for accounts the caller has locked and read as AccountTotals, which are
    updated in place. Returns the new transfers' ids."""
    op = Operation(workspace_id, operation_id=operation_id, actor_id=actor_id).post(*specs)
    return [t.id for t in one_shot(session, op, accounts=accounts)]


def resolve_pending(session: Session, pending_id: str, *, workspace_id: str, amount: int | None = None,
                    void: bool = False, code: str | None = None, operation_id: str | None = None,
                    actor_id: str | None = None, locked: dict[str, LedgerAccount] | None = None) -> Transfer:
    """Post (all of it or less) or void a pending transfer. The part not posted returns to the debit account."""
    op = Operation(workspace_id, operation_id=operation_id, actor_id=actor_id)
    op.resolve(pending_id, amount=amount, void=void, code=code)
    return one_shot(session, op, accounts=locked)[0]


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
