"""The one writer of ledger rows: a batch of operations, planned in memory, written set-wise.

Every ledger write (grants, consumption, holds and their capture or release, reversals, credit
transfers, voids, expiry, the CSV import) goes through `Batch`:

    batch = Batch(session, accounts=locked)           # accounts the caller already locked and read
    op = Operation(workspace_id, operation_id=..., actor_id=...)
    op.post(spec, ...)                                # one-phase transfers
    op.pend(spec, timeout_at=...)                      # two-phase (reserved) transfers
    op.resolve(pending_id, amount=..., void=...)       # post all or part of a pending transfer, or void it
    batch.load([op, ...])                              # optional: read what many operations need at once
    error = batch.try_apply(op)                        # or batch.apply(op), which raises
    batch.write()                                      # one executemany per table

Why batch-first: per statement, SQLAlchemy's connection layer costs more than SQLite or PostgreSQL
take to run a small INSERT, so one statement per leg and per account update was most of a write's
cost. Here the accounts a batch touches are read (and, on PostgreSQL, locked FOR UPDATE in id order)
once; each operation is applied in memory in order, seeing the effects of those before it, and checked
there (amount, units, workspace, flags, pending transfers resolved once); a refused operation is
rolled back in memory and contributes no rows, so no SAVEPOINT is needed. Then transfers are
inserted with one executemany, accounts opened in the batch with another (with their final totals),
and the cached totals of the other accounts updated with a third.

`verify` (ledger/service.py) recomputes everything from the transfers and shares no code with this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from creditdesk import clock, rawsql
from creditdesk.ids import new_id
from creditdesk.ledger.errors import (
    AmountExceedsPending,
    ExceedsCredits,
    InvalidAmount,
    LedgerError,
    PendingAlreadyResolved,
    PendingNotFound,
    TransferKeyConflict,
    UnitMismatch,
)
from creditdesk.ledger.models import (
    CREDITS_MUST_NOT_EXCEED_DEBITS,
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    NO_CACHE,
    PENDING,
    POST_PENDING,
    POSTED,
    VOID_PENDING,
    AccountBalances,
    LedgerAccount,
    LedgerTransfer,
)


@dataclass(frozen=True)
class Reference:
    kind: str | None = None
    id: str | None = None
    url: str | None = None


_NO_REFERENCE = Reference()


@dataclass
class TransferSpec:
    debit_account_id: str
    credit_account_id: str
    amount: int
    code: str
    reference: Reference = _NO_REFERENCE
    idempotency_key: str | None = None


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


class Transfer(NamedTuple):
    """A ledger_transfers row, fields in column order (the batch inserts these tuples)."""
    id: str
    workspace_id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    unit: str
    code: str
    phase: str
    pending_id: str | None
    timeout_at: datetime | None
    operation_id: str | None
    reference_kind: str | None
    reference_id: str | None
    reference_url: str | None
    actor_id: str | None
    idempotency_key: str | None
    created_at: datetime


TRANSFER_COLUMNS = Transfer._fields
ACCOUNT_TOTALS_COLUMNS = "id, workspace_id, unit, flags, debits_posted, credits_posted, debits_pending, credits_pending"
_ACCOUNT_COLUMNS = ("id", "workspace_id", "unit", "code", "flags", "system_key", "debits_posted", "credits_posted",
                    "debits_pending", "credits_pending", "created_at")
_CHUNK = 5000  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits

# Sink accounts' identity (workspace, unit, flags) never changes and their totals are never cached
# (NO_CACHE), so once read they need not be read (or locked) again by this process. Never mutated.
_sinks: dict[str, AccountTotals] = {}

_POST, _PEND, _RESOLVE, _OPEN = 0, 1, 2, 3


def check_flags(account: AccountBalances) -> None:
    """The account's flags hold on its (new) totals, or ExceedsCredits."""
    if account.flags & DEBITS_MUST_NOT_EXCEED_CREDITS:
        if account.debits_posted + account.debits_pending > account.credits_posted:
            raise ExceedsCredits("Not enough credits.", account_id=account.id)
    if account.flags & CREDITS_MUST_NOT_EXCEED_DEBITS:
        if account.credits_posted + account.credits_pending > account.debits_posted:
            raise ExceedsCredits("The account would exceed its debits.", account_id=account.id)


