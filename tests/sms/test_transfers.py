"""Transfers (seed 003 "Transfer Individual User SMS Credits"): who may transfer what where, only to
active users with send_sms, conditions agreed, frozen credits transferable out."""

from __future__ import annotations

import pytest

from creditdesk.credits.errors import InsufficientCredits
from creditdesk.errors import InvalidInput, NotFound, NotPermitted
from creditdesk.sms import schemas as s
from creditdesk.sms import service as sms
from tests.api.helpers import audit_rows


@pytest.fixture
def funded(world):
    """The pool holds 500; every user with send_sms 100."""
    world.buy("master", "workspace", None, 500)
    for name in ("Mia", "Max", "Ann", "Ben", "Eve", "Cat"):
        world.buy("master", "user", name, 100)
    return world


def available(world, *names) -> list[int]:
    return [world.balance(n)["available"] for n in names]


# --- master -------------------------------------------------------------------------------------------

def test_master_moves_credits_between_the_pool_and_any_user(funded):
    w = funded
    w.move("master", "pool", "Cat", 40)
    assert available(w, "pool", "Cat") == [460, 140]
    w.move("master", "Cat", "pool", 15)
    assert available(w, "pool", "Cat") == [475, 125]
    w.move("master", "Cat", "Eve", 25)  # and between users
    assert available(w, "Cat", "Eve") == [100, 125]


# --- office managers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "to"), [("Ben", "Eve"), ("Eve", "Ann"), ("Mia", "Ben"), ("Ann", "Mia")])
def test_office_manager_moves_credits_between_any_users_of_their_offices(funded, source, to):
    funded.move("Mia", source, to, 30)
    assert available(funded, source, to) == [70, 130]


@pytest.mark.parametrize(("source", "to"), [("Ben", "Cat"), ("Cat", "Ben"), ("Mia", "Cat")])
def test_office_manager_cannot_move_credits_beyond_their_offices(funded, source, to):
    with pytest.raises(NotPermitted):
        funded.move("Mia", source, to, 30)
    assert available(funded, source, to) == [100, 100]


@pytest.mark.parametrize(("source", "to"), [("pool", "Ben"), ("Ben", "pool")])
def test_office_manager_cannot_touch_the_pool(funded, source, to):
    with pytest.raises(NotPermitted) as exc:
        funded.move("Mia", source, to, 30)
    assert exc.value.code == "pool_master_only"
    assert available(funded, "pool", "Ben") == [500, 100]


# --- members --------------------------------------------------------------------------------------------

def test_member_transfers_own_credits_to_a_team_member(funded):
    funded.move("Ann", "Ann", "Ben", 35)
    assert available(funded, "Ann", "Ben") == [65, 135]


def test_member_never_transfers_from_a_team_member(funded):
    with pytest.raises(NotPermitted) as exc:
        funded.move("Ann", "Ben", "Ann", 10)
    assert "never from a team member" in exc.value.message
    assert available(funded, "Ann", "Ben") == [100, 100]


@pytest.mark.parametrize("to", ["Cat", "Eve", "Mia", "pool"])
def test_member_transfers_only_to_team_members(funded, to):
    with pytest.raises(NotPermitted):
        funded.move("Ann", "Ann", to, 10)
    assert available(funded, "Ann") == [100]


def test_member_cannot_transfer_between_other_users_even_in_their_team(funded):
    with pytest.raises(NotPermitted):
        funded.move("Ben", "Ann", "Ben", 10)


def test_manager_without_manage_office_credits_has_no_office_reach(funded):
    with pytest.raises(NotPermitted):
        funded.move("Max", "Ann", "Ben", 10)
    with pytest.raises(NotPermitted):
        funded.move("Max", "Max", "Ann", 10)  # Max has no team


# --- only to active users with send_sms ------------------------------------------------------------------

