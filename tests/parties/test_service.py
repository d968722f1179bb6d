"""Permission rules of the parties service (the API, back office and CLI all call these)."""

from __future__ import annotations

import pytest

from creditdesk.audit import Actor
from creditdesk.errors import InvalidInput, NotFound, NotPermitted, Unauthenticated
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import ApiKey, User
from creditdesk.parties.passwords import verify_password

from tests.api.helpers import counts
from tests.parties.factories import actor_of, make_api_key, make_customer, make_office, make_user, master_actor


@pytest.fixture
def people(db, workspace):
    master = master_actor(db, workspace.id)
    office = make_office(db, actor=master, name="HQ")
    ids = {
        "member": make_user(db, actor=master, name="Member", role="member", permissions=["send_sms"],
                            primary_office_id=office),
        "manager": make_user(db, actor=master, name="Plain Manager", role="manager",
                             permissions=["send_sms"], primary_office_id=office),
        "user_manager": make_user(db, actor=master, name="User Manager", role="manager",
                                  permissions=["manage_users", "send_sms"], primary_office_id=office),
        "other_master": make_user(db, actor=master, name="Other Master", role="master"),
    }
    actors = {name: actor_of(db, uid) for name, uid in ids.items()}
    return {"master": master, "office": office, "ids": ids, "actors": actors}


def write(db, fn):
    return db.write(fn)


def new_user(**kwargs) -> ps.UserCreate:
    import os

    defaults = {"name": "New", "email": f"new-{os.urandom(3).hex()}@example.com", "is_staff": True}
    return ps.UserCreate(**{**defaults, **kwargs})


# --- customers, offices, teams ---------------------------------------------------------------

def test_member_cannot_create_or_change_customers_offices_or_teams(db, workspace, people):
    member = people["actors"]["member"]
    customer = make_customer(db, actor=people["master"])
    before = counts(db, workspace.id)
    for fn in (
        lambda s: parties.create_customer(s, ps.CustomerCreate(name="X"), actor=member),
        lambda s: parties.update_customer(s, customer, ps.CustomerUpdate(name="X"), actor=member),
        lambda s: parties.create_office(s, ps.OfficeCreate(name="X"), actor=member),
        lambda s: parties.update_office(s, people["office"], ps.OfficeUpdate(name="X"), actor=member),
        lambda s: parties.create_team(s, ps.TeamCreate(name="X"), actor=member),
    ):
        with pytest.raises(NotPermitted):
            write(db, fn)
    assert counts(db, workspace.id) == before


def test_managers_and_masters_create_customers(db, workspace, people):
    for who in ("manager", "other_master"):
        customer = write(db, lambda s: parties.create_customer(s, ps.CustomerCreate(name=f"By {who}"),
                                                               actor=people["actors"][who]))
        assert customer.workspace_id == workspace.id


# --- users -----------------------------------------------------------------------------------

def test_manager_without_manage_users_cannot_create_or_change_users(db, workspace, people):
    manager = people["actors"]["manager"]
    before = counts(db, workspace.id)
    with pytest.raises(NotPermitted):
        write(db, lambda s: parties.create_user(s, new_user(), actor=manager))
    with pytest.raises(NotPermitted):
        write(db, lambda s: parties.update_user(s, people["ids"]["member"], ps.UserUpdate(name="X"),
                                                actor=manager))
    assert counts(db, workspace.id) == before


def test_member_cannot_create_users(db, people):
    with pytest.raises(NotPermitted):
        write(db, lambda s: parties.create_user(s, new_user(), actor=people["actors"]["member"]))


def test_manager_with_manage_users_creates_members_and_managers(db, people):
    actor = people["actors"]["user_manager"]
    user = write(db, lambda s: parties.create_user(s, new_user(role="manager", permissions=["send_sms"]),
                                                   actor=actor))
    assert (user.role, user.permissions) == ("manager", ["send_sms"])
    member = write(db, lambda s: parties.create_user(s, new_user(), actor=actor))
    assert member.role == "member"


def test_manager_cannot_create_or_promote_masters(db, workspace, people):
    actor = people["actors"]["user_manager"]
    before = counts(db, workspace.id)
    with pytest.raises(NotPermitted):
        write(db, lambda s: parties.create_user(s, new_user(role="master"), actor=actor))
    with pytest.raises(NotPermitted):
        write(db, lambda s: parties.update_user(s, people["ids"]["member"], ps.UserUpdate(role="master"),
                                                actor=actor))
    assert counts(db, workspace.id) == before


