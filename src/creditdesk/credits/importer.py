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
import operator
from json.encoder import encode_basestring_ascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import NamedTuple
from datetime import UTC, date, datetime, tzinfo

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditdesk import clock, currencies, timezones, webhooks
from creditdesk.audit import Actor, AuditEvent, _jsonable
from creditdesk.credits import governance, repository, schemas
from creditdesk.credits.models import CreditType, Pack
from creditdesk.credits.packs import UNKEYED_SOURCES, add_months, grant_or_find
from creditdesk.errors import CreditdeskError
from creditdesk.ids import new_ids
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import DEBITS_MUST_NOT_EXCEED_CREDITS
from creditdesk.parties.models import Customer, Office, User

# The columns a row's content key is made of, as they always were (a file imported by an earlier version maps
# onto the same packs), then the columns added since (in the key only when a row fills one of them).
KEYED_COLUMNS = ["holder_kind", "holder_id", "credit_type", "quantity", "name", "price_paid", "currency",
                 "is_paid", "source", "external_ref", "relationship_manager_id", "project_manager_id",
                 "purchased_at", "starts_at", "expires_at", "expiry_months", "priority", "product_codes",
                 "status_label", "notes", "idempotency_key"]
# holder: a customer, office or user by name or email instead of holder_kind/holder_id; quantity_minor and
# price_paid_minor: the amounts as integers of the smallest unit (for scripts), instead of quantity and
# price_paid in the units people use ("12.5" hours, "1,200.00" AUD).
EXTRA_COLUMNS = ["holder", "quantity_minor", "price_paid_minor"]
COLUMNS = KEYED_COLUMNS + EXTRA_COLUMNS
REQUIRED = {"credit_type", "name"}
# Each needs one of its columns in the header.
REQUIRED_ONE_OF = (("holder_kind", "holder"), ("quantity", "quantity_minor"))
DEFAULT_BATCH = 5000
# Errors kept for display; beyond this only counted (a file of a million bad rows stays flat in memory).
MAX_KEPT_ERRORS = 10_000

@dataclass
class ImportReport:
    granted: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0
    skipped_lines: list[int] = field(default_factory=list)  # the first MAX_KEPT_ERRORS of them

    def error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append((line, message))

    def skip(self, line: int) -> None:
        self.skipped += 1
        if len(self.skipped_lines) < MAX_KEPT_ERRORS:
            self.skipped_lines.append(line)

    def merge(self, other: "ImportReport") -> None:
        self.granted += other.granted
        self.skipped += other.skipped
        room = MAX_KEPT_ERRORS - len(self.errors)
        self.errors.extend(other.errors[:max(room, 0)])
        self.error_count += other.error_count
        self.skipped_lines.extend(other.skipped_lines[:max(MAX_KEPT_ERRORS - len(self.skipped_lines), 0)])


@dataclass(slots=True)
class Row:
    line: int
    data: schemas.PackCreate | None = None  # set once the row has been parsed by the schema (slow path)
    error: str | None = None
    raw: dict | None = None  # column -> stripped value, None when empty
    key: str | None = None  # the row's idempotency key (its own, or derived from its content)
    values: dict | None = None  # what the cheap checks made of it; None: the slow path decides
    # The key is derived from the row's content (the file gave none): an internal key, kept in the packs'
    # internal_key column, apart from the keys users give (idempotency_key), so none can take it first.
    derived: bool = False

    @property
    def slot(self) -> tuple[bool, str | None]:
        """The key with its namespace (a user's key and a derived one may be the same text)."""
        return self.derived, self.key


