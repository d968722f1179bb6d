"""The append-only audit log: who did what, when, with before and after, in the same transaction."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from creditdesk import clock, rawsql
from creditdesk.db import Base, JSONType, UTCDateTime
from creditdesk.ids import new_id
from creditdesk.pagination import Page, paginate

# Columns never copied into an audit row.
_SECRET_COLUMNS = {"password_hash", "key_hash"}


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who is acting: a user (through the back office or an API key acting as them) or the system."""

    workspace_id: str
    user_id: str | None
    role: str = "member"
    permissions: frozenset[str] = frozenset()
    kind: str = "user"  # user | api_key | system
    api_key_id: str | None = None
    office_ids: frozenset[str] = frozenset()

    @property
    def is_master(self) -> bool:
        return self.role == "master" or self.kind == "system"

    def has(self, permission: str) -> bool:
        return self.is_master or permission in self.permissions

    @classmethod
    def system(cls, workspace_id: str) -> "Actor":
        return cls(workspace_id=workspace_id, user_id=None, role="master", kind="system")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(40))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(40))
    before: Mapped[dict | None] = mapped_column(JSONType)
    after: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_audit_events_ws_id", AuditEvent.workspace_id, AuditEvent.id)
Index("ix_audit_events_ws_object", AuditEvent.workspace_id, AuditEvent.object_id)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def snapshot(obj: Any, **extra: Any) -> dict:
    """Column values of a model instance, JSON-ready, secrets left out."""
    data = {}
    for column in obj.__table__.columns:
        if column.key in _SECRET_COLUMNS:
            continue
        data[column.key] = _jsonable(getattr(obj, column.key))
    data.update({k: _jsonable(v) for k, v in extra.items()})
    return data


def record(session: Session, *, actor: Actor, action: str, object_type: str, object_id: str,
           before: dict | None = None, after: dict | None = None) -> None:
    """Append one audit event. Written with SQL text (creditdesk.rawsql): every write records one,
    and nothing reads it back through the ORM in the same transaction."""
    rawsql.insert(session, AuditEvent.__table__, event_row(actor=actor, action=action, object_type=object_type,
                                                           object_id=object_id, before=before, after=after))


def event_row(*, actor: Actor, action: str, object_type: str, object_id: str, before: dict | None = None,
              after: dict | None = None, event_id: str | None = None) -> dict:
    """One audit event as the row `record` writes; batch writers insert many with rawsql.insert_many (and may
    give ids made at once with ids.new_ids)."""
    return {
        "id": event_id or new_id("evt"), "workspace_id": actor.workspace_id, "actor_kind": actor.kind,
        "actor_id": actor.user_id, "api_key_id": actor.api_key_id, "action": action,
        "object_type": object_type, "object_id": object_id,
        "before": _jsonable(before) if before is not None else None,
        "after": _jsonable(after) if after is not None else None,
        "created_at": clock.now()}


def list_audit_events(session: Session, *, actor: Actor, limit=None, cursor=None, action=None, object_type=None,
                      object_id=None, actor_id=None, since=None, until=None, newest_first=True) -> Page[AuditEvent]:
    if not (actor.is_master or actor.role == "manager"):
        # The log shows every user's changes (emails, permissions): not for members.
        from creditdesk.errors import NotPermitted

        raise NotPermitted("Only master and manager users may read the activity log.")
    since = clock.aware(since)
    until = clock.aware(until)
    stmt = select(AuditEvent).where(AuditEvent.workspace_id == actor.workspace_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if actor_id:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if since:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until:
        stmt = stmt.where(AuditEvent.created_at < until)
    page = paginate(session, stmt, id_column=AuditEvent.id, limit=limit, cursor=cursor, descending=newest_first)
    _hide_api_keys(session, actor, page.items)
    return page


# What an API key event may not show to a reader who may not see the key: what names it, and the prefix
# that identifies its secret. Its id stays (object_id, and api_key_id of the events it acted in).
_HIDDEN_API_KEY_FIELDS = ("name", "prefix")


def _hide_api_keys(session: Session, actor: Actor, events: list[AuditEvent]) -> None:
    """The log shows API keys by the rule of GET /v1/api-keys (parties.api_key_visible): a manager
    reads the changes of every user, but not the names and prefixes of other users' keys."""
    from creditdesk.parties.models import ApiKey
    from creditdesk.parties.service import api_key_visible

    keyed = [e for e in events if e.object_type == "api_key"]
    if not keyed or api_key_visible(actor, None):
        return
    owners = dict(session.execute(select(ApiKey.id, ApiKey.user_id).where(
        ApiKey.workspace_id == actor.workspace_id, ApiKey.id.in_({e.object_id for e in keyed}))).all())
    for event in keyed:
        if api_key_visible(actor, owners.get(event.object_id)):
            continue
        for side in ("before", "after"):
            data = getattr(event, side)
            if data:
                # Not a change to the row: the read session must never write it back.
                set_committed_value(event, side, {**data, **{k: None for k in _HIDDEN_API_KEY_FIELDS if k in data}})