def test_manager_cannot_change_or_deactivate_a_master(db, people):
    actor = people["actors"]["user_manager"]
    target = people["ids"]["other_master"]
    for update in (ps.UserUpdate(name="Renamed"), ps.UserUpdate(is_active=False), ps.UserUpdate(role="member")):
        with pytest.raises(NotPermitted):
            write(db, lambda s, u=update: parties.update_user(s, target, u, actor=actor))
    assert actor_of(db, target).role == "master"


def test_manager_cannot_grant_permissions_they_lack(db, workspace, people):
    actor = people["actors"]["user_manager"]  # holds manage_users and send_sms only
    before = counts(db, workspace.id)
    with pytest.raises(NotPermitted) as info:
        write(db, lambda s: parties.create_user(s, new_user(permissions=["send_sms", "manage_packs"]), actor=actor))
    assert "manage_packs" in info.value.message
    with pytest.raises(NotPermitted):
        write(db, lambda s: parties.update_user(s, people["ids"]["member"],
                                                ps.UserUpdate(permissions=["manage_office_credits"]), actor=actor))
    with pytest.raises(NotPermitted):  # nor to themselves
        write(db, lambda s: parties.update_user(s, people["ids"]["user_manager"],
                                                ps.UserUpdate(permissions=["manage_users", "manage_packs"]),
                                                actor=actor))
    assert counts(db, workspace.id) == before
    # What they hold, they may grant.
    user = write(db, lambda s: parties.update_user(s, people["ids"]["member"],
                                                   ps.UserUpdate(permissions=["send_sms", "manage_users"]),
                                                   actor=actor))
    assert user.permissions == ["manage_users", "send_sms"]


@pytest.mark.parametrize("who,new_role", [
    ("member", "manager"), ("member", "master"),
    ("manager", "member"), ("manager", "master"),
    ("user_manager", "member"), ("user_manager", "master"),
    ("other_master", "member"), ("other_master", "manager"),
])
def test_users_cannot_change_their_own_role(db, workspace, people, who, new_role):
    actor = people["actors"][who]
    before = counts(db, workspace.id)
    with pytest.raises(NotPermitted):
        write(db, lambda s: parties.update_user(s, actor.user_id, ps.UserUpdate(role=new_role), actor=actor))
    assert actor_of(db, actor.user_id).role == actor.role
    assert counts(db, workspace.id) == before


def test_a_master_changes_another_users_role(db, people):
    master = people["actors"]["other_master"]
    user = write(db, lambda s: parties.update_user(s, people["ids"]["member"], ps.UserUpdate(role="manager"),
                                                   actor=master))
    assert user.role == "manager"


def test_users_change_their_own_name_email_and_password(db, people):
    # Email and password need the current password (issue 10, F7/F19); the name does not.
    actor = actor_of(db, make_user(db, actor=people["master"], name="Self Service", password="the old password"))
    write(db, lambda s: parties.update_user(s, actor.user_id, ps.UserUpdate(name="Only Renamed"), actor=actor))
    user = write(db, lambda s: parties.update_user(
        s, actor.user_id, ps.UserUpdate(name="Me Renamed", email="Me.Renamed@Example.com",
                                        password="a new long password", current_password="the old password"),
        actor=actor))
    assert user.name == "Me Renamed"
    assert user.email == "me.renamed@example.com"
    with db.read() as session:
        assert verify_password(session.get(User, actor.user_id).password_hash, "a new long password")


def test_members_cannot_change_their_own_permissions_or_status(db, people):
    actor = people["actors"]["member"]
    for update in (ps.UserUpdate(permissions=["send_sms", "manage_users"]), ps.UserUpdate(is_active=False),
                   ps.UserUpdate(primary_office_id=None)):
        with pytest.raises(NotPermitted):
            write(db, lambda s, u=update: parties.update_user(s, actor.user_id, u, actor=actor))


def test_nobody_deactivates_themselves(db, people):
    master = people["actors"]["other_master"]
    with pytest.raises(InvalidInput) as info:
        write(db, lambda s: parties.update_user(s, master.user_id, ps.UserUpdate(is_active=False), actor=master))
    assert info.value.code == "cannot_deactivate_self"


def test_staff_need_an_email_and_contacts_have_no_login(db, people):
    master = people["master"]
    with pytest.raises(InvalidInput) as info:
        write(db, lambda s: parties.create_user(s, ps.UserCreate(name="No mail", is_staff=True), actor=master))
    assert info.value.code == "email_required"
    with pytest.raises(InvalidInput) as info:
        write(db, lambda s: parties.create_user(s, ps.UserCreate(name="Contact", email="c@example.com",
                                                                  password="long enough pw"), actor=master))
    assert info.value.code == "contact_has_no_login"


