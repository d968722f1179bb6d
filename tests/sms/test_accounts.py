"""The Manage SMS credits box (seed 003 steps 1-3): exactly who sees what, balances and frozen credits,
and the actions offered on each row; the SMS settings (master only, audited)."""

from __future__ import annotations

import pytest

from creditdesk.errors import Conflict, InvalidInput, NotFound, NotPermitted
from creditdesk.sms import schemas as s
from creditdesk.sms import service as sms
from tests.api.helpers import audit_rows

STAFF_WITH_SEND_SMS = {"master", "Mia", "Max", "Ann", "Ben", "Eve", "Cat"}


def test_master_sees_the_pool_and_every_staff_member_with_send_sms(world):
    rows = world.accounts("master")
    assert set(rows) == {"pool"} | STAFF_WITH_SEND_SMS  # not Dan (no send_sms) nor Ian (deactivated)
    assert list(rows)[0] == "pool" and list(rows)[1] == "master"  # the pool first, then oneself
    pool = rows["pool"]
    assert (pool.kind, pool.id, pool.name) == ("workspace", world.ws, "System credits (unallocated)")
    assert pool.actions == ["purchase", "transfer_to", "transfer_from", "logs"]
    assert rows["Cat"].actions == ["purchase", "transfer_to", "transfer_from", "logs"]


def test_office_manager_sees_the_staff_of_their_offices_but_not_the_pool(world):
    rows = world.accounts("Mia")
    assert set(rows) == {"Mia", "Max", "Ann", "Ben", "Eve"}  # North and East; not Cat (South), no pool
    assert rows["Eve"].actions == ["purchase", "transfer_to", "transfer_from", "logs"]
    assert rows["Mia"].is_self


def test_member_sees_self_and_team_members_with_send_sms(world):
    rows = world.accounts("Ann")
    assert set(rows) == {"Ann", "Ben"}  # Dan is in the team but cannot send SMS
    assert rows["Ann"].is_self and rows["Ann"].actions == ["purchase", "transfer_from", "logs"]
    # Credits go to a team member (purchase, or transfer of one's own); never taken from them.
    assert rows["Ben"].actions == ["purchase", "transfer_to", "logs"]


def test_a_member_without_send_sms_sees_self_and_may_still_give_to_the_team(world):
    rows = world.accounts("Dan")
    assert set(rows) == {"Dan", "Ann", "Ben"}
    # Dan cannot receive credits, but may buy for his team or give away (frozen) credits of his own.
    assert rows["Dan"].can_send_sms is False and rows["Dan"].actions == ["transfer_from", "logs"]
    assert rows["Ann"].actions == ["purchase", "transfer_to", "logs"]


def test_manager_without_manage_office_credits_sees_like_a_member(world):
    assert set(world.accounts("Max")) == {"Max"}  # no team


def test_balances_held_and_frozen_per_row(world):
    world.buy("master", "workspace", None, 300)
    world.buy("master", "user", "Ann", 40)
    world.buy("master", "user", "Ben", 25)
    world.send("Ann", "x" * 200)  # 2 segments
    world.set_permissions("Ben", [])  # Ben's 25 are frozen now
    rows = world.accounts("master")
    assert (rows["pool"].available, rows["pool"].frozen) == (300, 0)
    assert (rows["Ann"].available, rows["Ann"].held, rows["Ann"].frozen) == (38, 0, 0)
    ben = rows["Ben"]
    # Still listed (he holds credits) so they can be transferred away; nothing else may be done with them.
    assert (ben.available, ben.frozen, ben.can_send_sms) == (0, 25, False)
    assert ben.actions == ["transfer_from", "logs"]
    mia = world.accounts("Mia")
    assert mia["Ben"].frozen == 25 and mia["Ben"].actions == ["transfer_from", "logs"]
    # A member does not see (and so cannot take from) a team member whose credits froze.
    assert "Ben" not in world.accounts("Ann")


def test_deactivated_users_with_credits_are_listed_as_frozen_for_their_managers(world):
    world.buy("master", "user", "Eve", 12)
    world.deactivate("Eve")
    for who in ("master", "Mia"):
        eve = world.accounts(who)["Eve"]
        assert (eve.is_active, eve.frozen, eve.available) == (False, 12, 0)


