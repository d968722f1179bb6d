"""Shared office SMS credits (issue 17; seed 003 contrasts them with individual credits): a message is paid from
the sender's office pool, then the workspace pool; purchases and transfers go to office pools under the office
rules; the same logs; switching the mode asks first and moves nothing."""

from __future__ import annotations

import pytest

from creditdesk.credits.errors import InsufficientCredits
from creditdesk.errors import Conflict, InvalidInput, NotPermitted
from creditdesk.ledger import service as ledger
from creditdesk.sms import schemas as s
from creditdesk.sms import service as sms
from tests.sms.conftest import BILLING


def _shared(world):
    world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(
        credit_mode="shared", confirm_mode_change=True), actor=world.actor("master")))


def _buy_for(world, who, office, quantity):
    ref = {"kind": "workspace"} if office == "pool" else {"kind": "office", "id": world.offices[office]}
    body = s.PurchaseCreate.model_validate({"for": ref, "quantity": quantity, "billing": BILLING})
    return world.write(lambda session: sms.create_purchase(session, body, actor=world.actor(who)))


def _move(world, who, source, to, quantity):
    def ref(name):
        if name == "pool":
            return {"kind": "workspace"}
        if name in world.offices:
            return {"kind": "office", "id": world.offices[name]}
        return {"kind": "user", "id": world.ids[name]}
    body = s.SmsTransferCreate.model_validate({"from": ref(source), "to": ref(to), "quantity": quantity,
                                               "agree_to_conditions": True})
    return world.write(lambda session: sms.transfer(session, body, actor=world.actor(who)))


def _box(world, who):
    with world.db.read() as session:
        return {(r.kind, r.name): r for r in sms.list_accounts(session, actor=world.actor(who))}


def test_a_message_is_paid_by_the_office_pool_then_the_workspace_pool(world):
    _shared(world)
    _buy_for(world, "master", "North", 2)
    _buy_for(world, "master", "pool", 5)
    world.send("Ann", "First")  # North's pool
    world.send("Ben", "Second")  # North's pool: now empty
    world.send("Ann", "Third")  # the workspace pool
    box = _box(world, "master")
    assert box[("office", "North")].available == 0 and box[("workspace", "System credits (unallocated)")].available == 4
    # Cat (South, no pool) is paid by the workspace pool too; when both are empty the refusal says so.
    for _ in range(4):
        world.send("Cat", "Hi")
    with pytest.raises(InsufficientCredits):
        world.send("Cat", "One too many")
    with world.db.read() as session:
        assert ledger.verify(session, workspace_id=world.ws).ok
    # The logs show the office pool's movements.
    with world.db.read() as session:
        entries = sms.list_logs(session, actor=world.actor("master"), account=world.offices["North"]).items
    assert sorted(e.movement for e in entries) == ["purchase", "sent", "sent"]


def test_who_buys_and_moves_office_credits(world):
    _shared(world)
    _buy_for(world, "Mia", "East", 10)  # an office manager for her additional office
    with pytest.raises(NotPermitted):
        _buy_for(world, "Mia", "South", 10)  # not one of hers
    with pytest.raises(NotPermitted):
        _buy_for(world, "Ann", "North", 10)  # members ask an office manager
    with pytest.raises(NotPermitted):
        _buy_for(world, "Mia", "pool", 10)  # the pool is the masters'
    _move(world, "Mia", "East", "North", 4)  # between her offices
    with pytest.raises(NotPermitted):
        _move(world, "Mia", "East", "South", 1)
    with pytest.raises(NotPermitted):
        _move(world, "Ann", "North", "East", 1)
    _move(world, "master", "North", "pool", 1)
    with pytest.raises(InvalidInput) as exc:
        _move(world, "master", "pool", "Ann", 1)  # users hold no credits in shared mode
    assert exc.value.code == "invalid_sms_account"
    box = _box(world, "Mia")
    assert box[("office", "East")].available == 6 and box[("office", "North")].available == 3
    assert ("office", "South") not in box and ("workspace", "System credits (unallocated)") not in box
    assert "purchase" not in _box(world, "Ann")[("office", "North")].actions  # members see, do not manage


def test_switching_the_mode_asks_first_and_moves_nothing(world):
    world.buy("master", "user", "Ann", 30)
    with pytest.raises(Conflict) as exc:
        world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(credit_mode="shared"),
                                                        actor=world.actor("master")))
    assert exc.value.code == "mode_change_unconfirmed"
    assert exc.value.details["credits"] == 30 and exc.value.details["holders"] == 1
    assert "30 credit(s) held by 1 users stay where they are" in exc.value.message
    _shared(world)
    assert world.balance("Ann")["available"] + world.balance("Ann")["frozen"] == 30  # not moved
    # Ann's own credits are not spent in shared mode: her message finds no pool to pay it.
    with pytest.raises(InsufficientCredits):
        world.send("Ann", "Paid by a pool only")
    # A master (or her office manager) moves them into a pool, where they pay.
    box = _box(world, "Mia")
    assert box[("user", "Ann")].actions == ["transfer_from", "logs"]
    _move(world, "Mia", "Ann", "North", 30)
    world.send("Ann", "Now paid by North")
    assert _box(world, "master")[("office", "North")].available == 29
