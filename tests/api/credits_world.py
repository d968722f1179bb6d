"""Shared set-up for the credits API tests: a realistic customer built through HTTP, and state fingerprints.

The world (clock frozen at 2026-01-15 12:00 UTC):

    customer Acme
      office Berlin (Acme)  -- contacts Anna, Ben (no login)
      office Paris  (Acme)  -- contact Clara
    project "Website relaunch" on Berlin with contacts Anna and Ben

Packs (credit type `credits`), listed in the burn order of a project consumption:

    ben_vip        Ben     30  priority 10, never expires, paid          -> 1st (lowest priority number)
    anna_march     Anna    50  priority 100, expires 2026-03-31, free    -> 2nd (soonest expiry)
    anna_june      Anna    40  priority 100, expires 2026-06-30, free    -> 3rd (free before paid)
    berlin_june    Berlin 100  priority 100, expires 2026-06-30, paid    -> 4th (older)
    berlin_june_2  Berlin  20  priority 100, expires 2026-06-30, paid    -> 5th (newer)
    paris          Paris   70  (not the project's office: never burned for the project)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from creditdesk.audit import AuditEvent
from creditdesk.credits.models import Consumption, CreditTransfer, CreditType, Hold, Pack, Project, ProjectContact
from creditdesk.db import Database
from creditdesk.idempotency import IdempotencyKey
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerAccount, LedgerTransfer

PROBLEM = "application/problem+json"


class Api:
    """A client acting with one workspace's API key."""

    def __init__(self, client: TestClient, headers: dict):
        self.client = client
        self.headers = headers

    def _headers(self, key: str | None) -> dict:
        return {**self.headers, "Idempotency-Key": key} if key is not None else dict(self.headers)

    def post(self, path: str, body=None, *, key: str | None = None, status: int | None = None):
        if body is None:
            r = self.client.post(path, headers=self._headers(key))
        else:
            r = self.client.post(path, json=body, headers=self._headers(key))
        if status is not None:
            assert r.status_code == status, r.text
        return r

    def patch(self, path: str, body, *, key: str | None = None, status: int | None = None):
        r = self.client.patch(path, json=body, headers=self._headers(key))
        if status is not None:
            assert r.status_code == status, r.text
        return r

    def get(self, path: str, params=None, *, status: int | None = 200):
        r = self.client.get(path, params=params, headers=self.headers)
        if status is not None:
            assert r.status_code == status, r.text
        return r

    def created(self, path: str, body, **kw) -> dict:
        return self.post(path, body, status=201, **kw).json()

    # --- domain shortcuts ---

    def pack(self, holder_kind: str, holder_id: str | None, quantity: int, name: str, **extra) -> dict:
        body = {"holder": {"kind": holder_kind, "id": holder_id}, "credit_type": extra.pop("credit_type", "credits"),
                "quantity": quantity, "name": name, **extra}
        return self.created("/v1/packs", body)

    def balance(self, holder_kind: str, holder_id: str | None, credit_type: str = "credits") -> dict:
        params = {"holder_kind": holder_kind, "credit_type": credit_type}
        if holder_id is not None:
            params["holder_id"] = holder_id
        rows = self.get("/v1/balances", params).json()["data"]
        assert len(rows) == 1, rows
        return {k: rows[0][k] for k in ("available", "held", "total")}

    def remaining(self, pack_id: str) -> int:
        return self.get(f"/v1/packs/{pack_id}").json()["remaining"]