def test_get_account(world):
    world.buy("master", "user", "Ben", 7)
    with world.db.read() as session:
        ben = sms.get_account(session, actor=world.actor("Ann"), kind="user", account_id=world.ids["Ben"])
        assert ben.available == 7
        with pytest.raises(NotFound):
            sms.get_account(session, actor=world.actor("Ann"), kind="user", account_id=world.ids["Cat"])


# --- settings ------------------------------------------------------------------------------------------

def test_settings_defaults(world):
    with world.db.read() as session:
        out = sms.get_settings(session, actor=world.actor("Ann"))
    assert (out.credit_mode, out.unit_price, out.currency, out.tax_rate_bp, out.tax_label) == (
        "individual", 10, "AUD", 1000, "GST")
    assert out.seller["name"] == "Test workspace" and "manual_invoice" in out.payment_methods
    assert out.transfer_conditions == sms.TRANSFER_CONDITIONS


@pytest.mark.parametrize("who", ["Mia", "Ann"])
def test_only_masters_change_the_sms_credit_mode(world, who):
    with pytest.raises(NotPermitted):
        world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(credit_mode="shared"),
                                                        actor=world.actor(who)))


def test_changing_the_sms_credit_mode_is_confirmed_and_audited(world):
    # Without the confirmation: refused, saying what the change leaves where it is; nothing changes.
    with pytest.raises(Conflict) as exc:
        world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(credit_mode="shared"),
                                                        actor=world.actor("master")))
    assert exc.value.code == "mode_change_unconfirmed" and "Nothing is moved" in exc.value.message
    assert audit_rows(world.db, world.ws, action="workspace.sms_credit_mode") == []
    out = world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(
        credit_mode="shared", confirm_mode_change=True), actor=world.actor("master")))
    assert out.credit_mode == "shared"
    (row,) = audit_rows(world.db, world.ws, action="workspace.sms_credit_mode")
    assert (row.before, row.after, row.actor_id) == (
        {"sms_credit_mode": "individual"}, {"sms_credit_mode": "shared", "holders": 0, "credits": 0},
        world.master_id)
    from tests.api.helpers import workspace_row

    assert workspace_row(world.db, world.ws).settings["sms_credit_mode"] == "shared"


def test_seller_details_and_nulls(world):
    out = world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate.model_validate(
        {"seller": {"name": "Example Pty Ltd", "address": "2 George St", "tax_id": "ABN 98 765 432 109",
                    "email": "billing@example.com"}}), actor=world.actor("master")))
    assert out.seller == {"name": "Example Pty Ltd", "address": "2 George St", "tax_id": "ABN 98 765 432 109",
                          "email": "billing@example.com"}
    assert world.buy("Ann", "user", "Ann", 1).seller["name"] == "Example Pty Ltd"
    with pytest.raises(InvalidInput):
        world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(unit_price=None),
                                                        actor=world.actor("master")))


def test_frozen_has_one_definition_in_the_sms_box_and_the_credits_views(world):
    """Frozen SMS credits are the same users' whichever view asks: the credits layer (balances, packs,
    the burn) and the SMS box used to disagree on a contact (not staff) holding send_sms."""
    from sqlalchemy import select

    from creditdesk.credits import burn
    from creditdesk.parties.models import User
    from tests.parties.factories import make_user

    master = world.actor("master")
    contact = make_user(world.db, actor=master, name="Contact", is_staff=False, permissions=["send_sms"],
                        primary_office_id=world.offices["North"])
    world.write(lambda session: sms.sms_credit_type(session, world.ws).id)
    with world.db.read() as session:
        ct = sms.find_sms_credit_type(session, world.ws)
        users = list(session.scalars(select(User).where(User.workspace_id == world.ws)))
        frozen = burn.frozen_user_ids(session, world.ws, ct, {u.id for u in users})
        assert {u.id for u in users if not sms.may_send_sms(u)} == frozen
        assert {contact, world.ids["Dan"], world.ids["Ian"]} <= frozen
        assert world.ids["Ann"] not in frozen and world.ids["master"] not in frozen
