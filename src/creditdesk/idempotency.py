"""Idempotency-Key handling for every write (API POST/PATCH/DELETE, back-office forms).

The API claims the key, runs the write and stores its response on the key all in *one*
transaction (`claim_in`, then `complete`), so a crash either loses both (the retry runs again) or
keeps both (the retry replays), and a write costs one commit, not three. A concurrent duplicate
waits for the first: on SQLite writes are serialised, on PostgreSQL its insert of the key blocks on
the first's uncommitted row; either way it then finds the stored answer and replays it, or finds an
in-flight claim and is answered 409. `claim` is the same in a short transaction of its own (an
in-flight claim others can see); a claim whose request died is taken over once its lock lapses.

Keys are per caller: (workspace, caller, key), the caller being the user a request acts as (through
any of their API keys or the back office; `caller_of`). Another user sending the same key never sees
this user's stored answer, and cannot poison the key for them. Per user rather than per API key so
that a retry survives a key rotation and a user's integrations and browser share one namespace; they
all act with the same permissions, so a replay across them reveals nothing the caller may not see.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, Integer, String, Text, delete, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from creditdesk import clock, rawsql
from creditdesk.audit import Actor
from creditdesk.config import get_settings
from creditdesk.db import Base, Database, UTCDateTime
from creditdesk.errors import Conflict, IdempotencyInProgress, IdempotencyKeyReused, InvalidInput

MAX_KEY_LENGTH = 255
MAX_CALLER_LENGTH = 64
# Rows are purged this many at a time (each batch its own short transaction).
PURGE_BATCH = 1000


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    caller: Mapped[str] = mapped_column(String(MAX_CALLER_LENGTH), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(12))  # in_flight | done
    owner: Mapped[str] = mapped_column(String(32))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_idempotency_keys_expires_at", IdempotencyKey.expires_at)


@dataclass
class Claim:
    workspace_id: str
    caller: str
    key: str
    owner: str


@dataclass
class Replay:
    status: int
    body: str


def caller_of(actor: Actor) -> str:
    """Whose keys these are: the user the request acts as (API key or back office), else the system."""
    return actor.user_id or "system"


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(method.upper().encode())
    digest.update(b"\0")
    digest.update(path.encode())
    digest.update(b"\0")
    digest.update(_canonical_body(body))
    return digest.hexdigest()


def _canonical_body(body: bytes) -> bytes:
    # The same JSON with other whitespace or key order is the same request.
    if not body.strip():
        return b""
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        return body


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
                           code="invalid_idempotency_key")
    return key


def claim(db: Database, *, workspace_id: str, caller: str, key: str, fingerprint: str, method: str,
          path: str) -> Claim | Replay:
    """Claim the key in a transaction of its own (visible to others as in flight)."""
    for _ in range(3):
        try:
            return db.write(lambda session: claim_in(session, workspace_id=workspace_id, caller=caller, key=key,
                                                     fingerprint=fingerprint, method=method, path=path))
        except IntegrityError:
            # A concurrent first use inserted the key between our read and insert: look again.
            continue
    raise IdempotencyInProgress("A request with this Idempotency-Key is still being processed.")


def claim_in(session: Session, *, workspace_id: str, caller: str, key: str, fingerprint: str, method: str,
             path: str, retries: int = 3) -> Claim | Replay:
    """Claim the key in the caller's transaction: a Claim to run the request under, or the Replay of
    its first answer. Raises IdempotencyKeyReused (another request) or IdempotencyInProgress."""
    settings = get_settings()
    owner = secrets.token_hex(16)
    for _ in range(retries):
        now = clock.now()
        lock_until = now + timedelta(seconds=settings.idempotency_lock_seconds)
        # The common case, a new key, is one statement. A concurrent first use (PostgreSQL) makes this
        # insert wait for it, then do nothing; the row it committed is read below.
        inserted = rawsql.rows(session, _CLAIM_SQL, {
            "workspace_id": workspace_id, "caller": caller, "key": key, "request_hash": fingerprint,
            "method": method, "path": path, "owner": owner, "created_at": rawsql.bind(session, _T.c.created_at, now),
            "locked_until": rawsql.bind(session, _T.c.locked_until, lock_until),
            "expires_at": rawsql.bind(session, _T.c.expires_at,
                                      now + timedelta(hours=settings.idempotency_retention_hours))})
        if inserted:
            return Claim(workspace_id, caller, key, owner)
        row = session.execute(
            select(IdempotencyKey)
            .where(IdempotencyKey.workspace_id == workspace_id, IdempotencyKey.caller == caller,
                   IdempotencyKey.key == key)
            .with_for_update().execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if row is None:
            continue  # it went away meanwhile (purged, or its request failed): try again
        if row.expires_at <= now:
            session.delete(row)
            session.flush()
            continue
        if row.request_hash != fingerprint:
            raise key_reused(row.method, row.path)
        if row.state == "done":
            return Replay(row.response_status or 200, row.response_body or "")
        if row.locked_until > now:
            raise IdempotencyInProgress("A request with this Idempotency-Key is still being processed; "
                                        "retry after it has finished.")
        # The first request died before finishing (nothing of it was committed): take it over.
        row.owner = owner
        row.locked_until = lock_until
        return Claim(workspace_id, caller, key, owner)
    raise IdempotencyInProgress("A request with this Idempotency-Key is still being processed.")


_T = IdempotencyKey.__table__
# The common case, a new key, is one statement. A concurrent first use (PostgreSQL) makes this insert
# wait for it, then do nothing; the row it committed is then read. RETURNING says whether the row
# went in (rowcount is not reliable for ON CONFLICT with every driver).
_CLAIM_SQL = (
    "INSERT INTO idempotency_keys (workspace_id, caller, key, request_hash, method, path, state, owner, "
    "created_at, locked_until, expires_at) VALUES (:workspace_id, :caller, :key, :request_hash, :method, :path, "
    "'in_flight', :owner, :created_at, :locked_until, :expires_at) "
    "ON CONFLICT (workspace_id, caller, key) DO NOTHING RETURNING key")
_COMPLETE_SQL = (
    "UPDATE idempotency_keys SET state = 'done', response_status = :status, response_body = :body "
    "WHERE workspace_id = :workspace_id AND caller = :caller AND key = :key AND owner = :owner "
    "AND state = 'in_flight'")


def key_reused(method: str, path: str) -> IdempotencyKeyReused:
    return IdempotencyKeyReused("This Idempotency-Key was already used with a different request "
                                f"({method} {path} with another body). Use a new key for a new request.")


@dataclass
class Stored:
    """A key's row as a batch of writes reads it (see find_many)."""
    request_hash: str
    method: str
    path: str
    state: str
    response_status: int | None
    response_body: str | None
    expires_at: datetime


