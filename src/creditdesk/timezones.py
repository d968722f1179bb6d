"""The workspace's time zone: where its people are (the demo business is in Sydney).

Instants are stored in UTC everywhere. The zone says two things: what a bare date means (an expiry "on
2027-01-31" is the end of that day where the business is, a start "on" a day its first moment), in the back
office, the CSV import, the API and credit packages alike; and how times are shown to people (UTC in a
tooltip). Zone names are IANA names (Australia/Sydney), checked against the zone database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk.errors import InvalidInput

DEFAULT = "UTC"


@lru_cache(maxsize=512)
def zone(name: str | None) -> tzinfo:
    """The zone of an IANA name (UTC for none)."""
    if not name or name == "UTC":
        return UTC
    return ZoneInfo(name)


@lru_cache(maxsize=1)
def known_names() -> tuple[str, ...]:
    return tuple(sorted(n for n in available_timezones() if "/" in n and not n.startswith(("Etc/", "SystemV/"))))


def check_name(name: str, *, field: str = "time_zone") -> str:
    """The name as the zone database spells it, or invalid_time_zone."""
    text = (name or "").strip()
    if text.upper() == "UTC":
        return "UTC"
    if text in known_names():
        return text
    folded = {n.lower(): n for n in known_names()}
    if text.lower() in folded:
        return folded[text.lower()]
    try:  # older names (US/Pacific) the list leaves out are still zones
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{text!r} is not a time zone; use a name such as Australia/Sydney or Europe/London.",
                           code="invalid_time_zone", field=field) from None
    return text


def workspace_zone(session: Session, workspace_id: str) -> tzinfo:
    from creditdesk.parties.models import Workspace

    return zone(session.scalar(select(Workspace.time_zone).where(Workspace.id == workspace_id)))


def start_of_day(day: date, where: tzinfo) -> datetime:
    """The first moment of `day` where the business is, in UTC."""
    return datetime.combine(day, time(0, 0), tzinfo=where).astimezone(UTC)


def end_of_day(day: date, where: tzinfo) -> datetime:
    """The last second of `day` where the business is, in UTC: a pack "expiring on the 31st" can be used all of
    the 31st. (The day's end is the next day's start less a second: right across daylight-saving changes.)"""
    following = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=where).astimezone(UTC)
    return following - timedelta(seconds=1)


def is_bare_date(value) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def local_day(at: datetime, where: tzinfo) -> date:
    """The date of an instant where the business is."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(where).date()
