"""Projects (an office's work its contacts pay for): create, change, render; SQL in repository.py (one place)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.credits import schemas
from creditdesk.credits.models import Project, ProjectContact
from creditdesk.errors import NotPermitted
from creditdesk.ids import new_id
from creditdesk.parties.models import Office, User
from creditdesk.repository import get_in_workspace


def _check_contacts(session: Session, workspace_id: str, ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(ids))
    for user_id in unique:
        get_in_workspace(session, User, workspace_id, user_id)
    return unique


def project_contact_ids(session: Session, project_id: str) -> list[str]:
    return list(session.scalars(select(ProjectContact.user_id).where(ProjectContact.project_id == project_id)
                                .order_by(ProjectContact.user_id)))


def project_out(session: Session, project: Project) -> schemas.ProjectOut:
    office = session.get(Office, project.office_id)
    return schemas.ProjectOut(id=project.id, name=project.name, office_id=project.office_id,
                              customer_id=office.customer_id if office else None,
                              contact_ids=project_contact_ids(session, project.id), status=project.status,
                              created_at=project.created_at, updated_at=project.updated_at)


def create_project(session: Session, data: schemas.ProjectCreate, *, actor: Actor) -> Project:
    if not (actor.is_master or actor.role == "manager" or actor.has("consume_credits")):
        raise NotPermitted("Creating projects needs a manager role or the consume_credits permission.")
    get_in_workspace(session, Office, actor.workspace_id, data.office_id)
    contacts = _check_contacts(session, actor.workspace_id, data.contact_ids)
    now = clock.now()
    project = Project(id=new_id("prj"), workspace_id=actor.workspace_id, office_id=data.office_id, name=data.name,
                      status="open", created_at=now, updated_at=now)
    session.add(project)
    session.flush()
    for user_id in contacts:
        session.add(ProjectContact(project_id=project.id, user_id=user_id, workspace_id=actor.workspace_id))
    session.flush()
    audit.record(session, actor=actor, action="project.create", object_type="project", object_id=project.id,
                 after=snapshot(project, contact_ids=contacts))
    return project


def update_project(session: Session, project_id: str, data: schemas.ProjectUpdate, *, actor: Actor) -> Project:
    if not (actor.is_master or actor.role == "manager" or actor.has("consume_credits")):
        raise NotPermitted("Changing projects needs a manager role or the consume_credits permission.")
    project = get_in_workspace(session, Project, actor.workspace_id, project_id, for_update=True)
    before = snapshot(project, contact_ids=project_contact_ids(session, project.id))
    fields = data.model_fields_set
    if "name" in fields and data.name:
        project.name = data.name
    if "status" in fields and data.status:
        project.status = data.status
    if "office_id" in fields and data.office_id:
        get_in_workspace(session, Office, actor.workspace_id, data.office_id)
        project.office_id = data.office_id
    if "contact_ids" in fields and data.contact_ids is not None:
        contacts = _check_contacts(session, actor.workspace_id, data.contact_ids)
        for row in session.scalars(select(ProjectContact).where(ProjectContact.project_id == project.id)):
            session.delete(row)
        session.flush()
        for user_id in contacts:
            session.add(ProjectContact(project_id=project.id, user_id=user_id, workspace_id=actor.workspace_id))
    project.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="project.update", object_type="project", object_id=project.id,
                 before=before, after=snapshot(project, contact_ids=project_contact_ids(session, project.id)))
    return project
