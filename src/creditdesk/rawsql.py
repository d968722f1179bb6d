"""Hand-written SQL for the hot paths (every write's idempotency key, authentication, audit, consume).

Why: building an ORM statement, its cache key and its result objects costs 100-300 microseconds of
Python per statement, several times what SQLite or PostgreSQL take to run it; a consumption is about
fifteen statements, so the ORM was most of its cost (bench/README.md, workload 1). These helpers run
SQL text on the session's own connection, inside its transaction and SAVEPOINTs, so they commit or
roll back with everything else the request did.

- SQL is written once with `:name` parameters; for PostgreSQL (psycopg's `%(name)s`) it is rewritten
  once and cached.
- Values go through the columns' own SQLAlchemy type processors (`bind`, `load`), so a datetime or a
  JSON value is stored and read exactly as the ORM stores and reads it.
- The ORM does not see these writes: `flush_pending` must run before SQL that reads rows the session
  may still hold unflushed, and `expire_cached` after SQL that changed rows the session holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

_NAMED_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_sql_by_dialect: dict[tuple[str, str], str] = {}
_insert_sql: dict[tuple[str, str, tuple[str, ...]], str] = {}
_processors: dict[tuple[str, int, str], Any] = {}


def dialect_name(session: Session) -> str:
    return session.get_bind().dialect.name


def _dialect_sql(dialect: str, sql: str) -> str:
    key = (dialect, sql)
    text = _sql_by_dialect.get(key)
    if text is None:
        text = sql if dialect == "sqlite" else _NAMED_PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))
        _sql_by_dialect[key] = text
    return text


class Raw:
    """A pooled DB-API connection with its dialect, for reads that need no Session: building and ending
    a Session costs about 70 µs, several times the one or two indexed SELECTs of authentication
    (Database.read_raw). `execute` and `rows` take it where they take a Session."""

    __slots__ = ("dbapi_connection", "dialect")

    def __init__(self, dbapi_connection, dialect) -> None:
        self.dbapi_connection = dbapi_connection
        self.dialect = dialect


def _connection_of(session: Session | Raw):
    if isinstance(session, Raw):
        return session.dbapi_connection, session.dialect
    connection = session.connection()
    return connection.connection.dbapi_connection, connection.dialect


def execute(session: Session | Raw, sql: str, params: Mapping[str, Any] | None = None):
    """Run one statement on the session's connection; returns the DB-API cursor (rowcount, fetch*)."""
    dbapi_connection, dialect = _connection_of(session)
    cursor = dbapi_connection.cursor()
    cursor.execute(_dialect_sql(dialect.name, sql), params or {})
    return cursor


def rows(session: Session | Raw, sql: str, params: Mapping[str, Any] | None = None,
         columns: Sequence[Column | None] = ()) -> list[tuple]:
    """All rows of a query, each value read through the type of the column at its position (None:
    as the driver gives it)."""
    cursor = execute(session, sql, params)
    found = cursor.fetchall()
    cursor.close()
    if not columns or not found:
        return found
    dialect = session.dialect if isinstance(session, Raw) else session.get_bind().dialect
    loaders = [(n, f) for n, f in ((n, load_processor(dialect, c) if c is not None else None)
                                   for n, c in enumerate(columns)) if f is not None]
    if not loaders:
        return found
    out = []
    for row in found:
        row = list(row)
        for n, f in loaders:
            if row[n] is not None:
                row[n] = f(row[n])
        out.append(tuple(row))
    return out


def bind(session: Session, column: Column, value: Any) -> Any:
    """A Python value as the column's type stores it (e.g. an aware datetime as naive UTC)."""
    if value is None:
        return None
    processor = bind_processor(session.get_bind().dialect, column)
    return processor(value) if processor is not None else value


def bind_processor(dialect, column: Column):
    """The column type's bind processor for this dialect (None: the value goes to the driver as it is).

    Public API only: `dialect_impl` is the type as the dialect runs it (a TypeDecorator with its impl
    adapted, PostgreSQL's JSON...) and its `bind_processor` is what SQLAlchemy's own statements call.
    Cached here per column, as SQLAlchemy caches it per type."""
    key = (dialect.name, id(column), "bind")
    try:
        return _processors[key]
    except KeyError:
        processor = _processors[key] = column.type.dialect_impl(dialect).bind_processor(dialect)
        return processor


def load_processor(dialect, column: Column):
    """The column type's result processor for this dialect (None: the driver's value is the value)."""
    key = (dialect.name, id(column), "load")
    try:
        return _processors[key]
    except KeyError:
        processor = _processors[key] = column.type.dialect_impl(dialect).result_processor(dialect, None)
        return processor


def insert(session: Session, table: Table, values: Mapping[str, Any]) -> None:
    """INSERT one row; every value goes through its column's type, as the ORM would send it."""
    insert_many(session, table, [values])


def _insert_sql_for(dialect_name: str, table: Table, names: tuple[str, ...]) -> str:
    key = (dialect_name, table.name, names)
    sql = _insert_sql.get(key)
    if sql is None:
        sql = _insert_sql[key] = _dialect_sql(dialect_name, f"INSERT INTO {table.name} ({', '.join(names)}) "
                                                            f"VALUES ({', '.join(':' + n for n in names)})")
    return sql


def insert_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT rows with one statement (executemany for several); every row has the same keys in the
    same order, and every value goes through its column's type, as the ORM would send it."""
    if not rows:
        return
    names = tuple(rows[0])
    connection = session.connection()
    dialect = connection.dialect
    sql = _insert_sql_for(dialect.name, table, names)
    params = [dict(row) for row in rows]
    for name in names:
        f = bind_processor(dialect, table.c[name])
        if f is None:
            continue
        # Batch writers share one object for a column across rows (the batch's `now`, its issue date): it is
        # converted once, not once per row (the conversion of datetimes was a fifth of a billing run's time).
        last_in, last_out = None, None
        for param in params:
            value = param[name]
            if value is None:
                continue
            if value is not last_in:
                last_in, last_out = value, f(value)
            param[name] = last_out
    cursor = connection.connection.dbapi_connection.cursor()
    if len(params) == 1:
        cursor.execute(sql, params[0])
    else:
        cursor.executemany(sql, params)
    cursor.close()


def execute_many(session: Session, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
    """One statement run for many parameter sets (executemany)."""
    if not params:
        return
    connection = session.connection()
    cursor = connection.connection.dbapi_connection.cursor()
    cursor.executemany(_dialect_sql(connection.dialect.name, sql), params)
    cursor.close()


def flush_pending(session: Session) -> None:
    """Send the ORM's unflushed changes first, so SQL run next sees them."""
    if session.new or session.dirty or session.deleted:
        session.flush()


def expire_cached(session: Session, model: type, ids: Iterable[str]) -> None:
    """Forget the session's copy of rows changed by SQL, so the ORM reads them afresh."""
    identity_map = session.identity_map
    for object_id in ids:
        obj = identity_map.get(identity_key(model, object_id))
        if obj is not None:
            session.expire(obj)
