"""Sending (seed 003 notes): credits must be allocated to a user before use; a user always consumes their
own credits, whoever the message is for; one credit per segment through a hold captured on acceptance and
released on failure; frozen credits cannot be used."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from creditdesk.credits.errors import CreditsFrozen, InsufficientCredits
from creditdesk.credits.models import Hold
from creditdesk.errors import InvalidInput, NotFound, NotPermitted
from creditdesk.sms import service as sms
from creditdesk.sms.models import SmsMessage
from tests.api.credits_world import assert_ledger_clean
from tests.api.helpers import audit_rows
from tests.sms.conftest import ExplodingSender, RefusingSender


def messages(world) -> list[SmsMessage]:
    with world.db.read() as session:
        rows = list(session.scalars(select(SmsMessage).where(SmsMessage.workspace_id == world.ws)
                                    .order_by(SmsMessage.id)))
        session.expunge_all()
        return rows


def hold_of(world, message) -> Hold:
    with world.db.read() as session:
        hold = session.get(Hold, message.hold_id)
        session.expunge(hold)
        return hold


def test_a_message_consumes_one_credit_of_the_sender_and_lands_in_the_outbox(world):
    world.buy("Ann", "user", "Ann", 10)
    msg = world.send("Ann", "Your appointment is at 10:00 tomorrow.", to="+61 400 123 456")
    assert (msg.status, msg.segments, msg.encoding, msg.credits_charged) == ("accepted", 1, "gsm7", 1)
    assert (msg.recipient, msg.backend, msg.sender_user_id) == ("+61400123456", "outbox", world.ids["Ann"])
    assert world.balance("Ann") == {"available": 9, "held": 0, "frozen": 0}
    hold = hold_of(world, msg)
    assert (hold.status, hold.captured_amount, hold.reference_kind, hold.reference_id) == (
        "captured", 1, "sms_message", msg.id)
    assert [m.id for m in messages(world)] == [msg.id]
    # Decided and committed first, handed to the sender after the commit, its outcome recorded apart.
    assert [r.action for r in audit_rows(world.db, world.ws, object_id=msg.id)] == [
        "sms_message.create", "sms_message.send"]
    assert_ledger_clean(world.db, world.ws)


def test_the_sender_always_pays_whoever_the_message_is_for(world):
    world.buy("master", "user", "Ann", 10)
    world.buy("master", "user", "Ben", 10)
    msg = world.send("Ann", "Sent for Ben", on_behalf_of="Ben")
    assert (msg.sender_user_id, msg.on_behalf_of_user_id) == (world.ids["Ann"], world.ids["Ben"])
    assert world.balance("Ann")["available"] == 9
    assert world.balance("Ben")["available"] == 10  # Ben's credits are never touched


def test_the_sender_pays_even_when_the_other_user_has_credits_and_the_sender_none(world):
    world.buy("master", "user", "Ben", 10)
    with pytest.raises(InsufficientCredits):
        world.send("Ann", "Sent for Ben", on_behalf_of="Ben")
    assert world.balance("Ben")["available"] == 10


def test_credits_must_be_allocated_to_the_user_pool_credits_are_not_spent(world):
    world.buy("master", "workspace", None, 1000)  # unallocated credits pay for nobody's messages
    with pytest.raises(InsufficientCredits):
        world.send("master", "From the master")
    assert world.balance("pool")["available"] == 1000


def test_no_credits_no_send_and_a_clear_error(world):
    with pytest.raises(InsufficientCredits) as exc:
        world.send("Ann", "Hello")
    assert exc.value.code == "insufficient_credits" and exc.value.http_status == 409
    assert "needs 1" in exc.value.message and "nothing was sent" in exc.value.message
    world.buy("Ann", "user", "Ann", 1)
    with pytest.raises(InsufficientCredits) as exc:
        world.send("Ann", "x" * 161)  # two segments, one credit
    assert exc.value.details == {"available": 1, "requested": 2}
    assert messages(world) == [] and world.balance("Ann")["available"] == 1


@pytest.mark.parametrize(("body", "segments", "encoding"), [
    ("a" * 160, 1, "gsm7"), ("a" * 161, 2, "gsm7"), ("a" * 306, 2, "gsm7"), ("a" * 307, 3, "gsm7"),
    ("€" * 80, 1, "gsm7"), ("€" * 81, 2, "gsm7"),
    ("ü" * 70 + "", 1, "gsm7"), ("ж" * 70, 1, "ucs2"), ("ж" * 71, 2, "ucs2"), ("Hi 😀", 1, "ucs2"),
])
def test_one_credit_per_segment(world, body, segments, encoding):
    world.buy("Ann", "user", "Ann", 10)
    msg = world.send("Ann", body)
    assert (msg.segments, msg.encoding, msg.credits_charged) == (segments, encoding, segments)
    assert world.balance("Ann")["available"] == 10 - segments


def test_too_long_messages_are_refused(world):
    world.buy("Ann", "user", "Ann", 100)
    with pytest.raises(InvalidInput) as exc:
        world.send("Ann", "a" * (153 * sms.MAX_SEGMENTS + 1))
    assert exc.value.code == "message_too_long"
    assert world.balance("Ann")["available"] == 100


@pytest.mark.parametrize("backend", [RefusingSender(), ExplodingSender()])
def test_a_failed_send_releases_the_hold_and_charges_nothing(world, backend):
    world.buy("Ann", "user", "Ann", 5)
    msg = world.send("Ann", "a" * 200, sender=backend)
    assert (msg.status, msg.credits_charged, msg.backend) == ("failed", 0, backend.name)
    assert msg.failure_reason
    assert hold_of(world, msg).status == "released"
    assert world.balance("Ann") == {"available": 5, "held": 0, "frozen": 0}
    assert [r.action for r in audit_rows(world.db, world.ws, object_id=msg.id)] == [
        "sms_message.create", "sms_message.fail"]
    assert_ledger_clean(world.db, world.ws)


def test_a_user_without_send_sms_cannot_send(world):
    with pytest.raises(NotPermitted) as exc:
        world.send("Dan", "Hello")
    assert exc.value.code == "not_permitted"


def test_frozen_credits_cannot_be_used_until_transferred(world):
    world.buy("Ann", "user", "Ann", 10)
    stale = world.actor("Ann")  # authenticated before the permission was removed
    world.set_permissions("Ann", [])
    with pytest.raises(NotPermitted):
        world.send("Ann", "Hello")
    with pytest.raises(CreditsFrozen) as exc:
        world.send("Ann", "Hello", actor=stale)
    assert exc.value.code == "credits_frozen"
    assert world.balance("Ann") == {"available": 0, "held": 0, "frozen": 10}
    world.set_permissions("Ann", ["send_sms"])  # given back: the credits thaw
    assert world.send("Ann", "Hello").status == "accepted"
    assert world.balance("Ann")["available"] == 9


def test_master_users_hold_send_sms_implicitly(world):
    world.buy("master", "user", "master", 3)
    assert world.balance("master")["frozen"] == 0
    assert world.send("master", "From the top").status == "accepted"
    assert world.balance("master")["available"] == 2


def test_members_need_no_consume_or_pack_permission_to_send(world):
    # Ann holds send_sms only: the SMS rules, not the generic credits permissions, decide.
    assert world.actor("Ann").permissions == frozenset({"send_sms"})
    world.buy("Ann", "user", "Ann", 2)
    assert world.send("Ann", "Hi").status == "accepted"


def test_on_behalf_of_an_unknown_user_is_not_found(world):
    world.buy("Ann", "user", "Ann", 2)
    from creditdesk.sms import schemas as s

    data = s.MessageCreate(to="+61400000000", body="Hi", on_behalf_of_user_id="usr_nosuch")
    with pytest.raises(NotFound):
        world.write(lambda session: sms.send_message(session, data, actor=world.actor("Ann")))


def test_outbox_visibility(world):
    for name in ("Ann", "Ben", "Cat"):
        world.buy("master", "user", name, 5)
    ann = world.send("Ann", "from Ann")
    ben = world.send("Ben", "from Ben for Ann", on_behalf_of="Ann")
    cat = world.send("Cat", "from Cat")

    def seen(who):
        with world.db.read() as session:
            return {m.id for m in sms.list_messages(session, actor=world.actor(who)).items}
    assert seen("master") == {ann.id, ben.id, cat.id}
    assert seen("Mia") == {ann.id, ben.id}  # her offices' users
    assert seen("Ann") == {ann.id, ben.id}  # her own, and those sent for her
    assert seen("Cat") == {cat.id}
    with world.db.read() as session, pytest.raises(NotFound):
        sms.get_message(session, cat.id, actor=world.actor("Ann"))
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(SmsMessage)
                              .where(SmsMessage.workspace_id == world.ws)) == 3
