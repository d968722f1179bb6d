"""CSV import of packs: streamed (memory flat in file size), per-row errors with line numbers,
valid rows committed, and re-running the same file grants nothing twice.

Fast by batching. Each batch (one transaction) looks up what its rows refer to in a handful of
queries (credit types, holders, managers, keys already imported), checks each row with cheap
string tests, and writes the packs, their ledger accounts, their grant transfers and their
`pack.create` audit events with one executemany INSERT per table: row for row what
`service.grant_pack` writes for a pack (same columns, same cached ledger totals, same audit snapshot),
so `ledger verify`, pack history and the activity log treat an imported pack like a granted one.

A row the cheap checks do not clear (a malformed value, an unknown holder, an unusual date format)
takes the slow path: parsed by `schemas.PackCreate` and granted by `grant_pack` under a SAVEPOINT, so
its error message, or its meaning, is exactly the service's. Only clean rows are bulk-inserted; when
the bulk insert itself fails on a key (another import of the same file at the same moment), the batch
is redone row by row on the slow path.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import mmap
from json.encoder import encode_basestring_ascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditdesk import clock
from creditdesk.audit import Actor, AuditEvent, _jsonable
from creditdesk.credits import schemas
from creditdesk.credits import service as credits
from creditdesk.credits.models import CreditType, Pack
from creditdesk.errors import CreditdeskError
from creditdesk.ids import new_ids
from creditdesk.ledger.models import DEBITS_MUST_NOT_EXCEED_CREDITS, POSTED, LedgerAccount, LedgerTransfer
from creditdesk.parties.models import Customer, Office, User

COLUMNS = ["holder_kind", "holder_id", "credit_type", "quantity", "name", "price_paid", "currency", "is_paid",
           "source", "external_ref", "relationship_manager_id", "project_manager_id", "purchased_at", "starts_at",
           "expires_at", "expiry_months", "priority", "product_codes", "status_label", "notes", "idempotency_key"]
REQUIRED = {"holder_kind", "credit_type", "quantity", "name"}
DEFAULT_BATCH = 5000
# Errors kept for display; beyond this only counted (a file of a million bad rows stays flat in memory).
MAX_KEPT_ERRORS = 10_000

@dataclass
class ImportReport:
    granted: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0

    def error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append((line, message))

    def merge(self, other: "ImportReport") -> None:
        self.granted += other.granted
        self.skipped += other.skipped
        room = MAX_KEPT_ERRORS - len(self.errors)
        self.errors.extend(other.errors[:max(room, 0)])
        self.error_count += other.error_count


@dataclass(slots=True)
class Row:
    line: int
    data: schemas.PackCreate | None = None  # set once the row has been parsed by the schema (slow path)
    error: str | None = None
    raw: dict | None = None  # column -> stripped value, None when empty
    key: str | None = None  # the row's idempotency key (its own, or derived from its content)
    values: dict | None = None  # what the cheap checks made of it; None: the slow path decides


def _row_to_pack(row: dict, key: str) -> schemas.PackCreate:
    def val(name):
        v = (row.get(name) or "").strip()
        return v or None

    payload = {
        "holder": {"kind": val("holder_kind"), "id": val("holder_id")},
        "credit_type": val("credit_type"), "quantity": val("quantity"), "name": val("name"),
        "idempotency_key": val("idempotency_key") or key,
    }
    for name in ("price_paid", "currency", "source", "external_ref", "relationship_manager_id",
                 "project_manager_id", "purchased_at", "starts_at", "expires_at", "expiry_months", "priority",
                 "status_label", "notes"):
        if val(name) is not None:
            payload[name] = val(name)
    if val("is_paid") is not None:
        payload["is_paid"] = val("is_paid").lower() in ("1", "true", "yes", "paid")
    if val("product_codes"):
        payload["product_codes"] = [c for c in val("product_codes").replace(";", " ").split() if c]
    return schemas.PackCreate.model_validate(payload)


class _SeenDigests:
    """Which row contents came before, in memory that does not grow with the file: a Bloom filter
    (32 MiB, lazily paged in) answers "never seen" for certain; only contents it has seen (true
    duplicates, or a one-in-billions false positive) are counted exactly in a dict."""

    BITS = 1 << 28
    HASHES = 6

    def __init__(self) -> None:
        self.bits = mmap.mmap(-1, self.BITS // 8)
        self.repeats: dict[bytes, int] = {}

    def occurrence(self, digest: bytes) -> int:
        """1 for the first row with this content (a sha256 digest), then 2, 3, ... (deterministic for a
        given file)."""
        value = int.from_bytes(digest[:24], "big")
        bits = self.bits
        seen = True
        for _ in range(self.HASHES):
            pos = value & (self.BITS - 1)
            value >>= 28
            byte, mask = pos >> 3, 1 << (pos & 7)
            current = bits[byte]
            if not current & mask:
                seen = False
                bits[byte] = current | mask
        if not seen:
            return 1
        short = digest[:20]
        count = self.repeats.get(short, 1) + 1
        self.repeats[short] = count
        return count


def read_rows(stream: io.TextIOBase, *, source_name: str = "") -> Iterator[Row]:
    """Parse a CSV stream one row at a time. Each row gets a stable idempotency key derived from its
    content and how many identical rows came before it, so a re-run maps onto the same packs."""
    reader = csv.reader(stream)
    try:
        fieldnames = next(reader)
    except StopIteration:
        fieldnames = []
    header = set(fieldnames)
    missing = REQUIRED - header
    if missing:
        yield Row(1, error=f"missing column(s): {', '.join(sorted(missing))}")
        return
    unknown = header - set(COLUMNS)
    if unknown:
        yield Row(1, error=f"unknown column(s): {', '.join(sorted(unknown))}")
        return
    index = {name: i for i, name in enumerate(fieldnames)}  # a repeated column: the last one wins
    positions = [(c, index.get(c)) for c in COLUMNS]
    seen = _SeenDigests()
    for cells in reader:
        if not cells:
            continue  # blank lines are no rows (as csv.DictReader has it)
        width = len(cells)
        raw = {c: (cells[i].strip() or None) if i is not None and i < width else None for c, i in positions}
        canonical = "\x1f".join(v or "" for v in raw.values())
        digest = hashlib.sha256(canonical.encode()).digest()
        key = f"import:{digest.hex()[:40]}:{seen.occurrence(digest)}"
        yield Row(reader.line_num, raw=raw, key=raw["idempotency_key"] or key, values=_checked(raw))


# --- cheap checks: a row passes only if the schema and grant_pack would take it the same way ---------

_DIGITS = re.compile(r"[0-9]{1,16}")
_SIGNED = re.compile(r"-?[0-9]{1,7}")
_CURRENCY = re.compile(r"[A-Z]{3}")
# The ISO forms on which datetime.fromisoformat and the schema's parser agree; anything else is slow path.
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
                  r"(?:Z|[+-][0-9]{2}:[0-9]{2})?)?")
_HOLDER_KINDS = {"office", "user", "customer", "workspace"}
_SOURCES = {"manual", "purchase", "crm_deal", "transfer", "promotion", "subscription"}
_LIMITS = {"external_ref": 200, "status_label": 100, "notes": 10_000, "relationship_manager_id": 40,
           "project_manager_id": 40}
_MAX_AMOUNT = 10**15


def _when(text: str | None) -> datetime | None | bool:
    """The datetime (UTC when naive), None when empty, False when not a form the fast path reads."""
    if text is None:
        return None
    if not _ISO.fullmatch(text):
        return False
    try:
        return clock.aware(datetime.fromisoformat(text))
    except ValueError:
        return False


@dataclass
class _Lookups:
    """What a batch's rows refer to, fetched once per batch."""

    types: dict[str, CreditType]
    holders: dict[tuple[str, str], str | None]  # (kind, id) -> customer id
    users: set[str]


