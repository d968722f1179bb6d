"""rawsql: values written and read through the hand-written SQL are exactly what SQLAlchemy's own statements
write and read, for every column type the models use, on both databases; and only public SQLAlchemy API
is used (private helpers such as `_cached_bind_processor` change or vanish between releases, silently)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text, insert, select

from creditdesk import rawsql
from creditdesk.db import JSONType, UTCDateTime

SRC = Path(__file__).resolve().parents[1] / "src" / "creditdesk"

metadata = MetaData()
KINDS = Table("test_rawsql_kinds", metadata,
              Column("id", String(40), primary_key=True), Column("label", String(100)), Column("body", Text),
              Column("small", Integer), Column("big", BigInteger), Column("flag", Boolean),
              Column("doc", JSONType), Column("at", UTCDateTime))
NAMES = [c.name for c in KINDS.columns]

VALUES = [
    {"label": "plain", "body": "line one\nline two", "small": 7, "big": 10**15, "flag": True,
     "doc": {"b": [1, 2, {"c": None}], "a": "x"}, "at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)},
    {"label": "élan \"quoted\" ✓", "body": "", "small": -3, "big": 0, "flag": False,
     "doc": ["é", "\u2028", 1.5, True], "at": datetime(2026, 7, 1, 0, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))},
    {"label": None, "body": None, "small": None, "big": None, "flag": None, "doc": None, "at": None},
]


@pytest.fixture
def kinds(db):
    metadata.create_all(db.engine)
    yield KINDS
    metadata.drop_all(db.engine)


def stored(db, row_id: str) -> tuple:
    """A row as the database holds it, each value as text (JSON and datetimes as their stored text)."""
    with db.read() as session:
        cast = "CAST({} AS TEXT)" if not db.is_sqlite else "{}"
        columns = ", ".join(cast.format(n) for n in NAMES)
        cursor = rawsql.execute(session, f"SELECT {columns} FROM test_rawsql_kinds WHERE id = :id", {"id": row_id})
        row = cursor.fetchone()
        cursor.close()
        return tuple(row)


@pytest.mark.parametrize("n", range(len(VALUES)))
def test_insert_stores_what_sqlalchemy_stores_and_rows_reads_what_it_reads(db, kinds, n):
    values = VALUES[n]
    db.write(lambda session: session.execute(insert(kinds), [{"id": "core", **values}]))
    db.write(lambda session: rawsql.insert(session, kinds, {"id": "raw", **values}))
    core, raw = stored(db, "core"), stored(db, "raw")
    if values["doc"] is None:
        # The one difference, kept as it was: rawsql sends None as SQL NULL where SQLAlchemy's JSON type
        # (none_as_null=False) stores the JSON text 'null'; both read back as None.
        doc = NAMES.index("doc")
        assert (raw[doc], core[doc]) == (None, "null")
        raw, core = raw[:doc] + raw[doc + 1:], core[:doc] + core[doc + 1:]
    assert raw[1:] == core[1:]
    with db.read() as session:
        by_sqlalchemy = session.execute(select(kinds).where(kinds.c.id == "raw")).one()
        by_rawsql = rawsql.rows(session, f"SELECT {', '.join(NAMES)} FROM test_rawsql_kinds WHERE id = :id",
                                {"id": "raw"}, list(kinds.columns))
    assert by_rawsql == [tuple(by_sqlalchemy)]
    assert [type(v) for v in by_rawsql[0]] == [type(v) for v in by_sqlalchemy]
    if values["at"] is not None:
        assert by_rawsql[0][NAMES.index("at")] == values["at"]
        assert by_rawsql[0][NAMES.index("at")].tzinfo is UTC


def test_bind_gives_what_the_column_stores(db, kinds):
    at = datetime(2026, 3, 4, 5, 6, 7, 8, tzinfo=timezone(timedelta(hours=-2)))
    with db.read() as session:
        # Naive UTC: SQLite's DateTime stores it as text, psycopg takes the datetime.
        naive = datetime(2026, 3, 4, 7, 6, 7, 8)
        assert rawsql.bind(session, kinds.c.at, at) == (str(naive) if db.is_sqlite else naive)
        assert rawsql.bind(session, kinds.c.at, None) is None
        assert rawsql.bind(session, kinds.c.label, "x") == "x"


def test_only_public_sqlalchemy_api():
    private = re.compile(r"\._cached_\w*processor\b|\._type_memos\b|\._dialect_info\b|\._gen_dialect_impl\b")
    found = [f"{path.relative_to(SRC)}:{n}" for path in SRC.rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if private.search(line)]
    assert found == []
