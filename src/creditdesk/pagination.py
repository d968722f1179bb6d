"""Cursor (keyset) pagination over any sort column, with the id as tie-breaker.

A cursor is an opaque token holding the last row's sort value and id; it survives inserts
between pages (no OFFSET drift) and costs one index range scan per page.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from creditdesk.errors import InvalidInput

T = TypeVar("T")

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _encode(value: Any, id_: str) -> str:
    if isinstance(value, datetime):
        value = {"dt": value.isoformat()}
    raw = json.dumps([value, id_], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, id_ = json.loads(raw)
        if isinstance(value, dict) and "dt" in value:
            value = datetime.fromisoformat(value["dt"])
        if not isinstance(id_, str):
            raise ValueError
        return value, id_
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidInput("The cursor is not valid; pass the next_cursor of a previous page.",
                           code="invalid_cursor") from exc


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