def _lookups(session: Session, ws: str, rows: list[Row]) -> _Lookups:
    wanted: dict[str, set[str]] = {"office": set(), "user": set(), "customer": set()}
    managers: set[str] = set()
    for row in rows:
        raw = row.raw
        if raw is None:
            continue
        kind, hid = raw["holder_kind"], raw["holder_id"]
        if kind in wanted and hid:
            wanted[kind].add(hid)
        for name in ("relationship_manager_id", "project_manager_id"):
            if raw[name]:
                managers.add(raw[name])
    types = {ct.code: ct for ct in session.scalars(select(CreditType).where(CreditType.workspace_id == ws))}
    holders: dict[tuple[str, str], str | None] = {}
    if wanted["office"]:
        for oid, customer in session.execute(select(Office.id, Office.customer_id).where(
                Office.workspace_id == ws, Office.id.in_(wanted["office"]))):
            holders[("office", oid)] = customer
    if wanted["user"]:
        for uid, customer in session.execute(
                select(User.id, Office.customer_id).outerjoin(Office, Office.id == User.primary_office_id)
                .where(User.workspace_id == ws, User.id.in_(wanted["user"]))):
            holders[("user", uid)] = customer
    if wanted["customer"]:
        for (cid,) in session.execute(select(Customer.id).where(Customer.workspace_id == ws,
                                                                 Customer.id.in_(wanted["customer"]))):
            holders[("customer", cid)] = cid
    users = set(session.scalars(select(User.id).where(User.workspace_id == ws, User.id.in_(managers)))) \
        if managers else set()
    return _Lookups(types, holders, users)