def problem(r, status: int, code: str) -> dict:
    """Assert an RFC 9457 problem with this status and stable code."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


@dataclass
class World:
    api: Api
    customer: str
    berlin: str
    paris: str
    anna: str
    ben: str
    clara: str
    project: str
    packs: dict[str, str] = field(default_factory=dict)

    @property
    def burn_order(self) -> list[str]:
        return [self.packs[n] for n in ("ben_vip", "anna_march", "anna_june", "berlin_june", "berlin_june_2")]


def build_world(client: TestClient, headers: dict, *, with_packs: bool = True) -> World:
    api = Api(client, headers)
    api.created("/v1/credit-types", {"code": "credits", "name": "Credits"})
    api.created("/v1/credit-types", {"code": "sms", "name": "SMS", "required_permission": "send_sms"})
    customer = api.created("/v1/customers", {"name": "Acme GmbH", "email": "billing@acme.example"})["id"]
    berlin = api.created("/v1/offices", {"name": "Acme Berlin", "customer_id": customer})["id"]
    paris = api.created("/v1/offices", {"name": "Acme Paris", "customer_id": customer})["id"]

    def contact(name, office):
        return api.created("/v1/users", {"name": name, "email": f"{name.lower()}@acme.example", "is_staff": False,
                                         "primary_office_id": office})["id"]

    anna, ben, clara = contact("Anna", berlin), contact("Ben", berlin), contact("Clara", paris)
    project = api.created("/v1/projects", {"name": "Website relaunch", "office_id": berlin,
                                           "contact_ids": [anna, ben]})["id"]
    world = World(api, customer, berlin, paris, anna, ben, clara, project)
    if with_packs:
        p = world.packs
        p["ben_vip"] = api.pack("user", ben, 30, "VIP hours", priority=10, price_paid=3000, currency="EUR")["id"]
        p["anna_march"] = api.pack("user", anna, 50, "Welcome credits", source="promotion",
                                   expires_at="2026-03-31T00:00:00Z")["id"]
        p["anna_june"] = api.pack("user", anna, 40, "Goodwill", expires_at="2026-06-30T00:00:00Z")["id"]
        p["berlin_june"] = api.pack("office", berlin, 100, "Berlin 2026 H1", price_paid=10000, currency="EUR",
                                    source="crm_deal", external_ref="DEAL-4711",
                                    expires_at="2026-06-30T00:00:00Z")["id"]
        p["berlin_june_2"] = api.pack("office", berlin, 20, "Berlin top-up", price_paid=2000, currency="EUR",
                                      expires_at="2026-06-30T00:00:00Z")["id"]
        p["paris"] = api.pack("office", paris, 70, "Paris 2026", price_paid=7000, currency="EUR")["id"]
    return world


# --- fingerprints of the database state -------------------------------------------------------------

_COUNTED = {"credit_types": CreditType, "packs": Pack, "projects": Project, "project_contacts": ProjectContact,
            "consumptions": Consumption, "holds": Hold, "credit_transfers": CreditTransfer,
            "ledger_accounts": LedgerAccount, "ledger_transfers": LedgerTransfer, "audit_events": AuditEvent}


def state(db: Database, workspace_id: str) -> dict:
    """Everything a credits write could change in one workspace: row counts, every pack's holder and
    status, every ledger account's cached totals, consumption/hold statuses."""
    with db.read() as s:
        out = {name: s.scalar(select(func.count()).select_from(m).where(m.workspace_id == workspace_id))
               for name, m in _COUNTED.items()}
        out["pack_rows"] = sorted(
            (p.id, p.holder_kind, p.holder_id, p.status, p.name, p.priority, p.status_label, p.notes, p.void_reason)
            for p in s.scalars(select(Pack).where(Pack.workspace_id == workspace_id)))
        out["accounts"] = sorted(
            (a.id, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
            for a in s.scalars(select(LedgerAccount).where(LedgerAccount.workspace_id == workspace_id)))
        out["consumption_rows"] = sorted((c.id, c.status) for c in s.scalars(
            select(Consumption).where(Consumption.workspace_id == workspace_id)))
        out["hold_rows"] = sorted((h.id, h.status, h.captured_amount, h.reversed_at is not None) for h in s.scalars(
            select(Hold).where(Hold.workspace_id == workspace_id)))
        out["project_rows"] = sorted((p.id, p.name, p.office_id, p.status) for p in s.scalars(
            select(Project).where(Project.workspace_id == workspace_id)))
        return out


def idempotency_keys(db: Database, workspace_id: str) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(IdempotencyKey)
                        .where(IdempotencyKey.workspace_id == workspace_id))


def assert_ledger_clean(db: Database, workspace_id: str) -> None:
    with db.read() as s:
        report = ledger.verify(s, workspace_id=workspace_id)
    assert report.ok, report.problems


def member_api(client: TestClient, api: Api, *, permissions: list[str], role: str = "member",
               office: str | None = None) -> tuple[Api, str]:
    """A staff user with these permissions and an API key acting as them (made by the master)."""
    import os

    user = api.created("/v1/users", {"name": "Staff " + "-".join(permissions or ["none"]),
                                     "email": f"staff-{os.urandom(4).hex()}@example.com", "is_staff": True,
                                     "role": role, "permissions": permissions,
                                     "password": "correct horse battery", "primary_office_id": office})["id"]
    key = api.created("/v1/api-keys", {"name": "member key", "user_id": user})["key"]
    return Api(client, {"Authorization": f"Bearer {key}"}), user