def _row_to_pack(row: dict) -> schemas.PackCreate:
    """The grant request of a row (with the row's own key only: a derived key is given to grant_pack apart)."""
    def val(name):
        v = (row.get(name) or "").strip()
        return v or None

    payload = {
        "holder": {"kind": val("holder_kind"), "id": val("holder_id")},
        "credit_type": val("credit_type"), "quantity": val("quantity"), "name": val("name"),
        "idempotency_key": val("idempotency_key"),
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


@dataclass
class Units:
    """What turns a row's cells as people write them into what a grant takes: `quantity` in the credit type's
    unit ("12.5" hours -> 1250 at scale 2) and `price_paid` in the currency ("1,200.00" AUD -> 120000), parsed
    like the grant form (amounts.parse_amount: never rounded, an ambiguous comma refused), and `holder` (a name
    or an email) into holder_kind/holder_id. Read once per import from the workspace (`units_of`)."""

    scales: dict[str, int]  # credit type code -> scale
    holders: dict[str, list[tuple[str, str]]]  # lower-case name or email -> [(kind, id)]
    zone: tzinfo = UTC  # the workspace's: a bare date is a day there (expires_at its end, the others its start)

    def apply(self, raw: dict) -> str | None:
        """Rewrite the row's cells in place; the row's error, if one cannot be read."""
        from creditdesk.amounts import parse_amount

        for column in ("expires_at", "purchased_at", "starts_at"):
            text = raw[column]
            if text is not None and len(text) == 10 and _BARE_DATE.fullmatch(text):
                try:
                    day = date.fromisoformat(text)
                except ValueError:
                    return f"{column}: {text!r} is not a date (invalid_date)"
                at = (timezones.end_of_day if column == "expires_at" else timezones.start_of_day)(day, self.zone)
                raw[column] = at.isoformat()

        name = raw["holder"]
        if name is not None:
            found = self.holders.get(name.lower(), [])
            if not found:
                return (f"holder {name!r}: no customer, office or user of this workspace has that name or email "
                        "(holder_not_found)")
            if len(found) > 1:
                listed = ", ".join(f"{kind} {hid}" for kind, hid in found[:5])
                return (f"holder {name!r} is ambiguous: it names {len(found)} holders ({listed}); give "
                        "holder_kind and holder_id instead (holder_ambiguous)")
            kind, hid = found[0]
            if (raw["holder_kind"] or kind, raw["holder_id"] or hid) != (kind, hid):
                return f"holder {name!r} is {kind} {hid}, not the holder_kind/holder_id of this row (holder_mismatch)"
            raw["holder_kind"], raw["holder_id"] = kind, hid
        try:
            for column, minor in (("quantity", "quantity_minor"), ("price_paid", "price_paid_minor")):
                text = raw[column]
                if raw[minor] is not None:
                    if text is not None:
                        return f"give {column} or {minor}, not both (ambiguous_column)"
                    raw[column] = raw[minor]
                    continue
                if text is None:
                    continue
                if column == "quantity":
                    scale = self.scales.get(raw["credit_type"] or "")
                    if scale is None:
                        return (f"credit_type {raw['credit_type']!r} does not exist in this workspace "
                                "(unknown_credit_type)")
                else:
                    if raw["currency"] is None:
                        return "price_paid needs a currency, e.g. AUD (currency_required)"
                    if raw["currency"] not in currencies.known_codes():
                        return f"currency {raw['currency']!r} is not an ISO 4217 currency code (unknown_currency)"
                    scale = currencies.minor_units(raw["currency"])
                # Plain digits (most rows of a big file) need no parser.
                if text.isascii() and text.isdigit() and len(text) <= 15:
                    raw[column] = str(int(text) * 10 ** scale)
                else:
                    raw[column] = str(parse_amount(text, scale, label=column, allow_zero=column == "price_paid"))
        except CreditdeskError as exc:
            return f"{exc.message} ({exc.code})"
        return None


_BARE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def schema_problem(exc: ValidationError) -> str:
    """A row the schema refused, said about its column ("expires_at: not a date ..."), not pydantic's location
    path ("expires_at.datetime: Input should be a valid datetime or date, invalid character in year")."""
    first = exc.errors()[0]
    column = str(first.get("loc", ("row",))[0]) if first.get("loc") else "row"
    kind = str(first.get("type", ""))
    if kind.startswith(("datetime", "date")):
        return f"{column}: not a date (2027-12-31) or a date and time (2027-12-31T17:00:00+10:00)"
    message = str(first.get("msg", "")).removeprefix("Value error, ").replace("Input should be", "should be")
    return f"{column}: {message}"


def units_of(session: Session, workspace_id: str) -> Units:
    """The workspace's credit types' scales and its customers, offices and users by name and email."""
    scales = dict(session.execute(select(CreditType.code, CreditType.scale).where(
        CreditType.workspace_id == workspace_id)).all())
    holders: dict[str, list[tuple[str, str]]] = {}

    def add(text: str | None, kind: str, hid: str) -> None:
        if text:
            found = holders.setdefault(text.strip().lower(), [])
            if (kind, hid) not in found:
                found.append((kind, hid))
    for kind, model, has_email in (("customer", Customer, True), ("office", Office, True), ("user", User, True)):
        columns = [model.id, model.name] + ([model.email] if has_email else [])
        for hid, name, *email in session.execute(select(*columns).where(model.workspace_id == workspace_id)):
            add(name, kind, hid)
            for address in email:
                add(address, kind, hid)
    return Units(scales, holders, timezones.workspace_zone(session, workspace_id))


def read_rows(stream: io.TextIOBase, *, source_name: str = "", units: Units | None = None) -> Iterator[Row]:
    """Parse a CSV stream one row at a time. Each row gets a stable idempotency key derived from its
    content and how many identical rows came before it, so a re-run maps onto the same packs."""
    reader = csv.reader(stream)
    try:
        fieldnames = next(reader)
    except StopIteration:
        fieldnames = []
    header = set(fieldnames)
    missing = (REQUIRED - header) | {" or ".join(group) for group in REQUIRED_ONE_OF if not header & set(group)}
    if missing:
        yield Row(1, error=f"missing column(s): {', '.join(sorted(missing))}")
        return
    unknown = header - set(COLUMNS)
    if unknown:
        yield Row(1, error=f"unknown column(s): {', '.join(sorted(unknown))}")
        return
    index = {name: i for i, name in enumerate(fieldnames)}  # a repeated column: the last one wins
    positions = [index.get(c) for c in COLUMNS]
    # Cells of columns the file does not have read as empty: a spare empty cell at the end of each row.
    missing_cell = len(fieldnames)
    picks = [missing_cell if i is None else i for i in positions]
    pick = operator.itemgetter(*picks)
    full = missing_cell + 1
    pad = [""] * full
    seen = _SeenDigests()
    sha256, occurrence = hashlib.sha256, seen.occurrence
    key_column = COLUMNS.index("idempotency_key")
    keyed = len(KEYED_COLUMNS)
    for cells in reader:
        if not cells:
            continue  # blank lines are no rows (as csv.DictReader has it)
        width = len(cells)
        if width == missing_cell:
            cells.append("")
        elif width < missing_cell:
            cells.extend(pad[width:])  # a short row: the cells it lacks are empty
        else:
            del cells[missing_cell:]  # cells beyond the header are ignored
            cells.append("")
        stripped = [c.strip() for c in pick(cells)]
        # The content: "\x1f".join of the stripped cells in KEYED_COLUMNS order, empty for missing ones, and
        # the newer columns after "\x1e" when the row fills one.
        content = "\x1f".join(stripped[:keyed])
        if any(stripped[keyed:]):
            content += "\x1e" + "\x1f".join(stripped[keyed:])
        digest = sha256(content.encode()).digest()
        raw = dict(zip(COLUMNS, [c or None for c in stripped]))
        n = occurrence(digest)  # counted for every row, own key or not (as it always was)
        own = stripped[key_column]
        key = own or f"import:{digest.hex()[:40]}:{n}"
        error = None if units is None else units.apply(raw)
        if error is not None:
            yield Row(reader.line_num, raw=raw, key=key, error=error, derived=not own)
            continue
        yield Row(reader.line_num, raw=raw, key=key, values=_checked(raw), derived=not own)


# --- validation only: a whole file checked before anything of it is written (the back-office import) ---

@dataclass
class FileCheck:
    """A whole file read and checked by `validate_file`, nothing written. `file_error`: the file cannot
    be read as CSV (or its header is wrong), so nothing of it may be imported. Otherwise `rows` are the
    rows to import in line order, a bad row carrying its `error` (import_batch reports it and grants
    the others), and `skipped` the rows left out, with why: (line, reason)."""

    rows: list[Row] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    file_error: str | None = None


SKIPPED_BEFORE = "already imported before"
SKIPPED_REPEATED = "repeated in this file"


class _CountedLines:
    """The stream's lines as csv.reader takes them, counted: the line a csv.Error stopped at (a quoted
    field may span lines, so the last row's line number is not it)."""

    def __init__(self, stream: io.TextIOBase):
        self.stream = iter(stream)
        self.count = 0

    def __iter__(self) -> "_CountedLines":
        return self

    def __next__(self) -> str:
        line = next(self.stream)
        self.count += 1
        return line


def validate_file(stream: io.TextIOBase, *, units: Units | None = None) -> FileCheck:
    """Read and check every row of a file, in memory (for files that fit: the back office takes 1 MB),
    before anything is written: a csv.Error (such as a field over csv.field_size_limit) with its line,
    the schema's verdict on every row (the same as import_batch's), and rows repeating an
    idempotency_key: the same content is one pack (the repeat is skipped), other content an error."""
    lines = _CountedLines(stream)
    check = FileCheck()
    try:
        for row in read_rows(lines, units=units):
            if row.raw is None:  # the header is wrong: no row of the file can be read
                return FileCheck(file_error=f"line {row.line}: {row.error}")
            check.rows.append(row)
    except csv.Error as exc:
        return FileCheck(file_error=f"line {lines.count} cannot be read as CSV ({exc})")
    first_with_key: dict[str, Row] = {}
    kept: list[Row] = []
    for row in check.rows:
        if row.error is not None:  # a cell that could not be read (Units.apply)
            kept.append(row)
            continue
        try:
            row.data = _row_to_pack(row.raw)
        except ValidationError as exc:
            row.error = schema_problem(exc)
            kept.append(row)
            continue
        own_key = row.raw["idempotency_key"]
        earlier = first_with_key.setdefault(own_key, row) if own_key else row
        if earlier is row:
            kept.append(row)
        elif earlier.raw == row.raw:
            check.skipped.append((row.line, f"{SKIPPED_REPEATED}: the same pack as line {earlier.line} "
                                            "(same idempotency_key and content), imported once"))
        else:
            row.error = (f"idempotency_key {own_key!r} is already used by line {earlier.line} with other content; "
                         "give this row a key of its own")
            kept.append(row)
    check.rows = kept
    return check


def validate_against_workspace(session: Session, workspace_id: str,
                               rows: list[Row]) -> tuple[list[Row], list[tuple[int, str]]]:
    """(rows still to import, rows skipped with why) for rows whose key a pack of the workspace already
    has (a read; run it in the importing transaction). A key derived from the row's content means the
    same row was imported before: skipped. A key of the file's own given to a pack with other content
    is an error row, never a silent skip."""
    # Each key in its namespace (Row.slot): a file's own keys in idempotency_key, derived ones in internal_key.
    found: dict[tuple[bool, str], tuple] = {}
    for derived, column in ((False, Pack.idempotency_key), (True, Pack.internal_key)):
        keys = [r.key for r in rows if r.error is None and r.key and r.derived is derived]
        for key, *pack in _select(
                session, lambda chunk, column=column: select(
                    column, Pack.id, Pack.name, Pack.holder_kind, Pack.holder_id, Pack.unit,
                    Pack.quantity).where(Pack.workspace_id == workspace_id, column.in_(chunk)),
                f"SELECT {column.name}, id, name, holder_kind, holder_id, unit, quantity FROM packs "
                f"WHERE workspace_id = ? AND {column.name} IN ({{}})", (workspace_id,), keys):
            found[(derived, key)] = tuple(pack)
    if not found:
        return rows, []
    remaining: list[Row] = []
    skipped: list[tuple[int, str]] = []
    for row in rows:
        pack = found.get(row.slot) if row.error is None else None
        if pack is None:
            remaining.append(row)
            continue
        pack_id, name, kind, holder, unit, quantity = pack
        data = row.data or _row_to_pack(row.raw)
        same = (data.holder.kind, data.holder.id or workspace_id, data.credit_type, data.quantity, data.name) == \
            (kind, holder, unit, quantity, name)
        if row.raw["idempotency_key"] is None or same:
            skipped.append((row.line, f"{SKIPPED_BEFORE} as pack {name} ({pack_id})"))
        else:
            remaining.append(Row(row.line, data=data, raw=row.raw, key=row.key, values=row.values, error=(
                f"idempotency_key {row.key!r} already belongs to pack {name} ({pack_id}), which has other "
                "content; give this row a key of its own")))
    return remaining, skipped


# --- cheap checks: a row passes only if the schema and grant_pack would take it the same way ---------

# The ISO forms on which datetime.fromisoformat and the schema's parser agree; anything else is slow path.
_ISO = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}:[0-9]{2})(:[0-9]{2}(?:\.([0-9]{1,6}))?)?"
                  r"(Z|[+-][0-9]{2}:[0-9]{2})?)?")
