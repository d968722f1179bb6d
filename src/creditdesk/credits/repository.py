"""Credits' hand-written SQL and the small functions that run it: one place to read and tune it (bench/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from creditdesk import clock, rawsql
from creditdesk.credits.errors import unknown_credit_type
from creditdesk.credits.models import Pack
from creditdesk.ledger import service as ledger

# Ledger transfer codes (why credits moved).
GRANT, CONSUME, HOLD, CAPTURE, RELEASE, REVERSAL, TRANSFER, EXPIRE, VOID = (
    "grant", "consume", "hold", "capture", "release", "reversal", "transfer", "expire", "void")

_P = Pack.__table__
PACK_COLUMNS = tuple(_P.columns)

# "Usable now", the part a pack's own row decides: active, started and not yet expired (not depleted is
# its balance; type, holders, products and frozen holders are the callers' part: burn.candidates). One
# rule, spelled twice side by side: for SQL text, and for rows already read. Change both together.
LIVE_PACK_SQL = "p.status = 'active' AND p.starts_at <= :now AND (p.expires_at IS NULL OR p.expires_at > :now)"


def is_live(status: str, starts_at: datetime, expires_at: datetime | None, now: datetime) -> bool:
    """LIVE_PACK_SQL for a pack's row already read (balances, the SMS accounts box)."""
    return status == "active" and starts_at <= now and (expires_at is None or expires_at > now)


# --- holders -------------------------------------------------------------------------------------

_OFFICE_SQL = "SELECT id, customer_id FROM offices WHERE id = :id AND workspace_id = :workspace_id"


def office_row(session: Session, workspace_id: str, office_id: str) -> tuple | None:
    """(id, customer_id) of an office of this workspace, or None. SQL text: every consumption by an
    office asks this (creditdesk.rawsql)."""
    found = rawsql.rows(session, _OFFICE_SQL, {"id": office_id, "workspace_id": workspace_id})
    return found[0] if found else None


def holder_clause(holders: list):
    """The packs held by one of these holders (HolderRef), as a filter."""
    by_kind: dict[str, list[str]] = {}
    for h in holders:
        by_kind.setdefault(h.kind, []).append(h.id)
    return or_(*[and_(Pack.holder_kind == kind, Pack.holder_id.in_(ids)) for kind, ids in by_kind.items()])


def _holders_sql(holders: list, params: dict) -> str:
    parts = []
    for n, h in enumerate(holders):
        params[f"hk{n}"], params[f"hi{n}"] = h.kind, h.id
        parts.append(f"(p.holder_kind = :hk{n} AND p.holder_id = :hi{n})")
    return " OR ".join(parts)


# --- credit types --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CreditTypeRef:
    """What consume needs of a credit type, read with SQL text."""
    id: str
    workspace_id: str
    code: str
    required_permission: str | None
    consumed_account_id: str
    wallet_currency: str | None = None
    low_balance_watched: bool = False


_CREDIT_TYPES_SQL = ("SELECT id, workspace_id, code, required_permission, consumed_account_id, wallet_currency, "
                     "low_balance_watched "
                     "FROM credit_types "
                     "WHERE workspace_id = :workspace_id AND code IN ({codes})")


def credit_type_ref(session: Session, workspace_id: str, code: str) -> CreditTypeRef:
    found = credit_type_refs(session, workspace_id, {code})
    if not found:
        raise unknown_credit_type(code)
    return found[0]


def credit_type_refs(session: Session, workspace_id: str, codes: set[str]) -> list[CreditTypeRef]:
    """The workspace's credit types with these codes (those that exist), with one query."""
    params: dict = {"workspace_id": workspace_id}
    for n, code in enumerate(sorted(codes)):
        params[f"c{n}"] = code
    found = [CreditTypeRef(*row) for row in rawsql.rows(
        session, _CREDIT_TYPES_SQL.format(codes=", ".join(f":c{n}" for n in range(len(codes)))), params)]
    known = session.info.setdefault("credit_type_codes", {})
    for ct in found:
        known[ct.id] = ct.code
    return found


# --- the burn's candidates -----------------------------------------------------------------------
# The burn (consume and hold) reads, locks and writes with SQL text (creditdesk.rawsql): it is the
# hottest path there is, and the ORM's statement building was most of its cost (bench/README.md).

@dataclass
class Candidate:
    """A pack that may pay, with its account as read (under lock) in this transaction."""
    id: str
    ledger_account_id: str
    holder_kind: str
    holder_id: str
    priority: int
    starts_at: datetime
    expires_at: datetime | None
    is_paid: bool
    created_at: datetime
    product_codes: list
    account: ledger.AccountTotals

    @property
    def available(self) -> int:
        return self.account.available


_CANDIDATE_COLUMNS = (None, None, None, None, None, _P.c.starts_at, _P.c.expires_at, _P.c.is_paid, _P.c.created_at,
                      _P.c.product_codes)
