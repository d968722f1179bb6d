from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class ListOf(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    next_cursor: str | None = None


def list_of(items, next_cursor, convert) -> dict:
    return {"object": "list", "data": [convert(i) for i in items], "next_cursor": next_cursor}
