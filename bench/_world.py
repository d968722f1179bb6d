"""Throwaway databases and bench worlds shared by workloads 5 and 6 (not imported by creditdesk itself)."""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from creditdesk import migrate
from creditdesk.audit import Actor
from creditdesk.credits import schemas as cs
from creditdesk.credits.credit_types import create_credit_type
from creditdesk.db import Database
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties


@dataclass
class World:
    db: Database
    ws: str
    actor: Actor
    offices: list[str]
    users: list[str]


def sqlite_db(path: str) -> Database:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    return db


def make_world(db: Database, *, offices: int = 200, users: int = 200, credit_types=("credits",)) -> World:
    """A workspace with a customer, `offices` offices and `users` users (holders), made through the services."""
    def setup(session):
        ws, master, _key, _secret = parties.create_workspace(
            session, name="Bench", master_name="Master", master_email=f"bench-{os.urandom(4).hex()}@example.com",
            master_password="correct horse battery")
        return ws.id, master.id

    ws, master_id = db.write(setup)
    with db.read() as session:
        from creditdesk.parties.models import User

        actor = parties.actor_for_user(session, session.get(User, master_id))
    for code in credit_types:
        db.write(lambda s, code=code: create_credit_type(s, cs.CreditTypeCreate(code=code, name=code),
                                                         actor=actor))

    def holders(session):
        customer = parties.create_customer(session, ps.CustomerCreate(name="Acme"), actor=actor)
        office_ids = [parties.create_office(session, ps.OfficeCreate(name=f"Office {i}", customer_id=customer.id),
                                            actor=actor).id for i in range(offices)]
        user_ids = [parties.create_user(session, ps.UserCreate(
            name=f"User {i}", email=f"user{i}-{os.urandom(3).hex()}@example.com", is_staff=False,
            primary_office_id=office_ids[i % len(office_ids)]), actor=actor).id for i in range(users)]
        return office_ids, user_ids

    office_ids, user_ids = db.write(holders)
    return World(db, ws, actor, office_ids, user_ids)


def write_packs_csv(path: str, world: World, rows: int, *, seed: int = 1, credit_type: str = "credits",
                    expired_share: float = 0.0, now: datetime | None = None) -> None:
    """A CSV of `rows` valid packs spread over the world's holders, most with an expiry, some with products."""
    rnd = random.Random(seed)
    now = now or datetime.now(UTC)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["holder_kind", "holder_id", "credit_type", "quantity", "name", "price_paid", "currency",
                      "purchased_at", "expires_at", "priority", "product_codes", "status_label", "external_ref"])
        for i in range(rows):
            if rnd.random() < 0.5:
                kind, holder = "office", world.offices[rnd.randrange(len(world.offices))]
            else:
                kind, holder = "user", world.users[rnd.randrange(len(world.users))]
            paid = rnd.random() < 0.5
            if rnd.random() < expired_share:
                purchased = now - timedelta(days=400 + rnd.randrange(300))
                expires = purchased + timedelta(days=365)
            else:
                purchased = now - timedelta(days=rnd.randrange(300))
                expires = purchased + timedelta(days=365 + rnd.randrange(700))
            out.writerow([kind, holder, credit_type, rnd.randrange(1, 500), f"Pack {i}",
                          rnd.randrange(100, 100000) if paid else 0, "GBP" if paid else "",
                          purchased.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          expires.strftime("%Y-%m-%dT%H:%M:%SZ") if rnd.random() < 0.9 else "",
                          rnd.choice((100, 100, 100, 50, 200)),
                          rnd.choice(("", "", "", "audit", "audit;tax")),
                          rnd.choice(("", "", "drive-2026", "renewal")), f"ext-{i}"])
