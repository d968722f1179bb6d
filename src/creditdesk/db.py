"""Engine, sessions and the one way to run a write transaction.

Who opens a transaction commits it: API requests, back-office requests, CLI commands and jobs each
call `Database.write(fn)` (or `transaction()`), and services only ever receive the session.

SQLite: WAL, synchronous=FULL, foreign keys on; write transactions start with BEGIN IMMEDIATE and
are serialised in-process, because letting threads race SQLite's busy handler makes it sleep (see
shared/architecture.md). Past that, one commit (one fsync) per write is the ceiling, so `write` is a
group commit: one writer thread drains a queue of write requests and runs each batch in one
transaction, every request in its own session under its own SAVEPOINT (so each stays all-or-nothing:
a request that fails is rolled back to its savepoint and the others go on), and answers every request
only after the batch's COMMIT returned. A failed COMMIT fails every request of the batch; nothing is
ever acknowledged before it is durable. Reads use a deferred BEGIN and run beside the writer.

PostgreSQL: serialization failures and deadlocks (40001, 40P01) are retried here, around the whole
transaction, so they never reach a caller as a 500 or as "insufficient credits".
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, BigInteger, DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from creditdesk import rawsql

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, always hands back timezone-aware UTC (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# Amounts are integers at a fixed scale; 64-bit everywhere.
Amount = BigInteger
JSONType = JSON

RETRYABLE_SQLSTATES = {"40001", "40P01"}


def normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _is_retryable(exc: BaseException) -> bool:
    # SQLAlchemy wraps the driver's error (`orig`); SQL run on the DB-API cursor (rawsql) raises it bare.
    sqlstate = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
    return sqlstate in RETRYABLE_SQLSTATES


class Database:
    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 20):
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            if ":memory:" in self.url or self.url.rstrip("/") in ("sqlite:", "sqlite:/", "sqlite://"):
                raise ValueError("creditdesk needs a SQLite *file* (several connections share it), "
                                 "e.g. sqlite:///creditdesk.db")
            self.engine: Engine = create_engine(
                self.url, echo=echo, poolclass=QueuePool, pool_size=pool_size, max_overflow=20,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            _configure_sqlite(self.engine)
            self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        else:
            self.engine = create_engine(self.url, echo=echo, pool_size=pool_size, max_overflow=20,
                                        pool_pre_ping=True)
            self._write_engine = self.engine
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        self._writer: _GroupCommitWriter | None = None
        self._writer_guard = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        session = self._read_sessions()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    @contextmanager
    def read_raw(self) -> Iterator[rawsql.Raw]:
        """A pooled DB-API connection for reads of SQL text (rawsql), without a Session; rolled back
        when returned to the pool. For the one read every API request makes (its key)."""
        connection = self.engine.raw_connection()
        try:
            yield rawsql.Raw(connection.dbapi_connection, self.engine.dialect)
        finally:
            connection.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction, committed when the block ends without error. No retries here."""
        lock = self._write_lock
        if lock is not None:
            lock.acquire()
        session = self._write_sessions()
        session.info["after_commit"] = []
        session.info["database"] = self  # for after-commit work that needs a transaction of its own
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            if lock is not None:
                lock.release()
        for callback in session.info.get("after_commit", []):
            callback()

    def write(self, fn: Callable[[Session], T], *, attempts: int = 8,
              batch: tuple[Callable[[Session, list], list], Any] | None = None) -> T:
        """Run `fn(session)` in a write transaction, retrying serialization failures and deadlocks.

        `fn` must not commit and may be run again (PostgreSQL retries); it gets a session of its own.
        On SQLite it runs on the writer thread, batched with other writes (group commit).

        `batch=(handler, item)`: on SQLite, the requests of one group commit that name the same handler
        and come one after another are run together, `handler(session, items)` returning what each `fn`
        would have returned (or the exception it would have raised), in order. The handler plans them
        as a whole and writes set-wise; `fn` stays the way to run one alone: if the handler raises,
        what it did is rolled back and each request of the segment runs through its `fn`."""
        if self.is_sqlite or batch is not None:
            # PostgreSQL too, for writes that can be planned together (several `serve` processes
            # each run their own group commits side by side; rows are locked in id order).
            return self._group_writer().submit(fn, batch)
        for attempt in range(attempts):
            try:
                with self.transaction() as session:
                    return fn(session)
            except Exception as exc:
                if not _is_retryable(exc) or attempt == attempts - 1:
                    raise
                time.sleep(min(0.2, 0.005 * (2 ** attempt)) * random.random())
        raise AssertionError("unreachable")

    async def write_async(self, fn: Callable[[Session], T], *,
                          batch: tuple[Callable[[Session, list], list], Any] | None = None) -> T:
        """`write` from the event loop: writes that go through the group writer (every SQLite write,
        and on PostgreSQL the writes planned together) are awaited without a thread; the others run
        in a worker thread."""
        if self.is_sqlite or batch is not None:
            return await self._group_writer().submit_async(fn, batch)
        return await asyncio.to_thread(self.write, fn, batch=batch)

    def _group_writer(self) -> "_GroupCommitWriter":
        writer = self._writer
        if writer is None or not writer.alive():
            with self._writer_guard:
                writer = self._writer
                if writer is None or not writer.alive():
                    writer = self._writer = _GroupCommitWriter(self)
        return writer

    def dispose(self) -> None:
        with self._writer_guard:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()
        self.engine.dispose()