def _checked(raw: dict) -> dict | None:
    """The row's values as the schema would give them, or None if the row is not plainly valid."""
    kind, name = raw["holder_kind"], raw["name"]
    if kind not in _HOLDER_KINDS or name is None or len(name) > 200:
        return None
    hid = raw["holder_id"]
    if hid is not None and len(hid) > 40:
        return None
    ct = raw["credit_type"]
    if ct is None or len(ct) > 40:
        return None
    quantity = raw["quantity"]
    if quantity is None or not _DIGITS.fullmatch(quantity):
        return None
    quantity = int(quantity)
    price = raw["price_paid"]
    if price is None:
        price = 0
    elif _DIGITS.fullmatch(price):
        price = int(price)
    else:
        return None
    if not 0 < quantity <= _MAX_AMOUNT or price > _MAX_AMOUNT:
        return None
    currency = raw["currency"]
    if currency is not None and not _CURRENCY.fullmatch(currency):
        return None
    source = raw["source"] or "manual"
    if source not in _SOURCES:
        return None
    for column, limit in _LIMITS.items():
        if raw[column] is not None and len(raw[column]) > limit:
            return None
    purchased, starts, expires = _when(raw["purchased_at"]), _when(raw["starts_at"]), _when(raw["expires_at"])
    if purchased is False or starts is False or expires is False:
        return None
    months = raw["expiry_months"]
    if months is not None:
        if not _DIGITS.fullmatch(months) or not 1 <= int(months) <= 600:
            return None
        months = int(months)
    priority = raw["priority"]
    if priority is None:
        priority = 100
    elif _SIGNED.fullmatch(priority) and -1_000_000 <= int(priority) <= 1_000_000:
        priority = int(priority)
    else:
        return None
    codes = raw["product_codes"]
    if codes:
        codes = [c for c in codes.replace(";", " ").split() if c]
        if len(codes) > 200 or any(len(c) > 100 for c in codes):
            return None
        codes = sorted(set(codes))
    else:
        codes = []
    is_paid = raw["is_paid"]
    if is_paid is not None:
        is_paid = is_paid.lower() in ("1", "true", "yes", "paid")
    key = raw["idempotency_key"]
    if key is not None and len(key) > 255:
        return None
    return {"kind": kind, "holder_id": hid, "credit_type": ct, "quantity": quantity, "name": name,
            "price_paid": price, "currency": currency, "is_paid": is_paid, "source": source,
            "external_ref": raw["external_ref"], "relationship_manager_id": raw["relationship_manager_id"],
            "project_manager_id": raw["project_manager_id"], "purchased_at": purchased, "starts_at": starts,
            "expires_at": expires, "expiry_months": months, "priority": priority, "product_codes": codes,
            "status_label": raw["status_label"] or "", "notes": raw["notes"] or ""}


