"""The `pack.expiring` webhook event (issue 16): N days before a pack expires, once per pack.

N is the workspace's expiry warning lead (Settings > Emails, "Days before the expiry", 14 by default): the
event and the warning email mean the same moment, whether or not emails are sent. Only workspaces with an
enabled endpoint that subscribes to `pack.expiring` are looked at, so the job costs nothing elsewhere.

Once per pack: the job inserts a `pack_expiring_events` row for the pack (its primary key) and emits the event
in the same transaction; of two jobs at once, the second insert conflicts and emits nothing (ON CONFLICT DO
NOTHING). Delivery is then the outbox's (at least once, the same event id on every retry). A pack granted
already inside its last N days gets the event at the next run; one that expires before a run gets none
(`pack.expired` says it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditdesk import clock
from creditdesk.credits.models import Pack
from creditdesk.db import Database
from creditdesk.webhooks import service
from creditdesk.webhooks.models import PackExpiringEvent, WebhookEndpoint

EVENT = "pack.expiring"


def _watching_workspaces(session: Session, workspace_id: str | None) -> list[str]:
    stmt = select(WebhookEndpoint.workspace_id, WebhookEndpoint.event_types).where(
        WebhookEndpoint.enabled.is_(True), WebhookEndpoint.deleted_at.is_(None))
    if workspace_id:
        stmt = stmt.where(WebhookEndpoint.workspace_id == workspace_id)
    return sorted({ws for ws, types in session.execute(stmt) if EVENT in (types or ())})


def _claim(session: Session, pack: Pack, now: datetime) -> bool:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (insert(PackExpiringEvent).values(pack_id=pack.id, workspace_id=pack.workspace_id, event_id=None,
                                             created_at=now)
            .on_conflict_do_nothing(index_elements=["pack_id"]).returning(PackExpiringEvent.pack_id))
    return session.execute(stmt).scalar() is not None


def emit_due(session: Session, *, now: datetime, limit: int, workspace_id: str | None = None) -> int:
    """Emit pack.expiring for up to `limit` packs that are due; returns how many packs were handled."""
    from creditdesk.notify import service as email_settings

    handled = 0
    for ws in _watching_workspaces(session, workspace_id):
        days = email_settings.settings_for(session, ws).warning_days
        due = session.scalars(select(Pack).where(
            Pack.workspace_id == ws, Pack.status == "active", Pack.expires_at.is_not(None), Pack.expires_at > now,
            Pack.expires_at <= now + timedelta(days=days),
            ~exists().where(PackExpiringEvent.pack_id == Pack.id)).order_by(Pack.expires_at, Pack.id)
            .limit(limit - handled))
        for pack in list(due):
            handled += 1
            if not _claim(session, pack, now):
                continue  # another job has it
            left = pack.expires_at - now
            event_id = service.emit(session, ws, EVENT, lambda pack=pack, left=left: {
                **service.pack_data(pack), "days_left": left.days + (1 if left.seconds else 0)})
            session.get(PackExpiringEvent, pack.id).event_id = event_id
        if handled >= limit:
            break
    return handled


def emit_all_due(db: Database, *, workspace_id: str | None = None, batch_size: int = 200) -> int:
    """Every pack.expiring event that is due, a batch per transaction; returns how many packs were handled."""
    total = 0
    while True:
        handled = db.write(lambda session: emit_due(session, now=clock.now(), limit=batch_size,
                                                    workspace_id=workspace_id))
        total += handled
        if handled < batch_size:
            return total