class _WriteRequest:
    __slots__ = ("fn", "batch", "done", "result", "error", "callbacks", "on_done")

    def __init__(self, fn: Callable[[Session], Any], batch: tuple | None = None,
                 on_done: Callable[[], Any] | None = None):
        self.fn = fn
        self.batch = batch
        self.on_done = on_done  # called by the writer thread once done is set (wakes an awaiting caller)
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.callbacks: list[Callable[[], Any]] = []


class _GroupCommitWriter:
    """Group commit: one thread, one transaction per batch, one SAVEPOINT per request (or per segment of
    requests planned together). Every SQLite write comes here; on PostgreSQL, the writes that are
    planned together (Database.write's `batch`)."""

    MAX_BATCH = 64

    def __init__(self, db: Database):
        self.db = db
        self.pid = os.getpid()
        self.queue: deque[_WriteRequest] = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="creditdesk-sqlite-writer", daemon=True)
        self.thread.start()

    def alive(self) -> bool:
        # A forked child inherits the object but not the thread.
        return self.pid == os.getpid() and self.thread.is_alive() and not self.stopping

    def submit(self, fn: Callable[[Session], T], batch: tuple | None = None) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("Database.write called from inside a write: it would wait for itself.")
        request = _WriteRequest(fn, batch)
        with self.cond:
            self.queue.append(request)
            self.cond.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        for callback in request.callbacks:
            callback()
        return request.result

    async def submit_async(self, fn: Callable[[Session], T], batch: tuple | None = None) -> T:
        """`submit` for the event loop: the caller awaits the batch's commit without holding a thread."""
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)
        request = _WriteRequest(fn, batch, on_done=lambda: loop.call_soon_threadsafe(wake))
        with self.cond:
            self.queue.append(request)
            self.cond.notify()
        await woken
        if request.error is not None:
            raise request.error
        if request.callbacks:
            # After-commit work (email, SMS, webhooks) may block: not on the event loop.
            await asyncio.to_thread(lambda: [callback() for callback in request.callbacks])
        return request.result

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if not self.queue:
                    return
                batch = [self.queue.popleft() for _ in range(min(len(self.queue), self.MAX_BATCH))]
            try:
                self._run_batch(batch)
            finally:
                for request in batch:
                    request.done.set()
                    if request.on_done is not None:
                        request.on_done()

    def _run_batch(self, batch: list[_WriteRequest]) -> None:
        # SQLite: one writer holds the lock, nothing to retry. PostgreSQL: a deadlock or serialization
        # failure anywhere in the batch rolls it all back and runs it again (every fn may run again).
        attempts = 1 if self.db.is_sqlite else 8
        for attempt in range(attempts):
            for request in batch:
                request.result, request.error, request.callbacks = None, None, []
            if not self._run_batch_once(batch, may_retry=attempt < attempts - 1):
                return
            time.sleep(min(0.2, 0.005 * (2 ** attempt)) * random.random())

    def _run_batch_once(self, batch: list[_WriteRequest], *, may_retry: bool) -> bool:
        """One transaction for the batch; True: it was rolled back to be run again."""
        sessions: list[Session] = []
        done: list[tuple[_WriteRequest, Session]] = []
        try:
            with self.db._write_lock or nullcontext(), self.db._write_engine.connect() as conn:
                conn.begin()  # SQLite: BEGIN IMMEDIATE (see _configure_sqlite)
                for segment in _segments(batch):
                    if segment[0].batch is not None and self._run_segment(conn, segment, sessions, done, may_retry):
                        continue
                    for request in segment:
                        # A session of its own (its own identity map) inside the batch's transaction:
                        # commit releases its SAVEPOINT, rollback returns to it; the batch goes on.
                        session = self._session(conn, sessions)
                        try:
                            request.result = request.fn(session)
                            session.commit()
                        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                            request.error = exc
                            session.rollback()  # if this fails the whole batch fails, below
                            continue
                        done.append((request, session))
                if may_retry and any(_is_retryable(r.error) for r in batch if r.error is not None):
                    raise _RetryBatch()
                conn.commit()
        except BaseException as exc:  # noqa: BLE001
            if may_retry and (isinstance(exc, _RetryBatch) or _is_retryable(exc)):
                return True
            # The transaction did not commit: nothing of this batch happened. Requests that had
            # succeeded under their savepoint fail with the batch's error (never acknowledged).
            for request, _ in done:
                request.error = exc
                request.result = None
            for request in batch:
                if request.error is None:
                    request.error = exc
            done = []
        finally:
            for session in sessions:
                session.close()
        for request, session in done:
            request.callbacks = session.info.pop("after_commit", [])
        return False

    def _session(self, conn, sessions: list[Session]) -> Session:
        session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        session.info["after_commit"] = []
        session.info["database"] = self.db
        sessions.append(session)
        return session

    def _run_segment(self, conn, segment: list[_WriteRequest], sessions: list[Session],
                     done: list[tuple[_WriteRequest, Session]], may_retry: bool) -> bool:
        """Run requests that share a batch handler together, under one SAVEPOINT. False: the handler
        failed, nothing of it is kept, and the caller runs each request alone."""
        handler = segment[0].batch[0]
        session = self._session(conn, sessions)
        try:
            results = handler(session, [request.batch[1] for request in segment])
            session.commit()
        except Exception as exc:  # noqa: BLE001 - the requests run again one by one, which reports errors
            session.rollback()
            if may_retry and _is_retryable(exc):
                raise  # PostgreSQL: the whole batch runs again
            return False
        for request, result in zip(segment, results, strict=True):
            if isinstance(result, BaseException):
                request.error = result
            else:
                request.result = result
                # The segment's after-commit work runs once, with its first successful request.
                done.append((request, session))
        return True


