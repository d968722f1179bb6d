from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from creditdesk.api.deps import get_actor, read_session
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
    limit: int | None = Query(default=None, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=500),
    action: str | None = Query(default=None, max_length=80, description="e.g. customer.create"),
    object_type: str | None = Query(default=None, max_length=40),
    object_id: str | None = Query(default=None, max_length=40),
    actor_id: str | None = Query(default=None, max_length=40),
    since: Instant | None = None,
    until: Instant | None = None,
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
