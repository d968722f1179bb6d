"""The one source of "now". Tests move time with `set_clock(FrozenClock(...))`, never by sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    def __init__(self, at: datetime):
        self._at = at if at.tzinfo else at.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta | None = None, **kwargs) -> datetime:
        with self._lock:
            self._at = self._at + (delta or timedelta(**kwargs))
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at if at.tzinfo else at.replace(tzinfo=UTC)


_clock: SystemClock | FrozenClock = SystemClock()


def now() -> datetime:
    return _clock.now()


def set_clock(clock: SystemClock | FrozenClock) -> None:
    global _clock
    _clock = clock


def get_clock() -> SystemClock | FrozenClock:
    return _clock


def aware(value: datetime | None) -> datetime | None:
    """The datetime in UTC when it came back naive (SQLite stores no zone; creditdesk stores UTC only)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
