"""Who may change whom (issue 10, F7), one's own login needs the current password (F7, F19), and which
changes end a user's back-office sessions (F6). The API and the back office call these same rules."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from creditdesk.errors import InvalidInput, NotPermitted
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import User
from creditdesk.parties.passwords import verify_password

from tests.api.helpers import audit_rows, counts
from tests.parties.factories import actor_of, make_office, make_user, master_actor

PASSWORD = "correct horse battery"


@pytest.fixture
def staff(db, workspace):
    """The probe's workspace B: a manager holding only manage_users, a manager holding more, members."""
    master = master_actor(db, workspace.id)
    office = make_office(db, actor=master, name="HQ")

    def user(name, role, permissions):
        return make_user(db, actor=master, name=name, role=role, permissions=permissions, password=PASSWORD,
                         primary_office_id=office)

    ids = {
        "user_manager": user("Users Only", "manager", ["manage_users"]),
        "big_manager": user("Big Manager", "manager", ["manage_packs", "consume_credits", "send_sms"]),
        "peer_manager": user("Peer Manager", "manager", []),
        "plain_member": user("Plain Member", "member", []),
        "sms_member": user("Sms Member", "member", ["send_sms"]),
        "other_master": user("Other Master", "master", []),
    }
    return {"master": master, "office": office, "ids": ids, "actors": {k: actor_of(db, v) for k, v in ids.items()}}


def row(db, user_id) -> User:
    with db.read() as session:
        user = session.get(User, user_id)
        session.expunge(user)
        return user


def update(db, user_id, actor, **changes):
    return db.write(lambda s: parties.update_user(s, user_id, ps.UserUpdate(**changes), actor=actor))


TAKEOVERS = [
    {"password": "taken-over-123"},
    {"email": "attacker-controlled@evil.example"},
    {"is_active": False},
    {"name": "Renamed"},
    {"additional_office_ids": []},
    {"permissions": []},
    {"role": "member"},
]


@pytest.mark.parametrize("target", ["big_manager", "peer_manager", "sms_member", "other_master"])
@pytest.mark.parametrize("change", TAKEOVERS, ids=lambda c: next(iter(c)))
def test_a_manage_users_manager_cannot_change_anyone_holding_more_or_a_peer(db, workspace, staff, target, change):
    """F7: B_manager (manage_users only) reset B_manager2's password and email and logged in as them."""
    actor = staff["actors"]["user_manager"]
    before_row = row(db, staff["ids"][target])
    before = counts(db, workspace.id)
    with pytest.raises(NotPermitted):
        update(db, staff["ids"][target], actor, **change)
    after_row = row(db, staff["ids"][target])
    assert (after_row.password_hash, after_row.email, after_row.is_active, after_row.name, after_row.role,
            after_row.session_version) == (before_row.password_hash, before_row.email, before_row.is_active,
                                           before_row.name, before_row.role, before_row.session_version)
    assert counts(db, workspace.id) == before


def test_a_manage_users_manager_still_manages_members_holding_nothing_more(db, staff):
    actor = staff["actors"]["user_manager"]
    target = staff["ids"]["plain_member"]
    user = update(db, target, actor, password="reset by manager", email="Plain.New@Example.com",
                  permissions=["manage_users"])
    assert verify_password(user.password_hash, "reset by manager")
    assert (user.email, user.permissions) == ("plain.new@example.com", ["manage_users"])
    assert update(db, target, actor, is_active=False).is_active is False


def test_a_manager_holding_what_a_member_holds_may_change_them(db, staff):
    master = staff["master"]
    manager = actor_of(db, make_user(db, actor=master, name="Sms Manager", role="manager",
                                     permissions=["manage_users", "send_sms"], primary_office_id=staff["office"]))
    user = update(db, staff["ids"]["sms_member"], manager, password="reset by sms manager")
    assert verify_password(user.password_hash, "reset by sms manager")


