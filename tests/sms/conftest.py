"""The SMS world (seed 003), built through the real services. Clock frozen at 2026-01-15 12:00 UTC.

    offices North, East, South
    master   Master (workspace master; holds every permission)
    Mia      manager, send_sms + manage_office_credits, primary North, additional East
    Max      manager, send_sms only (no manage_office_credits), North
    Ann      member, send_sms, North, team "North team" with Ben and Dan
    Ben      member, send_sms, North, North team
    Dan      member, NO send_sms, North, North team
    Eve      member, send_sms, East (Mia's additional office)
    Cat      member, send_sms, South (none of Mia's offices, no team)
    Ian      member, send_sms, North, deactivated
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from creditdesk.audit import Actor
from creditdesk.credits import reads
from creditdesk.db import Database
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.sms import payments, schemas as s, senders
from creditdesk.sms import service as sms
from tests.parties.factories import actor_of, make_office, make_user, master_actor

BILLING = {"name": "Ann Example", "address": "1 Harbour St\nSydney NSW 2000", "tax_id": "ABN 12 345 678 901",
           "email": "ann@example.com"}


@dataclass
class SmsWorld:
    db: Database
    ws: str
    master_id: str
    offices: dict[str, str]
    ids: dict[str, str]
    team: str
    actors: dict[str, Actor] = field(default_factory=dict)

    def actor(self, name: str) -> Actor:
        """A fresh actor (re-read from the database), as a new request would authenticate."""
        return actor_of(self.db, self.ids[name]) if name != "master" else master_actor(self.db, self.ws)

    def write(self, fn):
        return self.db.write(fn)

    def buy(self, who: str, for_kind: str, for_name: str | None, quantity: int, *, method: str = "manual_invoice"):
        body = s.PurchaseCreate.model_validate({
            "for": {"kind": for_kind, "id": self.ids[for_name] if for_name else None}, "quantity": quantity,
            "billing": BILLING, "payment_method": method})
        return self.write(lambda session: sms.create_purchase(session, body, actor=self.actor(who)))

    def move(self, who: str, source: str, to: str, quantity: int, *, agree: bool = True, memo: str = ""):
        def ref(name):
            return {"kind": "workspace"} if name == "pool" else {"kind": "user", "id": self.ids[name]}
        body = s.SmsTransferCreate.model_validate({"from": ref(source), "to": ref(to), "quantity": quantity,
                                                   "agree_to_conditions": agree, "memo": memo})
        return self.write(lambda session: sms.transfer(session, body, actor=self.actor(who)))

    def send(self, who: str, body: str, *, to: str = "+61400000001", on_behalf_of: str | None = None,
             sender=None, actor: Actor | None = None):
        data = s.MessageCreate(to=to, body=body,
                               on_behalf_of_user_id=self.ids[on_behalf_of] if on_behalf_of else None)
        return self.write(lambda session: sms.send_message(session, data, actor=actor or self.actor(who),
                                                           sender=sender))

    def balance(self, name: str) -> dict:
        """available / held / frozen SMS credits of a user ("pool" for the workspace pool)."""
        kind, holder = ("workspace", None) if name == "pool" else ("user", self.ids[name])
        with self.db.read() as session:
            rows = reads.balances(session, actor=Actor.system(self.ws), holder_kind=kind, holder_id=holder,
                                  credit_type="sms") if sms.find_sms_credit_type(session, self.ws) else []
        if not rows:
            return {"available": 0, "held": 0, "frozen": 0}
        return {"available": rows[0].available, "held": rows[0].held, "frozen": rows[0].frozen}

    def accounts(self, who: str) -> dict[str, object]:
        """name -> account row of the Manage SMS credits box as `who` sees it ("pool" for the pool)."""
        with self.db.read() as session:
            rows = sms.list_accounts(session, actor=self.actor(who))
        names = {v: k for k, v in self.ids.items()}
        return {("pool" if r.kind == "workspace" else names.get(r.id, r.id)): r for r in rows}

    def set_permissions(self, name: str, permissions: list[str]) -> None:
        self.write(lambda session: parties.update_user(session, self.ids[name],
                                                       ps.UserUpdate(permissions=permissions),
                                                       actor=self.actor("master")))

    def deactivate(self, name: str) -> None:
        self.write(lambda session: parties.update_user(session, self.ids[name], ps.UserUpdate(is_active=False),
                                                       actor=self.actor("master")))


def build_sms_world(db: Database, workspace_id: str) -> SmsWorld:
    master = master_actor(db, workspace_id)
    offices = {n: make_office(db, actor=master, name=n) for n in ("North", "East", "South")}

    def user(name, role="member", perms=("send_sms",), office="North", extra=()):
        return make_user(db, actor=master, name=name, role=role, permissions=list(perms),
                         primary_office_id=offices[office], additional_office_ids=[offices[o] for o in extra])

    ids = {
        "master": master.user_id,
        "Mia": user("Mia", "manager", ("send_sms", "manage_office_credits"), "North", ("East",)),
        "Max": user("Max", "manager", ("send_sms",)),
        "Ann": user("Ann"), "Ben": user("Ben"), "Dan": user("Dan", perms=()),
        "Eve": user("Eve", office="East"), "Cat": user("Cat", office="South"), "Ian": user("Ian"),
    }
    team = db.write(lambda session: parties.create_team(session, ps.TeamCreate(
        name="North team", office_id=offices["North"], member_ids=[ids["Ann"], ids["Ben"], ids["Dan"]]),
        actor=master).id)
    world = SmsWorld(db=db, ws=workspace_id, master_id=master.user_id, offices=offices, ids=ids, team=team)
    world.deactivate("Ian")
    return world


@pytest.fixture
def world(db, workspace, frozen_clock) -> SmsWorld:
    return build_sms_world(db, workspace.id)


class Declined:
    code, label = "test_declined", "A card that is always declined"

    def charge(self, purchase, *, idempotency_key):
        return payments.PaymentResult(status="failed", reference="card:declined", error="Card declined")


class Pending:
    code, label = "test_pending", "A bank transfer that is confirmed later"

    def charge(self, purchase, *, idempotency_key):
        return payments.PaymentResult(status="pending", reference=f"bank:{purchase.id}")


class Exploding:
    code, label = "test_exploding", "A gateway that raises"

    def charge(self, purchase, *, idempotency_key):
        raise RuntimeError("gateway unreachable")


@pytest.fixture
def test_payment_methods():
    for method in (Declined(), Pending(), Exploding()):
        payments.register_payment_method(method)
    yield
    for code in ("test_declined", "test_pending", "test_exploding"):
        payments.unregister_payment_method(code)


class RefusingSender:
    name = "refusing"

    def send(self, message, *, idempotency_key):
        return senders.SendResult(accepted=False, error="Number unreachable")


class ExplodingSender:
    name = "exploding"

    def send(self, message, *, idempotency_key):
        raise ConnectionError("gateway down")


@pytest.fixture
def sender_backend():
    """Install a sender backend for the test (the API uses the process-wide one); put the old one back."""
    installed = []

    def install(backend):
        installed.append(senders.set_sender(backend))
        return backend
    yield install
    if installed:
        senders.set_sender(installed[0])
