"""PATCH /v1/users through API keys (issue 10): a manager with manage_users cannot take over anyone holding
more than they do (F7), and one's own password or email needs the current password (F7, F19)."""

from __future__ import annotations

import pytest

from creditdesk.parties.models import User
from creditdesk.parties.passwords import verify_password
from tests.api.helpers import audit_rows, auth, counts
from tests.api.test_bad_input import assert_problem
from tests.parties.factories import make_api_key, make_user, master_actor

PASSWORD = "correct horse battery"


@pytest.fixture
def b(db, workspace):
    """The probe's workspace B."""
    master = master_actor(db, workspace.id)
    ids = {
        "manager": make_user(db, actor=master, name="B Manager", role="manager", permissions=["manage_users"],
                             password=PASSWORD),
        "manager2": make_user(db, actor=master, name="B Manager2", role="manager",
                              permissions=["manage_packs", "consume_credits", "send_sms"], password=PASSWORD),
        "member": make_user(db, actor=master, name="B Member", role="member", password=PASSWORD),
        "integration": make_user(db, actor=master, name="Billing Integration", role="master"),
    }
    keys = {name: auth(make_api_key(db, actor=master, user_id=uid)) for name, uid in ids.items()}
    return {"ids": ids, "keys": keys}


def user_row(db, user_id) -> User:
    with db.read() as session:
        user = session.get(User, user_id)
        session.expunge(user)
        return user


@pytest.mark.parametrize("body", [{"password": "taken-over-123"}, {"email": "attacker-controlled@evil.example"},
                                  {"is_active": False}, {"name": "Mine"}],
                         ids=lambda body: next(iter(body)))
def test_a_manage_users_manager_cannot_take_over_a_manager_holding_more(client, db, workspace, b, body):
    target = b["ids"]["manager2"]
    before, rows_before = user_row(db, target), counts(db, workspace.id)
    r = client.patch(f"/v1/users/{target}", json=body, headers=b["keys"]["manager"])
    assert_problem(r, 403, "not_permitted")
    after = user_row(db, target)
    assert (after.password_hash, after.email, after.is_active, after.name) == (
        before.password_hash, before.email, before.is_active, before.name)
    assert counts(db, workspace.id) == rows_before


def test_the_same_manager_still_resets_a_members_password(client, db, b):
    r = client.patch(f"/v1/users/{b['ids']['member']}", json={"password": "reset-by-manager"},
                     headers=b["keys"]["manager"])
    assert r.status_code == 200, r.text
    assert verify_password(user_row(db, b["ids"]["member"]).password_hash, "reset-by-manager")


@pytest.mark.parametrize("who", ["member", "manager"])
@pytest.mark.parametrize("body", [{"password": "my-new-password"}, {"email": "me-elsewhere@example.com"}],
                         ids=["password", "email"])
def test_own_password_or_email_through_the_api_needs_the_current_password(client, db, workspace, b, who, body):
    me = b["ids"][who]
    before = user_row(db, me)
    assert_problem(client.patch(f"/v1/users/{me}", json=body, headers=b["keys"][who]),
                   422, "current_password_required")
    assert_problem(client.patch(f"/v1/users/{me}", json={**body, "current_password": "guess"},
                                headers=b["keys"][who]), 403, "current_password_wrong")
    after = user_row(db, me)
    assert (after.password_hash, after.email) == (before.password_hash, before.email)

    r = client.patch(f"/v1/users/{me}", json={**body, "current_password": PASSWORD}, headers=b["keys"][who])
    assert r.status_code == 200, r.text
    assert "current_password" not in r.json()
    changed = user_row(db, me)
    assert changed.email == body["email"] if "email" in body else verify_password(changed.password_hash,
                                                                                  body["password"])
    # The audit row holds no trace of either password.
    [event] = [e for e in audit_rows(db, workspace.id, action="user.update", object_id=me)][-1:]
    assert PASSWORD not in str(event.before) + str(event.after)
    assert "current_password" not in str(event.after)


def test_an_api_key_of_a_user_without_password_cannot_become_a_login(client, db, b):
    """F19: PATCH /v1/users/{self} turned an integration's API key into a back-office login."""
    me = b["ids"]["integration"]
    for body in ({"password": "now-i-log-in"}, {"password": "now-i-log-in", "current_password": ""},
                 {"email": "integration@evil.example", "current_password": "x"}):
        assert_problem(client.patch(f"/v1/users/{me}", json=body, headers=b["keys"]["integration"]),
                       403, "no_current_password")
    assert user_row(db, me).password_hash is None


def test_others_passwords_are_set_without_the_actors_current_password(client, db, workspace, b):
    r = client.patch(f"/v1/users/{b['ids']['manager2']}", json={"password": "set-by-the-master"},
                     headers=workspace.headers)
    assert r.status_code == 200, r.text
    assert verify_password(user_row(db, b["ids"]["manager2"]).password_hash, "set-by-the-master")
