"""Back-office test fixtures: a small credits world built through the services, and logging in as a browser does."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from creditdesk.credits import schemas as cs
from creditdesk.credits import credit_types, expiry, packs, projects
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ONCE = re.compile(r'name="idempotency_key" value="([^"]+)"')


@dataclass
class World:
    """One workspace:

        customer Acme -- office London (contact Wendy), office Leeds (contact Liam)
        staff: master, manager (manage_packs), member (consume_credits only)
        credit type hours (scale 2)
        packs: london (40.00 h, label "Renewal due"), wendy (10.00 h, translation only),
               leeds (20.00 h), expired (London, expired), soon (London, 5.00 h, expires in 10 days)
        project "Website" on London with contact Wendy
    """

    workspace_id: str
    master_email: str
    manager_email: str
    member_email: str
    customer_id: str
    london_id: str
    leeds_id: str
    wendy_id: str
    liam_id: str
    project_id: str
    london_pack: str
    wendy_pack: str
    leeds_pack: str
    expired_pack: str
    soon_pack: str


def build_world(db, *, name: str = "Web workspace") -> World:
    tag = os.urandom(4).hex()

    def fn(session):
        ws, master, _key, _secret = parties.create_workspace(
            session, name=name, master_name="Mona Master", master_email=f"master-{tag}@example.com",
            master_password=PASSWORD)
        actor = parties.actor_for_user(session, master)
        customer = parties.create_customer(session, ps.CustomerCreate(name=f"Acme {tag}"), actor=actor)
        london = parties.create_office(session, ps.OfficeCreate(name="London", customer_id=customer.id), actor=actor)
        leeds = parties.create_office(session, ps.OfficeCreate(name="Leeds", customer_id=customer.id), actor=actor)
        wendy = parties.create_user(session, ps.UserCreate(name="Wendy Widget", primary_office_id=london.id),
                                    actor=actor)
        liam = parties.create_user(session, ps.UserCreate(name="Liam Leeds", primary_office_id=leeds.id), actor=actor)
        parties.create_user(session, ps.UserCreate(
            name="Max Manager", email=f"manager-{tag}@example.com", is_staff=True, role="manager",
            permissions=["manage_packs", "consume_credits"], password=PASSWORD), actor=actor)
        parties.create_user(session, ps.UserCreate(
            name="Mel Member", email=f"member-{tag}@example.com", is_staff=True, role="member",
            permissions=["consume_credits"], password=PASSWORD), actor=actor)
        credit_types.create_credit_type(session, cs.CreditTypeCreate(code="hours", name="Work hours", scale=2),
                                        actor=actor)
        now = datetime.now(UTC)

        def grant(kind, holder_id, qty, pack_name, **kw):
            return packs.grant_pack(session, cs.PackCreate(
                holder=cs.Holder(kind=kind, id=holder_id), credit_type="hours", quantity=qty, name=pack_name,
                **kw), actor=actor).id

        london_pack = grant("office", london.id, 4000, "London content pack", status_label="Renewal due",
                            notes="Quote for 80h", expires_at=now + timedelta(days=300))
        wendy_pack = grant("user", wendy.id, 1000, "Wendy translation hours", product_codes=["translation"],
                           expires_at=now + timedelta(days=90))
        leeds_pack = grant("office", leeds.id, 2000, "Leeds starter pack", expires_at=now + timedelta(days=200))
        soon_pack = grant("office", london.id, 500, "London top-up", expires_at=now + timedelta(days=10),
                          priority=50)
        expired_pack = grant("office", london.id, 700, "London 2025 hours", purchased_at=now - timedelta(days=400),
                             expires_at=now - timedelta(days=5))
        expiry.expire_packs(session, [expired_pack])
        project = projects.create_project(session, cs.ProjectCreate(name="Website", office_id=london.id,
                                                                    contact_ids=[wendy.id]), actor=actor)
        return World(ws.id, master.email, f"manager-{tag}@example.com", f"member-{tag}@example.com", customer.id,
                     london.id, leeds.id, wendy.id, liam.id, project.id, london_pack, wendy_pack, leeds_pack,
                     expired_pack, soon_pack)

    return db.write(fn)


@pytest.fixture
def world(db) -> World:
    return build_world(db)


@pytest.fixture
def other_world(db) -> World:
    return build_world(db, name="Other web workspace")


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def once_key_of(html: str) -> str:
    """The one-time key of the (first) money form on a page."""
    match = ONCE.search(html)
    assert match, "no one-time form key on the page"
    return match.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
                       follow_redirects=False)


@pytest.fixture
def web(app):
    """A fresh browser-like client (its own cookies) per test."""
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def logged_in(client: TestClient, email: str) -> TestClient:
    response = login(client, email)
    assert response.status_code == 303, response.text
    return client


def post_form(client: TestClient, path: str, data: dict, *, page: str | None = None, **kwargs):
    """Post a form as the browser would: with the CSRF token of a page of this session, and the one-time
    key of the page's money form when it has one (and `data` does not say otherwise)."""
    html = client.get(page or "/settings").text
    data = {**data, "csrf_token": csrf_of(html)}
    key = ONCE.search(html)
    if key and "idempotency_key" not in data:
        data["idempotency_key"] = key.group(1)
    return client.post(path, data=data, follow_redirects=False, **kwargs)