_HOLDER_KINDS = {"office", "user", "customer", "workspace"}
_SOURCES = {"manual", "purchase", "crm_deal", "transfer", "promotion", "subscription"}
_LIMITS = {"external_ref": 200, "status_label": 100, "notes": 10_000, "relationship_manager_id": 40,
           "project_manager_id": 40}
_MAX_AMOUNT = 10**15


def _digits(text: str, most: int) -> bool:
    """text is 1 to `most` ASCII digits (the regex [0-9]{1,most}; isdigit alone takes other scripts' digits)."""
    return len(text) <= most and text.isascii() and text.isdigit()


@dataclass(slots=True, frozen=True)
class When:
    """A datetime from the file with the two texts the fast path writes of it: `stored`, what the
    UTCDateTime column stores on SQLite (naive UTC, as SQLAlchemy's DateTime renders it) and `iso`,
    what the audit snapshot holds (`isoformat()` of the value grant_pack would have)."""

    at: datetime
    stored: str
    iso: str


def _rendered(at: datetime) -> When:
    return When(at, _sqlite_datetime(at), at.isoformat())


def _when(text: str | None) -> When | None | bool:
    """The datetime (UTC when naive), None when empty, False when not a form the fast path reads."""
    if text is None:
        return None
    match = _ISO.fullmatch(text)
    if match is None:
        return False
    try:
        at = datetime.fromisoformat(text)  # checks the ranges (month 13, Feb 30, hour 24: slow path)
    except ValueError:
        return False
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    elif at.tzinfo is not UTC:  # an offset other than Z or +-00:00: rendered the long way
        return _rendered(at)
    # UTC, as written: the texts straight from the string's parts (what _rendered would give, cheaper).
    date, hm, seconds, fraction, _zone = match.groups()
    clock_part = f"{hm or '00:00'}{seconds[:3] if seconds else ':00'}"
    micro = (fraction + "00000")[:6] if fraction else "000000"
    return When(at, f"{date} {clock_part}.{micro}",
                f"{date}T{clock_part}{'' if micro == '000000' else '.' + micro}+00:00")


