"""Shortcuts for the credits service tests: every call is one `db.write` through the real services."""

from __future__ import annotations

from dataclasses import dataclass

from creditdesk.audit import Actor
from creditdesk.credits import reads
from creditdesk.credits import schemas as cs
from creditdesk.credits import consumptions, credit_types, holds, packs, transfers
from creditdesk.credits.models import Pack
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerAccount
from tests.conftest import make_workspace
from tests.parties.factories import make_customer, make_office, make_user, master_actor


@dataclass
class Shop:
    """One workspace: credit types `credits` and `sms` (sms needs send_sms), a customer with two offices,
    users anna (staff with send_sms, in berlin), ben (contact, no send_sms, in berlin) and clara (contact,
    paris). Anna is staff: SMS credits are held by staff users only (governance.may_use)."""

    db: object
    ws: str
    actor: Actor
    customer: str
    berlin: str
    paris: str
    anna: str
    ben: str
    clara: str


def make_shop(db, name: str = "Shop") -> Shop:
    ws = make_workspace(db, name=name)
    actor = master_actor(db, ws.id)
    credit_type(db, actor, "credits")
    credit_type(db, actor, "sms", required_permission="send_sms")
    customer = make_customer(db, actor=actor, name="Acme")
    berlin = make_office(db, actor=actor, name="Berlin", customer_id=customer)
    paris = make_office(db, actor=actor, name="Paris", customer_id=customer)
    anna = make_user(db, actor=actor, name="Anna", is_staff=True, permissions=["send_sms"],
                     primary_office_id=berlin)
    ben = make_user(db, actor=actor, name="Ben", is_staff=False, primary_office_id=berlin)
    clara = make_user(db, actor=actor, name="Clara", is_staff=False, primary_office_id=paris)
    return Shop(db, ws.id, actor, customer, berlin, paris, anna, ben, clara)


def credit_type(db, actor: Actor, code: str, **kw) -> str:
    return db.write(lambda s: credit_types.create_credit_type(
        s, cs.CreditTypeCreate(code=code, name=code.title(), **kw), actor=actor).id)


def holder(kind: str, holder_id: str | None) -> dict:
    return {"kind": kind, "id": holder_id if kind != "workspace" else None}


def grant(db, actor: Actor, kind: str, holder_id: str | None, quantity: int, *, credit_type: str = "credits",
          name: str = "Pack", **kw) -> str:
    data = cs.PackCreate(holder=holder(kind, holder_id), credit_type=credit_type, quantity=quantity, name=name, **kw)
    return db.write(lambda s: packs.grant_pack(s, data, actor=actor).id)


def consume(db, actor: Actor, kind: str, context_id: str | None, amount: int, *, credit_type: str = "credits",
            **kw) -> cs.ConsumptionOut:
    data = cs.ConsumeRequest(context={"kind": kind, "id": context_id}, credit_type=credit_type, amount=amount, **kw)
    return db.write(lambda s: consumptions.consume(s, data, actor=actor))


def hold(db, actor: Actor, kind: str, context_id: str | None, amount: int, *, credit_type: str = "credits",
         **kw) -> cs.HoldOut:
    data = cs.HoldRequest(context={"kind": kind, "id": context_id}, credit_type=credit_type, amount=amount, **kw)
    return db.write(lambda s: holds.hold_out(s, holds.create_hold(s, data, actor=actor)))


def capture(db, actor: Actor, hold_id: str, amount: int | None = None) -> cs.HoldOut:
    return db.write(lambda s: holds.hold_out(s, holds.capture_hold(s, hold_id, cs.CaptureRequest(amount=amount),
                                                                   actor=actor)))


def release(db, actor: Actor, hold_id: str) -> cs.HoldOut:
    return db.write(lambda s: holds.hold_out(s, holds.release_hold(s, hold_id, actor=actor)))


def transfer(db, actor: Actor, to: tuple[str, str | None], amount: int, *, source: tuple[str, str | None] | None = None,
             from_pack_id: str | None = None, credit_type: str = "credits", memo: str = ""):
    body = {"to": holder(*to), "credit_type": credit_type, "amount": amount, "memo": memo}
    if source is not None:
        body["from"] = holder(*source)
    if from_pack_id is not None:
        body["from_pack_id"] = from_pack_id
    data = cs.TransferRequest.model_validate(body)
    return db.write(lambda s: transfers.transfer_out(
        s, (r := transfers.transfer_credits(s, data, actor=actor)).transfer, r.lines))


def pack(db, actor: Actor, pack_id: str) -> cs.PackOut:
    with db.read() as s:
        return reads.get_pack_out(s, actor=actor, pack_id=pack_id)


def remaining(db, actor: Actor, pack_id: str) -> int:
    return pack(db, actor, pack_id).remaining


def balance(db, actor: Actor, kind: str, holder_id: str | None, credit_type: str = "credits") -> dict:
    with db.read() as s:
        rows = reads.balances(s, actor=actor, holder_kind=kind, holder_id=holder_id, credit_type=credit_type)
    assert len(rows) == 1
    return {k: getattr(rows[0], k) for k in ("available", "held", "total", "frozen")}


def history(db, actor: Actor, pack_id: str) -> list[cs.HistoryEntry]:
    with db.read() as s:
        return reads.pack_history(s, actor=actor, pack_id=pack_id)


def lines(out) -> list[tuple[str, int]]:
    return [(line.pack_id, line.amount) for line in out.lines]


def account(db, pack_id: str) -> LedgerAccount:
    with db.read() as s:
        return s.get(LedgerAccount, s.get(Pack, pack_id).ledger_account_id)


def assert_verified(db, ws: str) -> None:
    with db.read() as s:
        report = ledger.verify(s, workspace_id=ws)
    assert report.ok, report.problems
