"""Cursor (keyset) pagination over any sort column, with the id as tie-breaker.

A cursor is an opaque token holding the last row's sort value and id; it survives inserts
between pages (no OFFSET drift) and costs one index range scan per page.

Cursors are signed (HMAC-SHA256 under the settings' secret key) because their value goes into the SQL
comparison: a hand-made cursor holding a list, a bool or a naive datetime made the database driver fail
(500). The signature only proves the server wrote the cursor, not for which list or sort, so the value's
type is checked against the sort column as well. Anything else answers 400 `invalid_cursor`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, TypeDecorator, and_, or_
from sqlalchemy.orm import Session

from creditdesk.config import get_settings
from creditdesk.errors import InvalidInput

T = TypeVar("T")

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class InvalidCursor(InvalidInput):
    """A subclass of InvalidInput so the back office's `except InvalidInput` shows it as a form message."""

    code = "invalid_cursor"
    http_status = 400
    title = "Invalid cursor"


def invalid_cursor() -> InvalidCursor:
    return InvalidCursor("The cursor is not valid; pass the next_cursor of a previous page of the same list "
                         "and sort.")


# Our cursors are well under 200 characters; anything much longer is refused before it is decoded.
MAX_CURSOR_LENGTH = 1000
_TAG_BYTES = 16  # 128 bits of HMAC-SHA256: unguessable, and keeps cursors short
_INT64 = 2**63


@lru_cache(maxsize=4)
def _signing_key(secret: str) -> bytes:
    # A key of its own, so a cursor tag can never double as any other signature made with the secret.
    return hashlib.sha256(b"creditdesk-cursor\x00" + secret.encode()).digest()


def _tag(payload: bytes) -> bytes:
    key = _signing_key(get_settings().secret_key)
    return hmac.new(key, payload, hashlib.sha256).digest()[:_TAG_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(value: Any, id_: str) -> str:
    if isinstance(value, datetime):
        value = {"dt": value.isoformat()}
    payload = _b64(json.dumps([value, id_], separators=(",", ":")).encode())
    return f"{payload}.{_b64(_tag(payload.encode()))}"


def _decode(cursor: str) -> tuple[Any, str]:
    """(sort value, id) of a cursor this server signed; InvalidCursor for anything else."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise invalid_cursor()
    payload, _, tag = cursor.partition(".")
    # Compared as text: base64 decoding skips stray characters, so decoded bytes could match for many texts.
    if not hmac.compare_digest(tag, _b64(_tag(payload.encode()))):
        raise invalid_cursor()
    try:
        decoded = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        raise invalid_cursor() from None
    if not (isinstance(decoded, list) and len(decoded) == 2 and isinstance(decoded[1], str)):
        raise invalid_cursor()
    value, id_ = decoded
    if isinstance(value, dict):
        value = _datetime_of(value)
    elif not (value is None or isinstance(value, str) or _is_int64(value)):
        raise invalid_cursor()
    return value, id_


def _datetime_of(value: dict) -> datetime:
    if set(value) != {"dt"} or not isinstance(value["dt"], str):
        raise invalid_cursor()
    try:
        parsed = datetime.fromisoformat(value["dt"])
    except ValueError:
        raise invalid_cursor() from None
    if parsed.tzinfo is None:  # every sort column holding a time is timezone-aware (UTCDateTime)
        raise invalid_cursor()
    return parsed


def _is_int64(value: Any) -> bool:
    return type(value) is int and -_INT64 <= value < _INT64  # bool is an int subclass: refused


def _check_value_type(value: Any, sort_column) -> None:
    """The cursor's sort value must be of the sort column's type (or NULL): a cursor of another sort
    (a name where a date is expected) is refused before it reaches the database."""
    if value is None:
        return
    column_type = sort_column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    try:
        expected = column_type.python_type
    except NotImplementedError:
        return  # _decode already limited the value to str, int or an aware datetime
    if expected is int:
        ok = type(value) is int
    elif issubclass(expected, str):
        ok = isinstance(value, str)
    elif issubclass(expected, datetime):
        ok = isinstance(value, datetime)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise invalid_cursor()


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
    return limit


def paginate(session: Session, stmt: Select, *, id_column, limit: int | None, cursor: str | None,
             sort_column=None, descending: bool = False, row_key=None) -> Page:
    """Run `stmt` one page at a time. `sort_column` defaults to the id itself.

    `row_key(row)` returns (sort value, id) of a result row; by default the row is taken to be a
    model instance with `.id` and the sort column's attribute.
    """
    limit = check_limit(limit)
    sort_column = sort_column if sort_column is not None else id_column
    if cursor:
        value, last_id = _decode(cursor)
        if sort_column is not id_column:
            _check_value_type(value, sort_column)
        if sort_column is id_column:
            cond = id_column < last_id if descending else id_column > last_id
        elif value is None:
            # NULLs sort last ascending: after a NULL only NULLs with bigger ids follow.
            cond = and_(sort_column.is_(None), id_column < last_id if descending else id_column > last_id)
        else:
            if descending:
                cond = or_(sort_column < value, and_(sort_column == value, id_column < last_id),
                           sort_column.is_(None))
            else:
                cond = or_(sort_column > value, and_(sort_column == value, id_column > last_id),
                           sort_column.is_(None))
        stmt = stmt.where(cond)
    if sort_column is id_column:
        order = [id_column.desc() if descending else id_column.asc()]
    else:
        order = ([sort_column.desc().nulls_last(), id_column.desc()] if descending
                 else [sort_column.asc().nulls_last(), id_column.asc()])
    rows = session.execute(stmt.order_by(*order).limit(limit + 1)).all()
    items = [r[0] if len(r) == 1 else r for r in rows]
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        if row_key is not None:
            value, id_ = row_key(last)
        else:
            id_ = last.id
            value = getattr(last, sort_column.key) if sort_column is not id_column else None
        next_cursor = _encode(value, id_)
    return Page(items=items, next_cursor=next_cursor)