class _TypeRef(NamedTuple):
    code: str
    id: str
    issuance_account_id: str
    required_permission: str | None


@dataclass
class _Lookups:
    """What a batch's rows refer to, fetched once per batch."""

    types: dict[str, "_TypeRef"]
    holders: dict[tuple[str, str], str | None]  # (kind, id) -> customer id
    users: set[str]


def _select(session: Session, query: Callable, sql: str, head: tuple, values=None) -> list[tuple]:
    """Rows of a lookup, `values` (when given) in chunks of 5,000 for its IN list: on SQLite SQL text
    on the DB-API cursor (plain text and integer columns: nothing for a type processor to do; the
    ORM's statement building cost more than SQLite's work), elsewhere `query(chunk)` through the session."""
    if values is None:
        chunks: list = [None]
    else:
        values = list(values)
        chunks = [values[i:i + 5000] for i in range(0, len(values), 5000)]
    out: list[tuple] = []
    if session.get_bind().dialect.name == "sqlite":
        cursor = session.connection().connection.driver_connection.cursor()
        try:
            for chunk in chunks:
                if chunk is None:
                    cursor.execute(sql, head)
                else:
                    cursor.execute(sql.format(",".join("?" * len(chunk))), head + tuple(chunk))
                out.extend(cursor.fetchall())
        finally:
            cursor.close()
    else:
        for chunk in chunks:
            out.extend(tuple(r) for r in session.execute(query(chunk)))
    return out


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
    types = {code: _TypeRef(code, ct_id, issuance, permission) for code, ct_id, issuance, permission in _select(
        session, lambda _: select(CreditType.code, CreditType.id, CreditType.issuance_account_id,
                                  CreditType.required_permission).where(CreditType.workspace_id == ws),
        "SELECT code, id, issuance_account_id, required_permission FROM credit_types WHERE workspace_id = ?",
        (ws,))}
    holders: dict[tuple[str, str], str | None] = {}
    for oid, customer in _select(
            session, lambda chunk: select(Office.id, Office.customer_id).where(Office.workspace_id == ws,
                                                                              Office.id.in_(chunk)),
            "SELECT id, customer_id FROM offices WHERE workspace_id = ? AND id IN ({})", (ws,), wanted["office"]):
        holders[("office", oid)] = customer
    for uid, customer in _select(
            session, lambda chunk: select(User.id, Office.customer_id)
            .outerjoin(Office, Office.id == User.primary_office_id)
            .where(User.workspace_id == ws, User.id.in_(chunk)),
            "SELECT users.id, offices.customer_id FROM users LEFT OUTER JOIN offices "
            "ON offices.id = users.primary_office_id WHERE users.workspace_id = ? AND users.id IN ({})",
            (ws,), wanted["user"]):
        holders[("user", uid)] = customer
    for (cid,) in _select(
            session, lambda chunk: select(Customer.id).where(Customer.workspace_id == ws, Customer.id.in_(chunk)),
            "SELECT id FROM customers WHERE workspace_id = ? AND id IN ({})", (ws,), wanted["customer"]):
        holders[("customer", cid)] = cid
    users = {uid for (uid,) in _select(
        session, lambda chunk: select(User.id).where(User.workspace_id == ws, User.id.in_(chunk)),
        "SELECT id FROM users WHERE workspace_id = ? AND id IN ({})", (ws,), managers)}
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
    if quantity is None or not _digits(quantity, 16):
        return None
    quantity = int(quantity)
    price = raw["price_paid"]
    if price is None:
        price = 0
    elif _digits(price, 16):
        price = int(price)
    else:
        return None
    if not 0 < quantity <= _MAX_AMOUNT or price > _MAX_AMOUNT:
        return None
    currency = raw["currency"]
    if currency is not None and currency not in currencies.known_codes():
        return None  # the slow path says why (PackCreate: unknown_currency)
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
        if not _digits(months, 16) or not 1 <= int(months) <= 600:
            return None
        months = int(months)
    priority = raw["priority"]
    if priority is None:
        priority = 100
    elif _digits(priority[1:] if priority[0] == "-" else priority, 7) and -1_000_000 <= int(priority) <= 1_000_000:
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


