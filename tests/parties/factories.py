"""Factories: keyword-only functions with defaults, going through the real services."""

from __future__ import annotations

import os

from creditdesk.audit import Actor
from creditdesk.db import Database
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties


def master_actor(db: Database, workspace_id: str) -> Actor:
    from sqlalchemy import select

    from creditdesk.parties.models import User

    with db.read() as session:
        user = session.scalar(select(User).where(User.workspace_id == workspace_id, User.role == "master")
                              .order_by(User.id))
        return parties.actor_for_user(session, user)


def make_customer(db: Database, *, actor: Actor, name: str = "Customer") -> str:
    return db.write(lambda s: parties.create_customer(s, ps.CustomerCreate(name=name), actor=actor).id)


def make_office(db: Database, *, actor: Actor, name: str = "Office", customer_id: str | None = None) -> str:
    return db.write(lambda s: parties.create_office(s, ps.OfficeCreate(name=name, customer_id=customer_id),
                                                    actor=actor).id)


def make_user(db: Database, *, actor: Actor, name: str = "User", is_staff: bool = True, role: str = "member",
              permissions: list[str] | None = None, primary_office_id: str | None = None,
              additional_office_ids: list[str] | None = None, password: str | None = None) -> str:
    email = f"{name.lower().replace(' ', '.')}-{os.urandom(3).hex()}@example.com"
    data = ps.UserCreate(name=name, email=email, is_staff=is_staff, role=role, permissions=permissions or [],
                         primary_office_id=primary_office_id, additional_office_ids=additional_office_ids or [],
                         password=password if is_staff else None)
    return db.write(lambda s: parties.create_user(s, data, actor=actor).id)


def make_api_key(db: Database, *, actor: Actor, user_id: str) -> str:
    return db.write(lambda s: parties.create_api_key(s, ps.ApiKeyCreate(name="test", user_id=user_id),
                                                     actor=actor)[1])


def actor_of(db: Database, user_id: str) -> Actor:
    from creditdesk.parties.models import User

    with db.read() as session:
        return parties.actor_for_user(session, session.get(User, user_id))