def test_emails_are_unique_per_workspace_ignoring_case(db, people, other_workspace):
    master = people["master"]
    write(db, lambda s: parties.create_user(s, new_user(email="Same@Example.com"), actor=master))
    with pytest.raises(InvalidInput) as info:
        write(db, lambda s: parties.create_user(s, new_user(email="same@example.COM"), actor=master))
    assert info.value.code == "email_taken"
    # Another workspace may have the same address.
    other = master_actor(db, other_workspace.id)
    write(db, lambda s: parties.create_user(s, new_user(email="same@example.com"), actor=other))


# --- workspace -------------------------------------------------------------------------------

def test_only_masters_change_the_workspace(db, workspace, people):
    for who in ("member", "user_manager"):
        with pytest.raises(NotPermitted):
            write(db, lambda s, w=who: parties.update_workspace(s, ps.WorkspaceUpdate(name="X"),
                                                                actor=people["actors"][w]))
    ws = write(db, lambda s: parties.update_workspace(s, ps.WorkspaceUpdate(name="Y"),
                                                      actor=people["actors"]["other_master"]))
    assert ws.name == "Y"


# --- API keys --------------------------------------------------------------------------------

def test_only_masters_create_keys_for_others(db, workspace, people):
    target = people["ids"]["member"]
    before = counts(db, workspace.id)
    for who, target_ in (("manager", target), ("user_manager", target), ("member", people["ids"]["manager"])):
        with pytest.raises(NotPermitted):
            write(db, lambda s, w=who, t=target_: parties.create_api_key(s, ps.ApiKeyCreate(name="k", user_id=t),
                                                                         actor=people["actors"][w]))
    assert counts(db, workspace.id) == before
    key, secret = write(db, lambda s: parties.create_api_key(s, ps.ApiKeyCreate(name="k", user_id=target),
                                                             actor=people["actors"]["other_master"]))
    assert key.user_id == target and secret.startswith("cdk_")


def test_anyone_creates_keys_for_themselves(db, people):
    member = people["actors"]["member"]
    key, secret = write(db, lambda s: parties.create_api_key(s, ps.ApiKeyCreate(name="mine"), actor=member))
    assert key.user_id == member.user_id
    with db.read() as session:
        assert parties.authenticate_api_key(session, secret).user_id == member.user_id


def test_keys_act_only_as_active_staff(db, people):
    master = people["master"]
    contact = make_user(db, actor=master, name="Contact", is_staff=False)
    with pytest.raises(InvalidInput) as info:
        write(db, lambda s: parties.create_api_key(s, ps.ApiKeyCreate(name="k", user_id=contact), actor=master))
    assert info.value.code == "user_not_staff"


def test_non_masters_neither_see_nor_revoke_others_keys(db, people):
    master = people["master"]
    others_key = write(db, lambda s: parties.create_api_key(
        s, ps.ApiKeyCreate(name="theirs", user_id=people["ids"]["manager"]), actor=master))[0].id
    member = people["actors"]["member"]
    with pytest.raises(NotFound):
        with db.read() as session:
            parties.get_api_key(session, others_key, actor=member)
    # Changing them answers the same as looking at them: no such key (a 403 would confirm the id exists).
    with pytest.raises(NotFound):
        write(db, lambda s: parties.revoke_api_key(s, others_key, actor=member))
    with pytest.raises(NotFound):
        write(db, lambda s: parties.update_api_key(s, others_key, ps.ApiKeyUpdate(name="x"), actor=member))
    with db.read() as session:
        assert session.get(ApiKey, others_key).revoked_at is None
        listed = parties.list_api_keys(session, actor=member).items
        assert all(k.user_id == member.user_id for k in listed)
        assert len(parties.list_api_keys(session, actor=master, limit=500).items) > len(listed)


def test_authenticate_api_key(db, people):
    master = people["master"]
    member = people["ids"]["member"]
    secret = make_api_key(db, actor=master, user_id=member)
    with db.read() as session:
        actor = parties.authenticate_api_key(session, secret)
    assert (actor.user_id, actor.role, actor.kind) == (member, "member", "api_key")
    assert actor.permissions == frozenset({"send_sms"})
    assert people["office"] in actor.office_ids

    for bad, code in [("cdk_nope", "invalid_api_key"), ("nope", "invalid_api_key")]:
        with pytest.raises(Unauthenticated) as info:
            with db.read() as session:
                parties.authenticate_api_key(session, bad)
        assert info.value.code == code

    with db.read() as session:
        key_id = actor.api_key_id
    write(db, lambda s: parties.revoke_api_key(s, key_id, actor=master))
    with pytest.raises(Unauthenticated) as info:
        with db.read() as session:
            parties.authenticate_api_key(session, secret)
    assert info.value.code == "api_key_revoked"


def test_system_actor_is_master():
    actor = Actor.system("ws_x")
    assert actor.is_master and actor.has("manage_users") and actor.user_id is None