def _grantable(v: dict, ws: str, found: _Lookups, now: datetime) -> tuple[CreditType, str, str | None, datetime,
                                                                            datetime, datetime | None] | None:
    """What grant_pack would check, against the batch's lookups; None sends the row to grant_pack."""
    ct = found.types.get(v["credit_type"])
    if ct is None:
        return None
    kind, hid = v["kind"], v["holder_id"]
    if kind == "workspace":
        if hid not in (None, ws):
            return None
        hid, customer = ws, None
    else:
        if not hid or (kind, hid) not in found.holders:
            return None
        customer = found.holders[(kind, hid)]
    for manager in (v["relationship_manager_id"], v["project_manager_id"]):
        if manager and manager not in found.users:
            return None
    purchased = v["purchased_at"] or now
    starts = v["starts_at"] or purchased
    expires = v["expires_at"]
    if v["expiry_months"]:
        if expires is not None:
            return None
        try:
            expires = credits.add_months(purchased, v["expiry_months"])
        except ValueError:
            return None
    if expires is not None and expires <= starts:
        return None
    if v["price_paid"] and not v["currency"]:
        return None
    return ct, hid, customer, purchased, starts, expires


# --- the batch ----------------------------------------------------------------------------------

def import_batch(session: Session, rows: list[Row], *, actor: Actor, report: ImportReport) -> None:
    """Grant a batch of parsed rows in the caller's transaction. A bad row is reported alone with its
    line number; the others are granted (bulk), or skipped when an earlier run already granted them."""
    credits.require_grant(actor)
    ws = actor.workspace_id
    keys = [r.key for r in rows if r.key is not None and r.error is None]
    existing = set()
    for start in range(0, len(keys), 5000):
        existing.update(session.scalars(select(Pack.idempotency_key).where(
            Pack.workspace_id == ws, Pack.idempotency_key.in_(keys[start:start + 5000]))))
    found = _lookups(session, ws, rows)
    now = clock.now()
    # In line order: (row, values, grant) for a clean row, (row, None, None) for one the slow path takes.
    plan: list[tuple[Row, dict | None, tuple | None]] = []
    slow_keys: set[str] = set()
    for row in rows:
        if row.error is not None or row.raw is None:
            report.error(row.line, row.error or "invalid row")
            continue
        values = row.values
        if values is not None and row.key not in slow_keys:
            if row.key in existing:
                report.skipped += 1
                continue
            grant = _grantable(values, ws, found, now)
            if grant is not None:
                existing.add(row.key)
                plan.append((row, values, grant))
                continue
        # A later row with the same key must not overtake this one (the first line wins, as before).
        slow_keys.add(row.key)
        plan.append((row, None, None))
    clean = [entry for entry in plan if entry[1] is not None]
    granted: set[int] = set()
    if clean:
        try:
            with session.begin_nested():
                _insert(session, clean, actor=actor, now=now)
        except IntegrityError:
            # Someone else imported some of these rows just now: redo them one by one below.
            for row, _, _ in clean:
                existing.discard(row.key)
        else:
            report.granted += len(clean)
            granted = {id(row) for row, _, _ in clean}
    for row, _values, _grant in plan:
        if id(row) not in granted:
            _grant_one(session, row, actor=actor, report=report, existing=existing)


def _grant_one(session: Session, row: Row, *, actor: Actor, report: ImportReport, existing: set) -> None:
    """The slow path: the schema and grant_pack decide, under a savepoint, so errors are the service's."""
    try:
        data = row.data or _row_to_pack(row.raw, row.key)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        report.error(row.line, f"{where}: {first.get('msg')}")
        return
    if data.idempotency_key in existing:
        report.skipped += 1
        return
    savepoint = session.begin_nested()
    try:
        credits.grant_pack(session, data, actor=actor)
        savepoint.commit()
    except CreditdeskError as exc:
        savepoint.rollback()
        report.error(row.line, f"{exc.message} ({exc.code})")
        return
    existing.add(data.idempotency_key)
    report.granted += 1


# Column order of the rows written below (a test checks these against the models).
ACCOUNT_COLUMNS = ("id", "workspace_id", "unit", "code", "flags", "system_key", "debits_posted", "credits_posted",
                   "debits_pending", "credits_pending", "created_at")
