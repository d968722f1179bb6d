"""When each API key was last used (`api_keys.last_used_at`, shown by GET /v1/api-keys).

Authentication runs on every API request and only reads. Writing the time on every request would add a
write, on SQLite a turn of the single writer, to every read; so it is written at most once a minute per
key (`RESOLUTION`): each process remembers when it last wrote a key, and the UPDATE itself skips a key
written less than a minute ago (by another process). It runs in a small transaction of its own, before
the request's own write, and a failure never fails the request: the time is a hint, not a record.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from creditdesk import clock
from creditdesk.db import Database
from creditdesk.parties.models import ApiKey

log = logging.getLogger("creditdesk.parties")

RESOLUTION = timedelta(seconds=60)
_MAX_REMEMBERED = 10_000  # keys; past that the memory starts again (one extra write per key)

_lock = threading.Lock()
_written: dict[str, datetime] = {}  # key id -> when this process last wrote its last_used_at


def touch_api_key(db: Database, key_id: str | None) -> None:
    """Record that the key was used now, unless that was recorded less than RESOLUTION ago."""
    if key_id is None:
        return
    now = clock.now()
    with _lock:
        last = _written.get(key_id)
        if last is not None and last <= now < last + RESOLUTION:
            return
        if len(_written) >= _MAX_REMEMBERED:
            _written.clear()
        _written[key_id] = now
    try:
        db.write(lambda session: _write_last_used(session, key_id, now))
    except Exception:  # noqa: BLE001 - a busy or failing database must not refuse the request for a hint
        log.warning("could not record the use of API key %s", key_id, exc_info=True)
        with _lock:
            _written.pop(key_id, None)


def _write_last_used(session: Session, key_id: str, now: datetime) -> int:
    return session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - RESOLUTION))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)).rowcount