def _unknown_account() -> PendingNotFound:
    return PendingNotFound("Unknown ledger account.", code="ledger_account_not_found", http_status=404)


class Operation:
    """The postings of one business operation, applied (or refused) as a whole, in order."""

    __slots__ = ("workspace_id", "operation_id", "actor_id", "at", "steps")

    def __init__(self, workspace_id: str, *, operation_id: str | None = None, actor_id: str | None = None,
                 at: datetime | None = None) -> None:
        self.workspace_id = workspace_id
        self.operation_id = operation_id
        self.actor_id = actor_id
        self.at = at  # the transfers' created_at (default: the batch's clock)
        self.steps: list[tuple] = []

    def post(self, *specs: TransferSpec, ids: Sequence[str] | None = None) -> Operation:
        """One-phase transfers. `ids`: their ids, made by the caller (bulk callers use ids.new_ids)."""
        for n, spec in enumerate(specs):
            self.steps.append((_POST, spec, ids[n] if ids is not None else None, None))
        return self

    def pend(self, *specs: TransferSpec, timeout_at: datetime | None = None) -> Operation:
        """Two-phase transfers: the amounts are reserved (pending) until resolved."""
        for spec in specs:
            self.steps.append((_PEND, spec, None, timeout_at))
        return self

    def resolve(self, pending_id: str, *, amount: int | None = None, void: bool = False,
                code: str | None = None) -> Operation:
        """Post a pending transfer (all of it, or `amount`; the rest returns to the debit account) or void it."""
        self.steps.append((_RESOLVE, pending_id, (amount, void), code))
        return self

    def open_account(self, *, unit: str, code: str, flags: int = 0, system_key: str | None = None,
                     account_id: str | None = None, at: datetime | None = None) -> str:
        """An account opened by this operation (inserted by the batch's write, with its final totals);
        `at`: its created_at (default: the operation's)."""
        account = AccountTotals(account_id or new_id("la"), self.workspace_id, unit, flags, 0, 0, 0, 0)
        self.steps.append((_OPEN, account, code, (system_key, at)))
        return account.id