def _grantable(v: dict, ws: str, found: _Lookups, now: When) -> tuple[_TypeRef, str, str | None, When, When,
                                                                        When | None] | None:
    """What grant_pack would check, against the batch's lookups; None sends the row to grant_pack."""
    ct = found.types.get(v["credit_type"])
    if ct is None:
        return None
    # The rules of governed types (SMS) and of reserved sources are grant_pack's (governance.authorize_grant):
    # such rows take the slow path, where they are granted or refused exactly as a grant would be.
    if ct.required_permission or v["source"] == "transfer" or (
            v["source"] == "purchase" and (v["external_ref"] or "").startswith(governance.SMS_PURCHASE_PREFIX)):
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
            expires = _rendered(add_months(purchased.at, v["expiry_months"]))
        except ValueError:
            return None
    if expires is not None and expires.at <= starts.at:
        return None
    if v["price_paid"] and not v["currency"]:
        return None
    return ct, hid, customer, purchased, starts, expires


# --- the batch ----------------------------------------------------------------------------------

def import_batch(session: Session, rows: list[Row], *, actor: Actor, report: ImportReport) -> None:
    """Grant a batch of parsed rows in the caller's transaction. A bad row is reported alone with its
    line number; the others are granted (bulk), or skipped when an earlier run already granted them."""
    governance.require_grant(actor)
    ws = actor.workspace_id
    live = [r for r in rows if r.key is not None and r.error is None]
    # Keys already granted, each with its namespace (Row.slot): users' keys, and content-derived ones.
    existing = {(False, key) for (key,) in _select(
        session, lambda chunk: select(Pack.idempotency_key).where(Pack.workspace_id == ws,
                                                                 Pack.idempotency_key.in_(chunk)),
        "SELECT idempotency_key FROM packs WHERE workspace_id = ? AND idempotency_key IN ({})", (ws,),
        [r.key for r in live if not r.derived])}
    existing |= {(True, key) for (key,) in _select(
        session, lambda chunk: select(Pack.internal_key).where(Pack.workspace_id == ws, Pack.internal_key.in_(chunk)),
        "SELECT internal_key FROM packs WHERE workspace_id = ? AND internal_key IN ({})", (ws,),
        [r.key for r in live if r.derived])}
    found = _lookups(session, ws, rows)
    # (source, external ref) keys already claimed by a pack: such a row goes to grant_or_find, which answers
    # with that pack or refuses external_ref_taken (one rule, in packs.py); an unclaimed one is granted here
    # with its key, and a later row of the batch with the same key then meets it on the slow path.
    claimed = set(_select(
        session, lambda chunk: select(Pack.source, Pack.external_key).where(Pack.workspace_id == ws,
                                                                          Pack.external_key.in_(chunk)),
        "SELECT source, external_key FROM packs WHERE workspace_id = ? AND external_key IN ({})", (ws,),
        {row.values["external_ref"] for row in live if row.values is not None and _external_key(row.values)}))
    now = _rendered(clock.now())
    # In line order: (row, values, grant) for a clean row, (row, None, None) for one the slow path takes.
    plan: list[tuple[Row, dict | None, tuple | None]] = []
    slow_keys: set[str] = set()
    for row in rows:
        if row.error is not None or row.raw is None:
            report.error(row.line, row.error or "invalid row")
            continue
        values = row.values
        if values is not None and row.slot not in slow_keys:
            if row.slot in existing:
                report.skip(row.line)
                continue
            ref = _external_key(values)
            grant = None if ref is not None and (values["source"], ref) in claimed else _grantable(values, ws,
                                                                                                  found, now)
            if grant is not None:
                existing.add(row.slot)
                if ref is not None:
                    claimed.add((values["source"], ref))
                plan.append((row, values, grant))
                continue
        # A later row with the same key must not overtake this one (the first line wins, as before).
        slow_keys.add(row.slot)
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
                existing.discard(row.slot)
        else:
            report.granted += len(clean)
            granted = {id(row) for row, _, _ in clean}
    for row, _values, _grant in plan:
        if id(row) not in granted:
            _grant_one(session, row, actor=actor, report=report, existing=existing)


def _external_key(v: dict) -> str | None:
    """The (source, external ref) key a clean row claims (packs.external_key_of on the row's values)."""
    return v["external_ref"] if v["external_ref"] and v["source"] not in UNKEYED_SOURCES else None


def _grant_one(session: Session, row: Row, *, actor: Actor, report: ImportReport, existing: set) -> None:
    """The slow path: the schema and grant_pack decide, under a savepoint, so errors are the service's."""
    try:
        data = row.data or _row_to_pack(row.raw)
    except ValidationError as exc:
        report.error(row.line, schema_problem(exc))
        return
    if row.slot in existing:
        report.skip(row.line)
        return
    savepoint = session.begin_nested()
    try:
        _, created = grant_or_find(session, data, actor=actor, internal_key=row.key if row.derived else None)
        savepoint.commit()
    except CreditdeskError as exc:
        savepoint.rollback()
        report.error(row.line, f"{exc.message} ({exc.code})")
        return
    existing.add(row.slot)
    if created:
        report.granted += 1
    else:  # granted before (its key, or its source and external ref)
        report.skip(row.line)


# Column order of the rows written below (a test checks these against the models).
PACK_COLUMNS = ("id", "workspace_id", "holder_kind", "holder_id", "customer_id", "credit_type_id", "unit", "quantity",
                "price_paid", "currency", "is_paid", "source", "external_ref", "name", "relationship_manager_id",
                "project_manager_id", "purchased_at", "starts_at", "expires_at", "expiry_months", "priority",
                "product_codes", "status", "status_label", "notes", "void_reason", "ledger_account_id",
                "origin_pack_id", "credit_transfer_id", "idempotency_key", "internal_key", "created_at",
                "updated_at", "wallet_id", "external_key")
EVENT_COLUMNS = ("id", "workspace_id", "actor_kind", "actor_id", "api_key_id", "action", "object_type", "object_id",
                 "before", "after", "created_at")
_TABLES = ((Pack.__table__, PACK_COLUMNS), (AuditEvent.__table__, EVENT_COLUMNS))


