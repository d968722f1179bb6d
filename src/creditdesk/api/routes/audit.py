from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from creditdesk.api.deps import BARE_DATE, Cursor, Limit, get_actor, read_session
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor, list_audit_events
from creditdesk.parties.schemas import Instant

router = APIRouter(tags=["audit"])


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: Literal["audit_event"] = "audit_event"
    actor_kind: str
    actor_id: str | None
    api_key_id: str | None
    action: str
    object_type: str
    object_id: str
    before: dict | None
    after: dict | None
    created_at: datetime


@router.get("/audit-events", response_model=ListOf[AuditEventOut])
def get_audit_events(
    limit: int | None = Limit,
    cursor: str | None = Cursor,
    action: str | None = Query(default=None, max_length=80, description=(
        "Only the events of this action, exactly as their `action` reads (`customer.create`, ...).")),
    object_type: str | None = Query(default=None, max_length=40, description=(
        "Only the events about this kind of object, exactly as their `object_type` reads (`customer`, "
        "`api_key`, ...).")),
    object_id: str | None = Query(default=None, max_length=40, description=(
        "Only the events about this object (its id, as their `object_id`).")),
    actor_id: str | None = Query(default=None, max_length=40, description=(
        "Only the events done by this actor (a user's id, as their `actor_id`).")),
    since: Instant | None = Query(default=None, description=(
        "Only events at or after this instant (inclusive). " + BARE_DATE)),
    until: Instant | None = Query(default=None, description=(
        "Only events before this instant (exclusive). " + BARE_DATE)),
    actor: Actor = Depends(get_actor),
    session: Session = Depends(read_session),
):
    """The activity log, newest first (master and manager users). API key events of keys the caller may not
    see in GET /v1/api-keys (other users' keys, unless master) show the key by its id only: `name` and
    `prefix` are null in `before` and `after`."""
    page = list_audit_events(session, actor=actor, limit=limit, cursor=cursor, action=action,
                             object_type=object_type, object_id=object_id, actor_id=actor_id,
                             since=since, until=until)
    return list_of(page.items, page.next_cursor, AuditEventOut.model_validate)