PACK_COLUMNS = ("id", "workspace_id", "holder_kind", "holder_id", "customer_id", "credit_type_id", "unit", "quantity",
                "price_paid", "currency", "is_paid", "source", "external_ref", "name", "relationship_manager_id",
                "project_manager_id", "purchased_at", "starts_at", "expires_at", "expiry_months", "priority",
                "product_codes", "status", "status_label", "notes", "void_reason", "ledger_account_id",
                "origin_pack_id", "credit_transfer_id", "idempotency_key", "created_at", "updated_at")
TRANSFER_COLUMNS = ("id", "workspace_id", "debit_account_id", "credit_account_id", "amount", "unit", "code", "phase",
                    "pending_id", "timeout_at", "operation_id", "reference_kind", "reference_id", "reference_url",
                    "actor_id", "idempotency_key", "created_at")
EVENT_COLUMNS = ("id", "workspace_id", "actor_kind", "actor_id", "api_key_id", "action", "object_type", "object_id",
                 "before", "after", "created_at")


def _insert(session: Session, clean: list[tuple[Row, dict, tuple]], *, actor: Actor, now: datetime) -> None:
    """The rows grant_pack would write for each pack, one executemany INSERT per table.

    On SQLite the values are given to the driver as the column types would store them (UTCDateTime:
    naive UTC text; JSON: json.dumps text; Boolean: 0/1), because SQLAlchemy's per-value processing
    would cost more than SQLite's own work; elsewhere they go through core INSERTs as Python values."""
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    when = _sqlite_datetime if sqlite else _same
    flag = int if sqlite else bool
    codes_of = _json if sqlite else _same
    ws = actor.workspace_id
    n = len(clean)
    account_ids, pack_ids = new_ids("la", n), new_ids("pack", n)
    transfer_ids, event_ids = new_ids("lt", n), new_ids("evt", n)
    accounts, packs, transfers, events = [], [], [], []
    stamp = when(now)
    none_json = "null" if sqlite else None
    event_head = (ws, actor.kind, actor.user_id, actor.api_key_id, "pack.create", "pack")
    for i, (row, v, (ct, hid, customer, purchased, starts, expires)) in enumerate(clean):
        account_id, pack_id, quantity = account_ids[i], pack_ids[i], v["quantity"]
        price, paid, codes = v["price_paid"], v["is_paid"], v["product_codes"]
        paid = price > 0 if paid is None else paid
        accounts.append((account_id, ws, ct.code, "pack", DEBITS_MUST_NOT_EXCEED_CREDITS, None, 0, quantity, 0, 0,
                         stamp))
        pack = (pack_id, ws, v["kind"], hid, customer, ct.id, ct.code, quantity, price, v["currency"], paid,
                v["source"], v["external_ref"], v["name"], v["relationship_manager_id"], v["project_manager_id"],
                purchased, starts, expires, v["expiry_months"], v["priority"], codes, "active", v["status_label"],
                v["notes"], None, account_id, None, None, row.key, now, now)
        # audit.snapshot of the pack grant_pack would have made: every column, JSON-ready.
        after = _snapshot_json(pack) if sqlite else {k: _jsonable(x) for k, x in zip(PACK_COLUMNS, pack)}
        packs.append(pack[:10] + (flag(paid),) + pack[11:16]
                     + (when(purchased), when(starts), when(expires), pack[19], pack[20], codes_of(codes))
                     + pack[22:30] + (stamp, stamp))
        transfers.append((transfer_ids[i], ws, ct.issuance_account_id, account_id, quantity, ct.code, credits.GRANT,
                          POSTED, None, None, pack_id, "pack", pack_id, None, actor.user_id, None, stamp))
        events.append((event_ids[i],) + event_head + (pack_id, none_json, after, stamp))
    for table, columns, rows in ((LedgerAccount.__table__, ACCOUNT_COLUMNS, accounts),
                                 (Pack.__table__, PACK_COLUMNS, packs),
                                 (LedgerTransfer.__table__, TRANSFER_COLUMNS, transfers),
                                 (AuditEvent.__table__, EVENT_COLUMNS, events)):
        if sqlite:
            _sqlite_executemany(conn, table, columns, rows)
        else:
            conn.execute(insert(table), [dict(zip(columns, r)) for r in rows])  # psycopg pipelines it