@pytest.mark.parametrize(("who", "source"), [("master", "pool"), ("Mia", "Ben"), ("Ann", "Ann")])
def test_transfers_only_to_users_with_send_sms(funded, who, source):
    with pytest.raises(InvalidInput) as exc:
        funded.move(who, source, "Dan", 10)  # Dan: Ann's team, Mia's office, no send_sms
    assert exc.value.code == "recipient_cannot_send_sms"
    assert funded.balance("Dan") == {"available": 0, "held": 0, "frozen": 0}


@pytest.mark.parametrize(("who", "source"), [("master", "pool"), ("Mia", "Ben")])
def test_transfers_only_to_active_users(funded, who, source):
    with pytest.raises(InvalidInput) as exc:
        funded.move(who, source, "Ian", 10)
    assert exc.value.code == "recipient_cannot_send_sms"


# --- conditions, amounts, audit --------------------------------------------------------------------------

def test_the_conditions_must_be_agreed_to(funded):
    with pytest.raises(InvalidInput) as exc:
        funded.move("Ann", "Ann", "Ben", 10, agree=False)
    assert exc.value.code == "conditions_not_agreed"
    assert exc.value.details["conditions"] == sms.TRANSFER_CONDITIONS
    assert available(funded, "Ann", "Ben") == [100, 100]


def test_cannot_transfer_more_than_available(funded):
    with pytest.raises(InsufficientCredits):
        funded.move("Ann", "Ann", "Ben", 101)
    assert available(funded, "Ann", "Ben") == [100, 100]


def test_unknown_user_is_not_found(funded):
    body = s.SmsTransferCreate.model_validate({"from": {"kind": "user", "id": funded.ids["Ann"]},
                                               "to": {"kind": "user", "id": "usr_nosuchuser"}, "quantity": 1,
                                               "agree_to_conditions": True})
    with pytest.raises(NotFound):
        funded.write(lambda session: sms.transfer(session, body, actor=funded.actor("Ann")))


def test_transfers_are_audited_with_the_agreement(funded):
    result = funded.move("Ann", "Ann", "Ben", 10, memo="For the Friday reminders")
    xfer = result.transfer
    (row,) = audit_rows(funded.db, funded.ws, action="sms_transfer.create", object_id=xfer.id)
    assert row.actor_id == funded.ids["Ann"]
    assert row.after["agreed_to_conditions"] == sms.TRANSFER_CONDITIONS
    assert row.after["quantity"] == 10 and row.after["memo"] == "For the Friday reminders"
    assert audit_rows(funded.db, funded.ws, action="credit_transfer.create", object_id=xfer.id)


def test_shared_mode_moves_credits_to_office_pools_not_users(funded):
    funded.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(
        credit_mode="shared", confirm_mode_change=True), actor=funded.actor("master")))
    with pytest.raises(InvalidInput) as exc:
        funded.move("master", "pool", "Ann", 10)
    assert exc.value.code == "invalid_sms_account"


# --- frozen credits ---------------------------------------------------------------------------------------

def test_frozen_credits_can_be_transferred_out_and_are_usable_again(funded):
    w = funded
    w.set_permissions("Ben", [])  # send_sms removed: Ben's 100 credits are frozen
    assert w.balance("Ben") == {"available": 0, "held": 0, "frozen": 100}
    w.move("Mia", "Ben", "Ann", 60)  # his office manager moves them away
    w.move("master", "Ben", "pool", 40)
    assert w.balance("Ben") == {"available": 0, "held": 0, "frozen": 0}
    assert available(w, "Ann", "pool") == [160, 540]
    msg = w.send("Ann", "Hello")  # and they are usable by Ann at once
    assert msg.status == "accepted" and available(w, "Ann") == [159]


def test_a_deactivated_users_credits_are_frozen_and_transferable_out(funded):
    w = funded
    w.deactivate("Cat")
    assert w.balance("Cat") == {"available": 0, "held": 0, "frozen": 100}
    w.move("master", "Cat", "pool", 100)
    assert available(w, "pool") == [600]


def test_frozen_credits_cannot_be_sent_to_a_frozen_user(funded):
    funded.set_permissions("Ben", [])
    with pytest.raises(InvalidInput):
        funded.move("master", "pool", "Ben", 10)