def _insert(session: Session, clean: list[tuple[Row, dict, tuple]], *, actor: Actor, now: When) -> None:
    """The rows grant_pack would write for each pack, one executemany INSERT per table.

    The ledger's rows (each pack's account and its grant transfer) are posted through the ledger's
    batch, one operation per pack. The packs and their audit events: on SQLite the values are given
    to the driver as the column types would store them (UTCDateTime: naive UTC text; JSON: json.dumps
    text; Boolean: 0/1), because SQLAlchemy's per-value processing would cost more than SQLite's own
    work; elsewhere they go through core INSERTs as Python values."""
    conn = session.connection()
    n = len(clean)
    ids = new_ids("la", n), new_ids("pack", n), new_ids("lt", n), new_ids("evt", n)
    _post_grants(session, clean, ids, actor=actor, now=now.at)
    if conn.dialect.name == "sqlite":
        tables = _sqlite_rows(clean, ids, actor=actor, now=now)
        for (table, columns), rows in zip(_TABLES, tables):
            _sqlite_executemany(conn, table, columns, rows)
    else:
        tables = _python_rows(clean, ids, actor=actor, now=now.at)
        for (table, columns), rows in zip(_TABLES, tables):
            conn.execute(insert(table), [dict(zip(columns, r)) for r in rows])  # psycopg pipelines it
    _emit_created(session, clean, ids[1], workspace_id=actor.workspace_id)


def _emit_created(session: Session, clean, pack_ids, *, workspace_id: str) -> None:
    """pack.created for each pack, as grant_pack emits it (webhooks.emit renders nothing when no endpoint of the
    workspace wants the event)."""
    for i, (_, v, (ct, hid, _customer, _purchased, starts, expires)) in enumerate(clean):
        def data(i=i, v=v, ct=ct, hid=hid, starts=starts, expires=expires) -> dict:
            price, paid = v["price_paid"], v["is_paid"]
            return webhooks.pack_data(SimpleNamespace(
                id=pack_ids[i], holder_kind=v["kind"], holder_id=hid, unit=ct.code, quantity=v["quantity"],
                name=v["name"], source=v["source"], external_ref=v["external_ref"],
                is_paid=price > 0 if paid is None else paid, price_paid=price, currency=v["currency"],
                starts_at=starts.at, expires_at=expires.at if expires else None, status="active"))
        webhooks.emit(session, workspace_id, "pack.created", data)


def _post_grants(session: Session, clean, ids, *, actor: Actor, now: datetime) -> None:
    """Each pack's ledger account, opened with its grant from the credit type's issuance account, through
    the ledger's batch (one executemany per ledger table)."""
    ws, user_id, grant = actor.workspace_id, actor.user_id, repository.GRANT
    account_ids, pack_ids, transfer_ids, _ = ids
    batch = ledger.Batch(session, now=now)
    batch.open_accounts((account_ids[i], ws, ct.code, "pack", DEBITS_MUST_NOT_EXCEED_CREDITS, None)
                        for i, (_, _, (ct, *_)) in enumerate(clean))
    refused = batch.post_many([
        (transfer_ids[i], ws, ct.issuance_account_id, account_ids[i], v["quantity"], grant, pack_ids[i], "pack",
         pack_ids[i], None, user_id) for i, (_, v, (ct, *_)) in enumerate(clean)])
    if refused:  # pragma: no cover - rows are checked before (a positive quantity, the type's own accounts)
        raise refused[0][1]
    batch.write()


def _python_rows(clean, ids, *, actor: Actor, now: datetime) -> tuple[list, list]:
    """The packs' and events' rows as Python values (for core INSERTs)."""
    ws = actor.workspace_id
    account_ids, pack_ids, _, event_ids = ids
    packs, events = [], []
    event_head = (ws, actor.kind, actor.user_id, actor.api_key_id, "pack.create", "pack")
    for i, (row, v, (ct, hid, customer, purchased, starts, expires)) in enumerate(clean):
        account_id, pack_id, quantity = account_ids[i], pack_ids[i], v["quantity"]
        price, paid = v["price_paid"], v["is_paid"]
        paid = price > 0 if paid is None else paid
        pack = (pack_id, ws, v["kind"], hid, customer, ct.id, ct.code, quantity, price, v["currency"], paid,
                v["source"], v["external_ref"], v["name"], v["relationship_manager_id"], v["project_manager_id"],
                purchased.at, starts.at, expires.at if expires else None, v["expiry_months"], v["priority"],
                v["product_codes"], "active", v["status_label"], v["notes"], None, account_id, None, None,
                None if row.derived else row.key, row.key if row.derived else None, now, now, None,
                _external_key(v))
        packs.append(pack)
        # audit.snapshot of the pack grant_pack would have made: every column, JSON-ready.
        events.append((event_ids[i],) + event_head
                      + (pack_id, None, {k: _jsonable(x) for k, x in zip(PACK_COLUMNS, pack)}, now))
    return packs, events