def _sqlite_executemany(conn, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """One executemany on the DBAPI cursor, in the session's transaction."""
    names = [table.columns[k].name for k in columns]
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(sql, rows)
    except conn.dialect.loaded_dbapi.Error as exc:  # raised as SQLAlchemy would (IntegrityError, ...)
        from sqlalchemy.exc import DBAPIError

        raise DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error,
                                  dialect=conn.dialect) from exc
    finally:
        cursor.close()


def _same(value):
    return value


_last_datetime: list = [None, None]


def _sqlite_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    last = _last_datetime
    if last[0] is value:  # the batch's `now`, in most columns of every row
        return last[1]
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    last[0], last[1] = value, text
    return text


def _json(value) -> str:
    if value is None:
        return "null"
    if value == []:
        return "[]"
    return json.dumps(value)


_q = encode_basestring_ascii  # a JSON string literal, exactly as json.dumps writes it


def _opt(value: str | None) -> str:
    return "null" if value is None else _q(value)


def _snapshot_json(p: tuple) -> str:
    """json.dumps(audit.snapshot(pack)) of a pack row in PACK_COLUMNS order, written out directly (the
    same text, checked by the tests; json.dumps of a 32-key dict would be half the cost of a row)."""
    return (f'{{"id": {_q(p[0])}, "workspace_id": {_q(p[1])}, "holder_kind": {_q(p[2])}, '
            f'"holder_id": {_q(p[3])}, "customer_id": {_opt(p[4])}, "credit_type_id": {_q(p[5])}, '
            f'"unit": {_q(p[6])}, "quantity": {p[7]}, "price_paid": {p[8]}, "currency": {_opt(p[9])}, '
            f'"is_paid": {"true" if p[10] else "false"}, "source": {_q(p[11])}, "external_ref": {_opt(p[12])}, '
            f'"name": {_q(p[13])}, "relationship_manager_id": {_opt(p[14])}, '
            f'"project_manager_id": {_opt(p[15])}, "purchased_at": {_q(p[16].isoformat())}, '
            f'"starts_at": {_q(p[17].isoformat())}, '
            f'"expires_at": {"null" if p[18] is None else _q(p[18].isoformat())}, '
            f'"expiry_months": {"null" if p[19] is None else p[19]}, "priority": {p[20]}, '
            f'"product_codes": {_json(p[21])}, "status": {_q(p[22])}, "status_label": {_q(p[23])}, '
            f'"notes": {_q(p[24])}, "void_reason": null, "ledger_account_id": {_q(p[26])}, '
            f'"origin_pack_id": null, "credit_transfer_id": null, "idempotency_key": {_opt(p[29])}, '
            f'"created_at": {_q(p[30].isoformat())}, "updated_at": {_q(p[31].isoformat())}}}')


# --- a whole file -------------------------------------------------------------------------------

def import_stream(db, stream: io.TextIOBase, *, actor: Actor, batch_size: int = DEFAULT_BATCH,
                  progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import a CSV stream: one transaction per batch of rows, committed as it goes (a crash keeps the
    batches before it; a re-run skips them and goes on). While one batch is written, the next is
    parsed (two batches in memory at most, whatever the file's size)."""
    from concurrent.futures import ThreadPoolExecutor

    credits.require_grant(actor)
    report = ImportReport()

    def write(rows: list[Row]) -> ImportReport:
        def run(session: Session) -> ImportReport:
            # A batch's own counts, added to the report once its transaction went through (db.write
            # may run it again after a serialization failure; the counts must not double).
            attempt = ImportReport()
            import_batch(session, rows, actor=actor, report=attempt)
            return attempt
        return db.write(run)

    def collect(pending) -> None:
        rows, future = pending
        report.merge(future.result())
        if progress:
            progress(len(rows))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="creditdesk-import") as pool:
        pending = None
        batch: list[Row] = []
        for row in read_rows(stream):
            batch.append(row)
            if len(batch) >= batch_size:
                if pending is not None:
                    collect(pending)
                pending = (batch, pool.submit(write, batch))
                batch = []
        if pending is not None:
            collect(pending)
        if batch:
            collect((batch, pool.submit(write, batch)))
    return report