_FIND_SQL = ("SELECT caller, key, request_hash, method, path, state, response_status, response_body, expires_at "
             "FROM idempotency_keys WHERE workspace_id = :workspace_id AND key IN ({keys})")


def find_many(session: Session, workspace_id: str, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Stored]:
    """The rows of these (caller, key) pairs of one workspace, read with one query (a batch of writes
    decides all its keys at once instead of claiming them one by one)."""
    if not keys:
        return {}
    params: dict = {"workspace_id": workspace_id}
    names = []
    for n, key in enumerate(sorted({k for _, k in keys})):
        params[f"k{n}"] = key
        names.append(f":k{n}")
    found = rawsql.rows(session, _FIND_SQL.format(keys=", ".join(names)), params,
                        (None,) * 8 + (_T.c.expires_at,))
    return {(row[0], row[1]): Stored(*row[2:]) for row in found if (row[0], row[1]) in keys}


def store_many(session: Session, answers: list[tuple[str, str, str, str, str, str, int, str]]) -> None:
    """Store finished answers under new keys, one executemany: (workspace_id, caller, key, fingerprint,
    method, path, status, body) each. What claim_in then complete leave behind, in one statement."""
    if not answers:
        return
    settings = get_settings()
    now = clock.now()
    expires = now + timedelta(hours=settings.idempotency_retention_hours)
    owner = secrets.token_hex(16)
    rawsql.insert_many(session, _T, [
        {"workspace_id": ws, "caller": caller, "key": key, "request_hash": fingerprint, "method": method,
         "path": path, "state": "done", "owner": owner, "response_status": status, "response_body": body,
         "created_at": now, "locked_until": now, "expires_at": expires}
        for ws, caller, key, fingerprint, method, path, status, body in answers])


def complete(session: Session, claim_: Claim, *, status: int, body: str) -> None:
    """Store the response in the caller's transaction. Fails if another request took the key over."""
    rawsql.flush_pending(session)  # a take-over (claim_in) changed the row through the ORM
    cursor = rawsql.execute(session, _COMPLETE_SQL, {"status": status, "body": body, "workspace_id": claim_.workspace_id,
                                                     "caller": claim_.caller, "key": claim_.key,
                                                     "owner": claim_.owner})
    updated = cursor.rowcount
    cursor.close()
    if updated != 1:
        raise Conflict("This request's Idempotency-Key was taken over by a retry; nothing was applied.",
                       code="idempotency_key_taken_over")


def release(db: Database, claim_: Claim) -> None:
    """Forget an in-flight claim whose request failed unexpectedly, so a retry may run."""
    def fn(session: Session) -> None:
        session.execute(delete(IdempotencyKey).where(
            IdempotencyKey.workspace_id == claim_.workspace_id, IdempotencyKey.caller == claim_.caller,
            IdempotencyKey.key == claim_.key, IdempotencyKey.owner == claim_.owner,
            IdempotencyKey.state == "in_flight"))
    db.write(fn)


def stored_answer(session: Session, *, workspace_id: str, caller: str, key: str) -> Replay | None:
    """The stored answer under a key, if its request has finished and it has not expired (a read:
    claims nothing). For a multi-step form whose last step is the write: an earlier step, submitted
    again after the write, goes straight to its answer."""
    row = session.execute(
        select(IdempotencyKey.state, IdempotencyKey.response_status, IdempotencyKey.response_body,
               IdempotencyKey.expires_at)
        .where(IdempotencyKey.workspace_id == workspace_id, IdempotencyKey.caller == caller,
               IdempotencyKey.key == key)).one_or_none()
    if row is None or row.state != "done" or row.expires_at <= clock.now():
        return None
    return Replay(row.response_status or 200, row.response_body or "")


def purge_expired(session: Session, *, now: datetime | None = None, limit: int = PURGE_BATCH) -> int:
    """Delete up to `limit` expired keys; returns how many went. Bounded so that one call is a short
    transaction whatever the backlog: callers repeat it until it returns less than `limit`."""
    now = now or clock.now()
    # DELETE ... LIMIT is not portable (PostgreSQL has none); a bounded subquery of primary keys is
    # (row values: SQLite 3.15+). The expires_at index finds the due rows.
    due = (select(IdempotencyKey.workspace_id, IdempotencyKey.caller, IdempotencyKey.key)
           .where(IdempotencyKey.expires_at <= now).limit(limit))
    return session.execute(delete(IdempotencyKey).where(
        tuple_(IdempotencyKey.workspace_id, IdempotencyKey.caller, IdempotencyKey.key).in_(due))).rowcount