def _sqlite_rows(clean, ids, *, actor: Actor, now: When) -> tuple[list, list]:
    """The packs' and events' rows in their stored form on SQLite (texts for datetimes and JSON, 0/1)."""
    ws = actor.workspace_id
    account_ids, pack_ids, _, event_ids = ids
    packs, events = [], []
    stamp, now_iso = now.stored, now.iso
    event_head = (ws, actor.kind, actor.user_id, actor.api_key_id, "pack.create", "pack")
    quoted: dict = {}  # JSON string literals of the values many rows share (workspace, type, kind, source)

    def q(text: str) -> str:
        literal = quoted.get(text)
        if literal is None:
            literal = quoted[text] = _q(text)
        return literal

    q_ws = q(ws)
    for i, (row, v, (ct, hid, customer, purchased, starts, expires)) in enumerate(clean):
        account_id, pack_id, quantity = account_ids[i], pack_ids[i], v["quantity"]
        price, paid, codes = v["price_paid"], v["is_paid"], v["product_codes"]
        paid = price > 0 if paid is None else paid
        codes_json = _json(codes)
        unit, currency, external_ref, name = ct.code, v["currency"], v["external_ref"], v["name"]
        rm, pm, months = v["relationship_manager_id"], v["project_manager_id"], v["expiry_months"]
        key, internal = (None, row.key) if row.derived else (row.key, None)
        external_key = _external_key(v)
        packs.append((pack_id, ws, v["kind"], hid, customer, ct.id, unit, quantity, price, currency, int(paid),
                      v["source"], external_ref, name, rm, pm, purchased.stored, starts.stored,
                      expires.stored if expires else None, months, v["priority"], codes_json, "active",
                      v["status_label"], v["notes"], None, account_id, None, None, key, internal, stamp, stamp, None,
                      external_key))
        # json.dumps(audit.snapshot(pack)) of the pack grant_pack would have made (see _snapshot_json).
        after = (f'{{"id": "{pack_id}", "workspace_id": {q_ws}, "holder_kind": {q(v["kind"])}, '
                 f'"holder_id": {q(hid)}, "customer_id": {"null" if customer is None else q(customer)}, '
                 f'"credit_type_id": {q(ct.id)}, "unit": {q(unit)}, "quantity": {quantity}, "price_paid": {price}, '
                 f'"currency": {"null" if currency is None else q(currency)}, '
                 f'"is_paid": {"true" if paid else "false"}, "source": {q(v["source"])}, '
                 f'"external_ref": {_opt(external_ref)}, "name": {_q(name)}, '
                 f'"relationship_manager_id": {_opt(rm)}, "project_manager_id": {_opt(pm)}, '
                 f'"purchased_at": "{purchased.iso}", "starts_at": "{starts.iso}", '
                 f'"expires_at": {"null" if expires is None else chr(34) + expires.iso + chr(34)}, '
                 f'"expiry_months": {"null" if months is None else months}, "priority": {v["priority"]}, '
                 f'"product_codes": {codes_json}, "status": "active", "status_label": {q(v["status_label"])}, '
                 f'"notes": {_q(v["notes"])}, "void_reason": null, '
                 f'"ledger_account_id": "{account_id}", "origin_pack_id": null, "credit_transfer_id": null, '
                 f'"idempotency_key": {_opt(key)}, "internal_key": {_opt(internal)}, '
                 f'"created_at": "{now_iso}", "updated_at": "{now_iso}", "wallet_id": null, '
                 f'"external_key": {_opt(external_key)}}}')
        events.append((event_ids[i],) + event_head + (pack_id, "null", after, stamp))
    return packs, events


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


def _sqlite_datetime(value: datetime | None) -> str | None:
    """What the UTCDateTime column stores on SQLite (naive UTC text, SQLAlchemy's DateTime form).

    No memo: the parser thread (dates with offsets) and the writer thread (each batch's `now`,
    expiry_months) both call this, and a module-level one was shared by them (issue 11: a thread could
    read the text of the other's date). Each value is rendered once anyway, into its When."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _json(value) -> str:
    if value is None:
        return "null"
    if value == []:
        return "[]"
    return json.dumps(value)


_q = encode_basestring_ascii  # a JSON string literal, exactly as json.dumps writes it


def _opt(value: str | None) -> str:
    return "null" if value is None else _q(value)


# --- a whole file -------------------------------------------------------------------------------

# SQLite settings of the importing connection while an import runs (restored by its last batch):
# - a page cache of 32 MiB instead of 2 MB, for the random-order indexes' hot pages (idempotency key,
#   holder, expiry, label) within and between batches; a fixed size, so memory stays bounded whatever
#   the file's size (128 MiB measured no faster on 100k rows, and cost 100 MiB more);
# - checkpoints every IMPORT_WAL_AUTOCHECKPOINT pages of WAL rather than every 1,000: with the default,
#   every batch's COMMIT is followed by a checkpoint copying all of its pages into the database file (and
#   an fsync of it), so an index page touched by every batch is written twice per batch; checkpointing
#   every few batches writes it to the database file once per checkpoint. Durability is unchanged
#   (every COMMIT is fsynced in the WAL, synchronous=FULL).
IMPORT_CACHE_KIB = 32 * 1024
IMPORT_WAL_AUTOCHECKPOINT = 65536  # pages (256 MiB of WAL at 4 KiB pages)
GC_EVERY = 10  # batches between garbage collections during an import (see import_stream)
_TUNED = (("cache_size", f"-{IMPORT_CACHE_KIB}"), ("wal_autocheckpoint", str(IMPORT_WAL_AUTOCHECKPOINT)))


class _SqliteTuning:
    """Applies _TUNED to the connection of each batch (a batch may get another pooled connection) and
    puts back the connection's own values at the end of the import."""

    def __init__(self) -> None:
        self.saved: dict[int, tuple] = {}  # id(DB-API connection) -> (connection, its values)

    def apply(self, session: Session) -> None:
        raw = session.connection().connection.driver_connection
        if id(raw) not in self.saved:
            before = tuple(raw.execute(f"PRAGMA {name}").fetchone()[0] for name, _ in _TUNED)
            self.saved[id(raw)] = (raw, before)
            for name, value in _TUNED:
                raw.execute(f"PRAGMA {name}={value}")

    def restore(self, session: Session) -> None:
        """Put back this session's connection (in the last batch: its COMMIT then checkpoints as usual)."""
        raw = session.connection().connection.driver_connection
        entry = self.saved.pop(id(raw), None)
        if entry is not None:
            self._put_back(raw, entry[1])

    def restore_all(self) -> None:
        """Put back every connection still tuned: batches may have run on several pooled connections, and
        an import that stopped early never reached its last batch. Through the connection objects kept
        (a PRAGMA of these two settings is the connection's alone and runs under SQLite's own mutex)."""
        while self.saved:
            _, (raw, values) = self.saved.popitem()
            self._put_back(raw, values)

    @staticmethod
    def _put_back(raw, values: tuple) -> None:
        for (name, _), value in zip(_TUNED, values):
            raw.execute(f"PRAGMA {name}={int(value)}")