@pytest.mark.parametrize("target", ["big_manager", "peer_manager", "other_master", "sms_member"])
def test_masters_change_anyone(db, staff, target):
    user = update(db, staff["ids"][target], staff["master"], password="set by the master", name="By Master")
    assert verify_password(user.password_hash, "set by the master") and user.name == "By Master"


# --- one's own login -----------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["plain_member", "user_manager", "other_master"])
@pytest.mark.parametrize("change", [{"password": "my new password"}, {"email": "me.elsewhere@example.com"}],
                         ids=["password", "email"])
def test_own_password_or_email_needs_the_current_password(db, staff, who, change):
    actor = staff["actors"][who]
    before = row(db, actor.user_id)
    with pytest.raises(InvalidInput) as info:
        update(db, actor.user_id, actor, **change)
    assert info.value.code == "current_password_required"
    with pytest.raises(NotPermitted) as info:
        update(db, actor.user_id, actor, current_password="not my password", **change)
    assert info.value.code == "current_password_wrong"
    after = row(db, actor.user_id)
    assert (after.password_hash, after.email, after.session_version) == (
        before.password_hash, before.email, before.session_version)

    user = update(db, actor.user_id, actor, current_password=PASSWORD, **change)
    if "password" in change:
        assert verify_password(user.password_hash, "my new password")
    else:
        assert user.email == "me.elsewhere@example.com"


def test_an_api_key_of_a_user_without_password_cannot_give_itself_a_login(db, staff):
    """F19: an API key of a password-less (integration) user set a login password with PATCH /v1/users/{self}."""
    master = staff["master"]
    integration = replace(actor_of(db, make_user(db, actor=master, name="Integration", role="master")),
                          kind="api_key")
    for change in ({"password": "now i can log in"}, {"email": "integration@evil.example"}):
        with pytest.raises(NotPermitted) as info:
            update(db, integration.user_id, integration, current_password="", **change)
        assert info.value.code == "no_current_password"
    assert row(db, integration.user_id).password_hash is None


def test_own_name_and_an_unchanged_email_need_nothing(db, staff):
    actor = staff["actors"]["plain_member"]
    me = row(db, actor.user_id)
    user = update(db, actor.user_id, actor, name="New Name", email=me.email.upper())
    assert user.name == "New Name" and user.email == me.email


# --- which changes end sessions -------------------------------------------------------------------------

@pytest.mark.parametrize("change,ends", [
    ({"password": "another password"}, True),
    ({"email": "moved@example.com"}, True),
    ({"role": "manager"}, True),
    ({"permissions": ["send_sms"]}, True),
    ({"is_active": False}, True),
    ({"name": "Just A Name"}, False),
    ({"additional_office_ids": []}, False),
    ({"permissions": []}, False),  # the same permissions again
])
def test_session_version_moves_on_with_every_change_of_access(db, staff, change, ends):
    target = staff["ids"]["plain_member"]
    before = row(db, target).session_version
    update(db, target, staff["master"], **change)
    assert row(db, target).session_version == before + (1 if ends else 0)


def test_end_sessions_moves_the_version_on_and_is_logged(db, workspace, staff):
    actor = staff["actors"]["plain_member"]
    before = row(db, actor.user_id).session_version
    db.write(lambda s: parties.end_sessions(s, actor=actor))
    assert row(db, actor.user_id).session_version == before + 1
    assert [e.actor_id for e in audit_rows(db, workspace.id, action="user.logout")] == [actor.user_id]


def test_store_rehashed_password_only_replaces_the_hash_it_was_given(db, staff):
    from creditdesk.parties.passwords import hash_password

    target = staff["ids"]["plain_member"]
    old = row(db, target).password_hash
    assert not db.write(lambda s: parties.store_rehashed_password(s, target, old_hash="stale",
                                                                  new_hash=hash_password(PASSWORD)))
    assert row(db, target).password_hash == old
    new = hash_password(PASSWORD)
    assert db.write(lambda s: parties.store_rehashed_password(s, target, old_hash=old, new_hash=new))
    user = row(db, target)
    assert user.password_hash == new and verify_password(user.password_hash, PASSWORD)


