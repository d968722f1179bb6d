"""Failed-login counters, kept in the database so every worker process (and every server) shares them.

Three scopes are counted, each in a fixed window:

- `account`: one email, known or not, from any address: guessing one password is slowed down whatever
  `X-Forwarded-For` says;
- `address`: one client address, whatever the emails: one machine trying many accounts;
- `global`: the whole installation: password spraying over many emails from many addresses.

A login is refused (before any password hashing) while a counter of its scopes is at its limit, until that
window ends: at most `login_failure_window_seconds` for an account, so a victim of someone else's guessing
waits minutes, not forever. Keys are SHA-256 digests: the table keeps no email or address in clear.

A window whose start lies in the future (the clock moved back, or a test froze it earlier) counts as over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditdesk import clock
from creditdesk.config import Settings
from creditdesk.db import UTCDateTime
from creditdesk.parties.models import LoginThrottle

GLOBAL_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Limit:
    scope: str
    key: str
    max_failures: int
    window_seconds: int


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def login_limits(settings: Settings, *, email: str, address: str) -> list[Limit]:
    window = settings.login_failure_window_seconds
    return [
        Limit("account", _digest(email.strip().lower()), settings.login_failures_per_account, window),
        Limit("address", _digest(address), settings.login_failures_per_address, window),
        Limit("global", "all", settings.login_failures_per_minute, GLOBAL_WINDOW_SECONDS),
    ]


def _window_over(window_start: datetime, now: datetime, seconds: int) -> bool:
    return window_start > now or window_start + timedelta(seconds=seconds) <= now


def retry_after(session: Session, limits: list[Limit]) -> tuple[int, str | None]:
    """(seconds to wait, the scope that is full), or (0, None) when a try is allowed now."""
    now = clock.now()
    rows = session.execute(select(LoginThrottle.scope, LoginThrottle.key, LoginThrottle.window_start,
                                  LoginThrottle.failures)
                           .where(or_(*[(LoginThrottle.scope == lim.scope) & (LoginThrottle.key == lim.key)
                                        for lim in limits]))).all()
    found = {(scope, key): (start, failures) for scope, key, start, failures in rows}
    wait, scope = 0, None
    for lim in limits:
        start, failures = found.get((lim.scope, lim.key), (None, 0))
        if start is None or failures < lim.max_failures:
            continue
        start = clock.aware(start)
        if _window_over(start, now, lim.window_seconds):
            continue
        seconds = int((start + timedelta(seconds=lim.window_seconds) - now).total_seconds()) + 1
        if seconds > wait:
            wait, scope = seconds, lim.scope
    return wait, scope


def record_failure(session: Session, limits: list[Limit]) -> None:
    """One failed login in each scope: one upsert per counter, atomic on both databases."""
    now = clock.now()
    table = LoginThrottle.__table__
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for lim in limits:
        cutoff = now - timedelta(seconds=lim.window_seconds)
        restart = or_(table.c.window_start <= cutoff, table.c.window_start > now)
        stmt = insert(table).values(scope=lim.scope, key=lim.key, window_start=now, failures=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.scope, table.c.key],
            set_={"failures": case((restart, 1), else_=table.c.failures + 1),
                  "window_start": case((restart, literal(now, UTCDateTime())), else_=table.c.window_start)})
        session.execute(stmt)


def forget(session: Session, limit: Limit) -> None:
    """The account's own failures are forgotten once its password is given (the address's and the global
    ones are not: logging in to one's own account must not reset a guessing budget)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.scope == limit.scope, LoginThrottle.key == limit.key))


def purge_expired(session: Session, *, longest_window_seconds: int) -> int:
    """Delete counters whose window is over (the jobs call this): the table holds at most the windows
    still open, which the limits themselves bound."""
    cutoff = clock.now() - timedelta(seconds=max(longest_window_seconds, GLOBAL_WINDOW_SECONDS))
    result = session.execute(delete(LoginThrottle).where(LoginThrottle.window_start < cutoff))
    return result.rowcount or 0