class Batch:
    """Ledger postings of many operations, checked in memory and written with one statement per table."""

    def __init__(self, session: Session, *, accounts: Mapping[str, object] | Iterable[object] | None = None,
                 now: datetime | None = None) -> None:
        self.session = session
        self.now = now
        # Every account the batch knows, as read (and locked) in this transaction, with the effects
        # of the operations applied so far.
        self.accounts: dict[str, AccountTotals] = {}
        self._opened: dict[str, tuple] = {}  # account id -> (code, system_key, created_at): inserted by write()
        self._changed: dict[str, AccountTotals] = {}  # existing cached accounts whose totals changed
        self._transfers: list[Transfer] = []  # to insert, in order
        self._pendings: dict[str, Transfer] = {}  # pending transfers read or made (by id)
        self._resolved: set[str] = set()  # pending ids known to be posted or voided
        self._unresolved: set[str] = set()  # pending ids known to be still open
        self._keys: dict[tuple[str, str], Transfer | None] = {}  # (workspace, key) -> transfer; None: none yet
        self._absent: set[str] = set()  # account or pending transfer ids looked up and not found
        if accounts is not None:
            self.use(accounts.values() if isinstance(accounts, Mapping) else accounts)

    # --- what the batch knows -----------------------------------------------------------------

    def use(self, accounts: Iterable[object]) -> None:
        """Accounts the caller has locked and read: AccountTotals are used (and updated) in place;
        ORM LedgerAccount rows are copied (and their committed values refreshed by write())."""
        for account in accounts:
            if not isinstance(account, AccountTotals):
                account = AccountTotals(account.id, account.workspace_id, account.unit, account.flags,
                                        account.debits_posted, account.credits_posted, account.debits_pending,
                                        account.credits_pending)
            self.accounts[account.id] = account

    def load(self, operations: Iterable[Operation]) -> None:
        """Read, set-wise, what these operations need and the batch does not know yet: pending transfers,
        accounts (cached ones locked, PostgreSQL FOR UPDATE in id order), earlier resolutions and
        transfer idempotency keys (both read after the locks, so a concurrent writer's rows are seen)."""
        pending_ids, account_ids, keys = set(), set(), set()
        accounts, absent = self.accounts, self._absent
        for op in operations:
            opened = {a.id for kind, a, _, _ in op.steps if kind == _OPEN}
            for kind, a, b, c in op.steps:
                if kind == _RESOLVE:
                    if a not in self._pendings and a not in absent:
                        pending_ids.add(a)
                elif kind != _OPEN:
                    for account_id in (a.debit_account_id, a.credit_account_id):
                        if account_id not in accounts and account_id not in opened and account_id not in absent:
                            account_ids.add(account_id)
                    if a.idempotency_key is not None and (op.workspace_id, a.idempotency_key) not in self._keys:
                        keys.add((op.workspace_id, a.idempotency_key))
        if not (pending_ids or account_ids or keys):
            return
        rawsql.flush_pending(self.session)
        if pending_ids:
            for row in self._select_in(f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM ledger_transfers WHERE id IN",
                                       sorted(pending_ids)):
                transfer = self._transfer_row(row)
                self._pendings[transfer.id] = transfer
                for account_id in (transfer.debit_account_id, transfer.credit_account_id):
                    if account_id not in accounts:
                        account_ids.add(account_id)
            absent.update(p for p in pending_ids if p not in self._pendings)
        if account_ids:
            self._read_accounts(account_ids)
        if pending_ids:
            found = [p for p in pending_ids if p in self._pendings]
            resolved = {row[0] for row in self._select_in(
                "SELECT pending_id FROM ledger_transfers WHERE pending_id IN", sorted(found))}
            self._resolved |= resolved
            self._unresolved |= set(found) - resolved
        by_workspace: dict[str, list[str]] = {}
        for ws, key in keys:
            by_workspace.setdefault(ws, []).append(key)
            self._keys[(ws, key)] = None
        for ws, ws_keys in by_workspace.items():
            for row in self._select_in(f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM ledger_transfers "
                                       f"WHERE workspace_id = {self._marker} AND idempotency_key IN",
                                       sorted(ws_keys), head=(ws,)):
                transfer = self._transfer_row(row)
                self._keys[(ws, transfer.idempotency_key)] = transfer

    def _read_accounts(self, account_ids: set[str]) -> None:
        accounts = self.accounts
        unknown = []
        for account_id in account_ids:
            sink = _sinks.get(account_id)
            if sink is not None:
                accounts[account_id] = sink
            else:
                unknown.append(account_id)
        if not unknown:
            return
        # Sink accounts (NO_CACHE) are read without a lock: nothing on them changes. Only the others
        # are locked, so a sink never becomes a hot row.
        sql = f"SELECT {ACCOUNT_TOTALS_COLUMNS} FROM ledger_accounts WHERE id IN"
        cached = []
        for row in self._select_in(sql, sorted(unknown)):
            account = AccountTotals(*row)
            if account.flags & NO_CACHE:
                _sinks[account.id] = account
            else:
                cached.append(account.id)
            accounts[account.id] = account
        self._absent.update(i for i in unknown if i not in accounts)
        if cached and rawsql.dialect_name(self.session) != "sqlite":
            # PostgreSQL: lock in id order, then take the values read under the lock. (SQLite: the write
            # transaction already excludes every other writer.)
            for row in self._select_in(sql, sorted(cached), tail=" ORDER BY id FOR UPDATE"):
                accounts[row[0]] = AccountTotals(*row)

    @property
    def _marker(self) -> str:
        return "?" if self.session.get_bind().dialect.paramstyle == "qmark" else "%s"

    def _select_in(self, sql: str, values: list, *, head: tuple = (), tail: str = "") -> list:
        marker = self._marker
        connection = self.session.connection()
        out = []
        for start in range(0, len(values), _CHUNK):
            chunk = values[start:start + _CHUNK]
            statement = f"{sql} ({', '.join(marker for _ in chunk)}){tail}"
            out += connection.exec_driver_sql(statement, head + tuple(chunk)).all()
        return out

    def _transfer_row(self, row) -> Transfer:
        values = list(row)
        for n in (9, 16):  # timeout_at, created_at: as the ORM reads them (aware UTC)
            if values[n] is not None:
                values[n] = _load_datetime(self.session, values[n])
        return Transfer(*values)

    # --- applying operations ------------------------------------------------------------------

    def try_apply(self, operation: Operation) -> LedgerError | None:
        """Apply the operation in memory, or refuse it whole (nothing of it is kept) and return why."""
        try:
            self.apply(operation)
        except LedgerError as exc:
            return exc
        return None

    def apply(self, operation: Operation) -> list[Transfer]:
        """Apply the operation in memory (written by write()); the transfers it made, or for a replayed
        idempotency key the transfer already made. Raises the first rule it breaks, keeping nothing of it."""
        self.load((operation,))
        accounts = self.accounts
        ws = operation.workspace_id
        at = operation.at or self.now
        if at is None:
            at = self.now = clock.now()
        saved: dict[str, tuple] = {}  # account id -> its totals before this operation
        transfers_before = len(self._transfers)
        opened: list[str] = []
        keys: list[tuple[str, str]] = []
        pendings: list[str] = []
        resolved: list[str] = []
        out: list[Transfer] = []
        try:
            for kind, a, b, c in operation.steps:
                if kind == _OPEN:
                    if a.id in accounts:  # pragma: no cover - a caller's mistake
                        raise ValueError(f"account {a.id} exists")
                    accounts[a.id] = a
                    self._opened[a.id] = (b, c[0], c[1] or at)
                    opened.append(a.id)
                    continue
                if kind == _RESOLVE:
                    out.append(self._resolve(operation, a, b, c, at, saved, resolved))
                    continue
                amount = a.amount
                if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
                    raise InvalidAmount("Transfer amounts are positive integers.", amount=amount)
                debit, credit = accounts.get(a.debit_account_id), accounts.get(a.credit_account_id)
                if debit is None or credit is None or debit.workspace_id != ws or credit.workspace_id != ws:
                    raise _unknown_account()
                if debit.unit != credit.unit:
                    raise UnitMismatch(f"Cannot move {debit.unit} into an account of {credit.unit}.")
                phase = POSTED if kind == _POST else PENDING
                key = a.idempotency_key
                if key is not None:
                    existing = self._keys.get((ws, key))
                    if existing is not None:
                        if (existing.debit_account_id, existing.credit_account_id, existing.amount, existing.code,
                                existing.phase) != (debit.id, credit.id, amount, a.code, phase):
                            raise TransferKeyConflict("This transfer idempotency key was used for another transfer.")
                        out.append(existing)
                        continue
                for account in (debit, credit):
                    if not account.flags & NO_CACHE and account.id not in saved:
                        saved[account.id] = (account.debits_posted, account.credits_posted, account.debits_pending,
                                             account.credits_pending)
                if kind == _POST:
                    if not debit.flags & NO_CACHE:
                        debit.debits_posted += amount
                    if not credit.flags & NO_CACHE:
                        credit.credits_posted += amount
                else:
                    if not debit.flags & NO_CACHE:
                        debit.debits_pending += amount
                    if not credit.flags & NO_CACHE:
                        credit.credits_pending += amount
                ref = a.reference
                transfer = Transfer(b or new_id("lt"), ws, debit.id, credit.id, amount, debit.unit, a.code, phase, None,
                                    c, operation.operation_id, ref.kind, ref.id, ref.url, operation.actor_id, key, at)
                if key is not None:
                    self._keys[(ws, key)] = transfer
                    keys.append((ws, key))
                if kind == _PEND:
                    self._pendings[transfer.id] = transfer
                    self._unresolved.add(transfer.id)
                    pendings.append(transfer.id)
                self._transfers.append(transfer)
                out.append(transfer)
            for account_id in saved:
                check_flags(accounts[account_id])
        except BaseException:
            for account_id, totals in saved.items():
                account = accounts[account_id]
                (account.debits_posted, account.credits_posted, account.debits_pending,
                 account.credits_pending) = totals
            del self._transfers[transfers_before:]
            for account_id in opened:
                del accounts[account_id]
                del self._opened[account_id]
            for k in keys:
                self._keys[k] = None
            for pending_id in pendings:
                del self._pendings[pending_id]
                self._unresolved.discard(pending_id)
            for pending_id in resolved:
                self._resolved.discard(pending_id)
                self._unresolved.add(pending_id)
            raise
        for account_id in saved:
            if account_id not in self._opened:
                self._changed[account_id] = accounts[account_id]
        return out

    def open_accounts(self, rows: Iterable[tuple], *, at: datetime | None = None) -> None:
        """Accounts opened by this batch, each (id, workspace_id, unit, code, flags, system_key): inserted by
        write() with their final totals. (Bulk callers: cheaper than an Operation per account.)"""
        at = at or self.now or clock.now()
        accounts, opened = self.accounts, self._opened
        for account_id, workspace_id, unit, code, flags, system_key in rows:
            if account_id in accounts:  # pragma: no cover - a caller's mistake
                raise ValueError(f"account {account_id} exists")
            accounts[account_id] = AccountTotals(account_id, workspace_id, unit, flags, 0, 0, 0, 0)
            opened[account_id] = (code, system_key, at)

    def post_many(self, rows: Sequence[tuple], *, at: datetime | None = None) -> list[tuple[int, LedgerError]]:
        """Many one-phase operations of one transfer each (bulk callers: expiry, imports), each
        (transfer id or None, workspace_id, debit, credit, amount, code, operation_id, reference kind,
        reference id, reference url, actor_id), with the same rules as `apply`. A refused row adds
        nothing; the refusals are returned as (its index, why)."""
        at = at or self.now or clock.now()
        accounts = self.accounts
        wanted = set()
        for row in rows:
            if row[2] not in accounts:
                wanted.add(row[2])
            if row[3] not in accounts:
                wanted.add(row[3])
        if wanted:
            rawsql.flush_pending(self.session)
            self._read_accounts(wanted)
        refused: list[tuple[int, LedgerError]] = []
        transfers, changed, opened = self._transfers, self._changed, self._opened
        for n, (tid, ws, debit_id, credit_id, amount, code, operation_id, kind, ref_id, url, actor_id) in enumerate(rows):
            if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
                refused.append((n, InvalidAmount("Transfer amounts are positive integers.", amount=amount)))
                continue
            debit, credit = accounts.get(debit_id), accounts.get(credit_id)
            if debit is None or credit is None or debit.workspace_id != ws or credit.workspace_id != ws:
                refused.append((n, _unknown_account()))
                continue
            if debit.unit != credit.unit:
                refused.append((n, UnitMismatch(f"Cannot move {debit.unit} into an account of {credit.unit}.")))
                continue
            if not debit.flags & NO_CACHE:
                debit.debits_posted += amount
                try:
                    check_flags(debit)
                except LedgerError as exc:
                    debit.debits_posted -= amount
                    refused.append((n, exc))
                    continue
            if not credit.flags & NO_CACHE:
                credit.credits_posted += amount
                try:
                    check_flags(credit)
                except LedgerError as exc:
                    credit.credits_posted -= amount
                    if not debit.flags & NO_CACHE:
                        debit.debits_posted -= amount
                    refused.append((n, exc))
                    continue
                if credit_id not in opened:
                    changed[credit_id] = credit
            if not debit.flags & NO_CACHE and debit_id not in opened:
                changed[debit_id] = debit
            transfers.append(Transfer(tid or new_id("lt"), ws, debit_id, credit_id, amount, debit.unit, code, POSTED,
                                      None, None, operation_id, kind, ref_id, url, actor_id, None, at))
        return refused

    def _resolve(self, operation: Operation, pending_id: str, how: tuple, code: str | None, at: datetime,
                 saved: dict, resolved: list) -> Transfer:
        amount, void = how
        pending = self._pendings.get(pending_id)
        if pending is None or pending.phase != PENDING or pending.workspace_id != operation.workspace_id:
            raise PendingNotFound(f"No pending transfer {pending_id!r}.")
        post_amount = 0 if void else (pending.amount if amount is None else amount)
        if not void:
            if not isinstance(post_amount, int) or isinstance(post_amount, bool) or post_amount <= 0:
                raise InvalidAmount("Capture a positive whole amount, or void instead.")
            if post_amount > pending.amount:
                raise AmountExceedsPending(f"Only {pending.amount} is pending; cannot post {post_amount}.")
        if pending_id in self._resolved:
            raise PendingAlreadyResolved("This reservation was already captured or released.")
        debit, credit = self.accounts.get(pending.debit_account_id), self.accounts.get(pending.credit_account_id)
        if debit is None or credit is None:  # pragma: no cover - a transfer's accounts always exist
            raise _unknown_account()
        for account in (debit, credit):
            if not account.flags & NO_CACHE and account.id not in saved:
                saved[account.id] = (account.debits_posted, account.credits_posted, account.debits_pending,
                                     account.credits_pending)
        if not debit.flags & NO_CACHE:
            debit.debits_pending -= pending.amount
            debit.debits_posted += post_amount
        if not credit.flags & NO_CACHE:
            credit.credits_pending -= pending.amount
            credit.credits_posted += post_amount
        self._resolved.add(pending_id)
        self._unresolved.discard(pending_id)
        resolved.append(pending_id)
        # A void records the amount it released; a post records the amount it posted.
        transfer = Transfer(new_id("lt"), operation.workspace_id, debit.id, credit.id,
                            pending.amount if void else post_amount, pending.unit, code or pending.code,
                            VOID_PENDING if void else POST_PENDING, pending.id, None,
                            operation.operation_id or pending.operation_id, pending.reference_kind,
                            pending.reference_id, pending.reference_url, operation.actor_id, None, at)
        self._transfers.append(transfer)
        return transfer

    # --- writing ------------------------------------------------------------------------------

    def write(self) -> None:
        """Insert the accounts opened and the transfers made, update the other accounts' totals: one
        executemany per table. The batch stays usable (its accounts hold the totals just written)."""
        if not (self._transfers or self._opened or self._changed):
            return
        session = self.session
        rawsql.flush_pending(session)  # the caller's ORM changes first: these rows may refer to them
        connection = session.connection()
        marker = self._marker
        bound: dict[int, tuple] = {}  # id(datetime) -> (it, as stored): most rows share one `now`

        def stored(value: datetime | None):
            if value is None:
                return None
            hit = bound.get(id(value))
            if hit is None or hit[0] is not value:
                hit = bound[id(value)] = (value, rawsql.bind(session, LedgerTransfer.__table__.c.created_at, value))
            return hit[1]

        if self._opened:
            accounts = self.accounts
            rows = []
            for account_id, (code, system_key, at) in self._opened.items():
                a = accounts[account_id]
                rows.append((a.id, a.workspace_id, a.unit, code, a.flags, system_key, a.debits_posted,
                             a.credits_posted, a.debits_pending, a.credits_pending, stored(at)))
            connection.exec_driver_sql(
                f"INSERT INTO ledger_accounts ({', '.join(_ACCOUNT_COLUMNS)}) "
                f"VALUES ({', '.join(marker for _ in _ACCOUNT_COLUMNS)})", rows)
        if self._transfers:
            rows = []
            last_at = last_stored = None
            for t in self._transfers:
                at, timeout = t[16], t[9]
                if at is not last_at:
                    last_at, last_stored = at, stored(at)
                rows.append(t[:9] + (None if timeout is None else stored(timeout),) + t[10:16] + (last_stored,))
            connection.exec_driver_sql(
                f"INSERT INTO ledger_transfers ({', '.join(TRANSFER_COLUMNS)}) "
                f"VALUES ({', '.join(marker for _ in TRANSFER_COLUMNS)})", rows)
        changed = sorted(self._changed.values(), key=lambda a: a.id)
        if changed:
            connection.exec_driver_sql(
                f"UPDATE ledger_accounts SET debits_posted = {marker}, credits_posted = {marker}, "
                f"debits_pending = {marker}, credits_pending = {marker} WHERE id = {marker}",
                [(a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending, a.id) for a in changed])
            # The session's copies of these rows now say what the database says (nothing reloaded).
            identity_map = session.identity_map
            for a in changed:
                obj = identity_map.get(identity_key(LedgerAccount, a.id))
                if obj is not None:
                    for name in ("debits_posted", "credits_posted", "debits_pending", "credits_pending"):
                        set_committed_value(obj, name, getattr(a, name))
        self._transfers = []
        self._opened = {}
        self._changed = {}


def _load_datetime(session: Session, value):
    """A datetime column's value as the ORM hands it back (UTCDateTime: aware UTC)."""
    column = LedgerTransfer.__table__.c.created_at
    if isinstance(value, str):  # SQLite stores text
        value = datetime.fromisoformat(value)
    return column.type.process_result_value(value, session.get_bind().dialect)


def one_shot(session: Session, operation: Operation, *, accounts: Mapping[str, object] | None = None
             ) -> list[Transfer]:
    """One operation in a batch of its own, written at once (raises what it breaks)."""
    batch = Batch(session, accounts=accounts)
    out = batch.apply(operation)
    batch.write()
    return out