def test_no_manager_can_reach_a_master_through_any_field(db, staff):
    actor = staff["actors"]["user_manager"]
    with db.read() as session:
        masters = session.scalars(select(User.id).where(User.workspace_id == actor.workspace_id,
                                                        User.role == "master")).all()
    for master_id in masters:
        for change in TAKEOVERS:
            with pytest.raises(NotPermitted):
                update(db, master_id, actor, **change)


def test_nobody_but_a_master_widens_their_own_reach(db):
    """A manager with manage_users (and manage_office_credits) adding an office to herself would reach the SMS
    credits of its users: refused, and nothing changes; sending her offices unchanged is fine."""
    from creditdesk.errors import NotPermitted
    from creditdesk.parties import schemas
    from creditdesk.parties import service as parties
    from creditdesk.parties.models import User
    from tests.conftest import make_workspace

    ws = make_workspace(db)

    def setup(session):
        master = parties.actor_for_user(session, session.get(User, ws.master_id))
        o1 = parties.create_office(session, schemas.OfficeCreate(name="One"), actor=master)
        o2 = parties.create_office(session, schemas.OfficeCreate(name="Two"), actor=master)
        mgr = parties.create_user(session, schemas.UserCreate(
            name="Mgr", email=f"mgr-{o1.id}@example.com", role="manager", is_staff=True,
            permissions=["manage_users", "manage_office_credits"], primary_office_id=o1.id), actor=master)
        return o1.id, o2.id, mgr.id
    o1, o2, mgr_id = db.write(setup)

    def widen(session):
        me = parties.actor_for_user(session, session.get(User, mgr_id))
        parties.update_user(session, mgr_id, schemas.UserUpdate(additional_office_ids=[o2]), actor=me)
    with pytest.raises(NotPermitted) as refused:
        db.write(widen)
    assert refused.value.code == "cannot_change_own_reach"
    with db.read() as session:
        assert parties.additional_office_ids(session, mgr_id) == []

    def unchanged(session):
        me = parties.actor_for_user(session, session.get(User, mgr_id))
        return parties.update_user(session, mgr_id, schemas.UserUpdate(
            name="Mgr renamed", primary_office_id=o1, permissions=["manage_users", "manage_office_credits"]),
            actor=me).name
    assert db.write(unchanged) == "Mgr renamed"


# --- a manager manages users of their own offices only (issue 17) ----------------------------------------

def test_a_user_manager_changes_only_users_of_their_offices_and_places_them_only_there(db, staff):
    master = staff["master"]
    elsewhere = make_office(db, actor=master, name="Elsewhere")
    outsider = make_user(db, actor=master, name="Out Sider", role="member", primary_office_id=elsewhere)
    manager = staff["actors"]["user_manager"]  # HQ only
    workspace_id = master.workspace_id
    before = counts(db, workspace_id)
    with pytest.raises(NotPermitted, match="not in any of your offices") as refused:
        update(db, outsider, manager, name="Renamed from HQ")
    assert refused.value.code == "user_outside_your_offices"
    with pytest.raises(NotPermitted, match="your own offices, not Elsewhere"):
        update(db, staff["ids"]["plain_member"], manager, additional_office_ids=[elsewhere])
    with pytest.raises(NotPermitted, match="your own offices, not Elsewhere"):
        db.write(lambda s: parties.create_user(s, ps.UserCreate(name="New", primary_office_id=elsewhere),
                                               actor=manager))
    assert counts(db, workspace_id) == before
    # Within HQ, and users placed nowhere yet, stay theirs to manage.
    assert update(db, staff["ids"]["plain_member"], manager, name="Plain Renamed").name == "Plain Renamed"
    unplaced = db.write(lambda s: parties.create_user(s, ps.UserCreate(name="Unplaced"), actor=manager)).id
    placed = update(db, unplaced, manager, primary_office_id=staff["office"])
    assert placed.primary_office_id == staff["office"]
    # A master reaches every office.
    assert update(db, outsider, master, additional_office_ids=[staff["office"]]).name == "Out Sider"