_CANDIDATES_SQL = (
    "SELECT p.id, p.ledger_account_id, p.holder_kind, p.holder_id, p.priority, p.starts_at, p.expires_at, p.is_paid, "
    "p.created_at, p.product_codes, "
    + ", ".join("a." + c for c in ledger.ACCOUNT_TOTALS_COLUMNS.split(", ")) + " "
    "FROM packs p JOIN ledger_accounts a ON a.id = p.ledger_account_id "
    "WHERE p.workspace_id = :workspace_id AND p.credit_type_id = :credit_type_id "
    "AND ({holders}) AND " + LIVE_PACK_SQL)


def candidate_rows(session: Session, ct, holders: list, now: datetime) -> list[Candidate]:
    """The live packs (LIVE_PACK_SQL) of this credit type held by these holders, with their accounts,
    in no particular order (products and frozen holders are burn.candidates' part)."""
    params = {"workspace_id": ct.workspace_id, "credit_type_id": ct.id,
              "now": rawsql.bind(session, _P.c.starts_at, now)}
    sql = _CANDIDATES_SQL.format(holders=_holders_sql(holders, params))
    return [Candidate(*row[:10], ledger.AccountTotals(*row[10:]))
            for row in rawsql.rows(session, sql, params, _CANDIDATE_COLUMNS)]


# --- depletion -----------------------------------------------------------------------------------

_DEPLETE_SQL = "UPDATE packs SET status = 'depleted', updated_at = :now WHERE id = :id AND status = 'active'"


def deplete_packs(session: Session, pack_ids: list[str], now: datetime) -> None:
    """These active packs become depleted (SQL text: see consume); the session's copies are reloaded."""
    at = rawsql.bind(session, _P.c.updated_at, now)
    rawsql.execute_many(session, _DEPLETE_SQL, [{"now": at, "id": pack_id} for pack_id in pack_ids])
    rawsql.expire_cached(session, Pack, pack_ids)


# --- a transfer's source packs -------------------------------------------------------------------

_SOURCE_SQL = (
    "SELECT " + ", ".join("p." + c.name for c in PACK_COLUMNS) + ", "
    + ", ".join("a." + c for c in ledger.ACCOUNT_TOTALS_COLUMNS.split(", ")) + " "
    "FROM packs p JOIN ledger_accounts a ON a.id = p.ledger_account_id WHERE p.workspace_id = :workspace_id AND ")
# Frozen credits may be transferred away; not-yet-started packs keep waiting where they are.
SOURCE_BY_HOLDER_SQL = _SOURCE_SQL + (
    "p.credit_type_id = :credit_type_id AND p.holder_kind = :holder_kind "
    "AND p.holder_id = :holder_id AND " + LIVE_PACK_SQL)
SOURCE_BY_ID_SQL = _SOURCE_SQL + "p.id = :id"


@dataclass
class SourcePack:
    """A pack as read for a transfer (a plain copy of its row, never added to a session) and its account."""
    row: SimpleNamespace
    account: ledger.AccountTotals

    @property
    def available(self) -> int:
        return self.account.available

    def __getattr__(self, name):
        return getattr(self.row, name)


def source_packs(session: Session, sql: str, params: dict) -> list[SourcePack]:
    n = len(PACK_COLUMNS)
    return [SourcePack(SimpleNamespace(**{c.key: v for c, v in zip(PACK_COLUMNS, row[:n])}),
                       ledger.AccountTotals(*row[n:]))
            for row in rawsql.rows(session, sql, params, PACK_COLUMNS)]


def bind_now(session: Session, now: datetime):
    """`now` as the packs' date columns store it (the `:now` of LIVE_PACK_SQL)."""
    return rawsql.bind(session, _P.c.starts_at, now)


# --- expiry --------------------------------------------------------------------------------------

def due_clause(now: datetime):
    """The packs the expiry sweep expires: active, with an expiry that has come."""
    return and_(Pack.status == "active", Pack.expires_at.is_not(None), Pack.expires_at <= now)


def due_pack_ids(session: Session, *, now: datetime | None = None, limit: int = 1000,
                 workspace_id: str | None = None) -> list[str]:
    now = now or clock.now()
    stmt = select(Pack.id).where(due_clause(now))
    if workspace_id:
        stmt = stmt.where(Pack.workspace_id == workspace_id)
    return list(session.scalars(stmt.order_by(Pack.expires_at, Pack.id).limit(limit)))


def count_due_packs(session: Session, *, workspace_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(Pack).where(due_clause(clock.now()))
    if workspace_id:
        stmt = stmt.where(Pack.workspace_id == workspace_id)
    return session.scalar(stmt) or 0


def operations_taking_from(pack: Pack, code: str):
    """The ids of the operations (consumptions, holds) whose `code` legs took credits from this pack: a
    subquery for `Model.id.in_(...)`."""
    from creditdesk.ledger.models import LedgerTransfer

    return select(LedgerTransfer.operation_id).where(LedgerTransfer.debit_account_id == pack.ledger_account_id,
                                                     LedgerTransfer.code == code)