class _RetryBatch(Exception):
    """A request of the batch met a deadlock or serialization failure: run the batch again."""


def _segments(batch: list[_WriteRequest]) -> Iterator[list[_WriteRequest]]:
    """Consecutive requests with the same batch handler, together; the others one by one."""
    segment: list[_WriteRequest] = []
    for request in batch:
        handler = request.batch[0] if request.batch is not None else None
        if segment and (handler is None or handler is not segment[0].batch[0]):
            yield segment
            segment = []
        if handler is None:
            yield [request]
        else:
            segment.append(request)
    if segment:
        yield segment


def after_commit(session: Session, callback: Callable[[], Any]) -> None:
    """Queue a side effect (email, webhook) to run only once the transaction has committed."""
    session.info.setdefault("after_commit", []).append(callback)


def database_of(session: Session) -> Database | None:
    """The Database whose write opened this session (None for a session made elsewhere)."""
    return session.info.get("database")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # We emit BEGIN ourselves (below), so the driver must not.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def get_database(url: str | None = None) -> Database:
    """One Database (engine and pool) per URL per process."""
    from creditdesk.config import get_settings

    url = normalize_url(url or get_settings().database_url)
    with _databases_lock:
        if url not in _databases:
            _databases[url] = Database(url)
        return _databases[url]