def _batches(rows: Iterator[Row], size: int) -> Iterator[tuple[list[Row], bool]]:
    """(batch, is it the last one) for a stream of rows."""
    batch: list[Row] = []
    for row in rows:
        if len(batch) >= size:
            yield batch, False
            batch = []
        batch.append(row)
    if batch:
        yield batch, True


def import_stream(db, stream: io.TextIOBase, *, actor: Actor, batch_size: int = DEFAULT_BATCH,
                  progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import a CSV stream: one transaction per batch of rows, committed as it goes (a crash keeps the
    batches before it; a re-run skips them and goes on). While one batch is written, the next is
    parsed (two batches in memory at most, whatever the file's size)."""
    import gc
    from concurrent.futures import ThreadPoolExecutor

    governance.require_grant(actor)
    report = ImportReport()
    tuning = _SqliteTuning() if db.is_sqlite else None
    with db.read() as session:
        units = units_of(session, actor.workspace_id)

    def write(rows: list[Row], last: bool) -> ImportReport:
        def run(session: Session) -> ImportReport:
            # A batch's own counts, added to the report once its transaction went through (db.write
            # may run it again after a serialization failure; the counts must not double).
            attempt = ImportReport()
            if tuning is not None:
                tuning.apply(session)
            import_batch(session, rows, actor=actor, report=attempt)
            if tuning is not None and last:
                tuning.restore(session)
            return attempt
        return db.write(run)

    def collect(pending) -> None:
        rows, future = pending
        report.merge(future.result())
        if progress:
            progress(len(rows))

    # The cyclic garbage collector, left to itself, ran ~100 times per batch over the rows in flight (a
    # batch allocates ~15 container objects per row that live until it is written): ~11% of an import's
    # CPU. While the import runs it is paused and run every GC_EVERY batches instead, over what the
    # import allocated only (what the process held before is frozen out of its passes), so garbage
    # cycles are still freed and memory stays flat.
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="creditdesk-import") as pool:
            pending = None
            for number, (batch, last) in enumerate(_batches(read_rows(stream, units=units), batch_size), 1):
                if pending is not None:
                    collect(pending)
                pending = (batch, pool.submit(write, batch, last))
                if number % GC_EVERY == 0:
                    gc.collect()
            if pending is not None:
                collect(pending)
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
        if tuning is not None and tuning.saved:  # other connections than the last batch's, or an early stop
            try:
                tuning.restore_all()
            except Exception:  # noqa: BLE001 - best effort; the import's own error is what matters
                pass
    return report


# --- preview: what an import would do, written nothing ----------------------------------------------------

@dataclass
class Preview:
    """An import run in a transaction that is rolled back: the rows it would grant (`to_create`, in line order,
    the first MAX_KEPT_ERRORS kept), the rows it would skip with why, and the refused ones with why."""

    to_create: list[Row] = field(default_factory=list)
    create_count: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0


class _RolledBack(Exception):
    """Carries a preview out of its write transaction, which the exception rolls back."""


def preview_rows(db, rows: list[Row], *, actor: Actor, skipped: list[tuple[int, str]] | None = None,
                 batch_size: int = DEFAULT_BATCH) -> Preview:
    """Run import_batch over the rows exactly as an import would, in one transaction that is then rolled back
    (nothing is written, no number or key is taken), and say what it would have done."""
    governance.require_grant(actor)

    def run(session: Session) -> None:
        remaining, already = validate_against_workspace(session, actor.workspace_id, rows)
        report = ImportReport()
        for start in range(0, len(remaining), batch_size):
            import_batch(session, remaining[start:start + batch_size], actor=actor, report=report)
        raise _RolledBack(remaining, already, report)
    try:
        db.write(run)
    except _RolledBack as done:
        remaining, already, report = done.args
    else:  # pragma: no cover - run always raises
        raise AssertionError("the preview's transaction was not rolled back")
    refused = {line for line, _ in report.errors}
    skipped_lines = set(report.skipped_lines)
    out = Preview(errors=sorted(report.errors), error_count=report.error_count)
    out.skipped = sorted([*(skipped or []), *already,
                          *((line, "already has its pack (the same grant: not granted twice)")
                            for line in report.skipped_lines)])
    for row in remaining:
        if row.line in refused or row.line in skipped_lines:
            continue
        out.create_count += 1
        if len(out.to_create) < MAX_KEPT_ERRORS:
            out.to_create.append(row)
    return out


# --- a template to start from ------------------------------------------------------------------------------

TEMPLATE_COLUMNS = ["holder", "credit_type", "quantity", "name", "price_paid", "currency", "expiry_months",
                    "product_codes", "notes"]


def template_csv(session: Session, workspace_id: str) -> str:
    """A CSV with the columns an office uses and one sample row that imports as it is in this workspace (its
    first office by name, its first credit type, 10 in that type's unit, a price in its default currency)."""
    office = session.execute(select(Office.name).where(Office.workspace_id == workspace_id)
                             .order_by(Office.created_at, Office.id).limit(1)).scalar()
    code = session.execute(select(CreditType.code).where(CreditType.workspace_id == workspace_id,
                                                         CreditType.required_permission.is_(None))
                           .order_by(CreditType.created_at, CreditType.id).limit(1)).scalar()
    from creditdesk.billing.models import BillingSettings

    currency = session.execute(select(BillingSettings.default_currency).where(
        BillingSettings.workspace_id == workspace_id)).scalar() or "AUD"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TEMPLATE_COLUMNS)
    writer.writerow([office or "London office", code or "hours", "10", "Sample pack", "1,200.00", currency, "12",
                     "", "A sample row: change it or delete it"])
    return out.getvalue()
