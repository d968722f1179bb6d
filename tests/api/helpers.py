"""Small helpers for API tests: count rows and read audit rows straight from the database."""

from __future__ import annotations

from sqlalchemy import func, select

from creditdesk.audit import AuditEvent
from creditdesk.db import Database
from creditdesk.parties.models import ApiKey, Customer, Office, Team, User, Workspace

MODELS = {"customers": Customer, "offices": Office, "users": User, "teams": Team, "api_keys": ApiKey}


def count(db: Database, model, workspace_id: str) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id))


def counts(db: Database, workspace_id: str) -> dict[str, int]:
    """Rows of every party table and of the audit log in one workspace: a fingerprint of its state."""
    result = {name: count(db, model, workspace_id) for name, model in MODELS.items()}
    result["audit_events"] = count(db, AuditEvent, workspace_id)
    return result


def audit_rows(db: Database, workspace_id: str, *, action: str | None = None,
               object_id: str | None = None) -> list[AuditEvent]:
    with db.read() as session:
        stmt = select(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        if object_id:
            stmt = stmt.where(AuditEvent.object_id == object_id)
        rows = list(session.scalars(stmt.order_by(AuditEvent.id)))
        session.expunge_all()  # usable after the read session ends
        return rows


def workspace_row(db: Database, workspace_id: str) -> Workspace:
    with db.read() as session:
        row = session.get(Workspace, workspace_id)
        session.expunge_all()
        return row


def auth(api_key: str) -> dict:
    return {"Authorization": f"Bearer {api_key}"}
