"""Lookups shared by every domain: a row of this workspace by id (or NotFound); a column equal to one of
several values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk.errors import NotFound

M = TypeVar("M")


def one_of(column, value: str | Sequence[str]):
    """`column` equal to `value`, or to any of several values: a list filter's `status` may be given
    once (the back office) or as several values (the API: `?status=a,b`)."""
    return column.in_([value] if isinstance(value, str) else list(value))


def get_in_workspace(session: Session, model: type[M], workspace_id: str, object_id: str, *,
                     label: str | None = None, for_update: bool = False) -> M:
    """The row with this id in this workspace. Another workspace's id is simply not found."""
    stmt = select(model).where(model.id == object_id, model.workspace_id == workspace_id)
    if for_update:
        stmt = stmt.with_for_update()
    obj = session.execute(stmt).scalar_one_or_none()
    if obj is None:
        name = label or getattr(model, "__tablename__", "object").rstrip("s").replace("_", " ")
        raise NotFound(f"No {name} with id {object_id!r} in this workspace.", object_id=object_id)
    return obj
