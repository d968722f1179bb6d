"""People and structure in the back office (issue 17): customers, offices, users, teams and project contacts
created and changed from the web, a consumption reversed, each write through the service the API calls,
under a one-time key, its errors next to their field in words; and the API's refusals, the same on the web.
"""

from __future__ import annotations

import os
import re
import secrets

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from creditdesk.audit import AuditEvent
from creditdesk.credits import consumptions
from creditdesk.credits import schemas as cs
from creditdesk.credits.models import Consumption
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import PERMISSIONS, Customer, Office, Team, User
from creditdesk.web.people import PERMISSION_LABELS, words
from tests.web.conftest import PASSWORD, csrf_of, logged_in, login, once_key_of, post_form


@pytest.fixture
def org(db):
    """Own offices North and South, customer Initrode; master; Uma (manager, manage_users + send_sms, North);
    Nora (member, North); Sam (member, South); Pia (member with consume_credits, North); an API key for Uma."""
    tag = os.urandom(4).hex()

    def fn(session):
        ws, master, _key, _secret = parties.create_workspace(
            session, name="People web", master_name="Mona Master", master_email=f"m-{tag}@example.com",
            master_password=PASSWORD)
        actor = parties.actor_for_user(session, master)
        north = parties.create_office(session, ps.OfficeCreate(name="North"), actor=actor).id
        south = parties.create_office(session, ps.OfficeCreate(name="South"), actor=actor).id
        customer = parties.create_customer(session, ps.CustomerCreate(name=f"Initrode {tag}"), actor=actor).id

        def user(name, role, perms, office):
            return parties.create_user(session, ps.UserCreate(
                name=name, email=f"{name.lower()}-{tag}@example.com", is_staff=True, role=role,
                permissions=perms, primary_office_id=office, password=PASSWORD), actor=actor)

        uma = user("Uma", "manager", ["manage_users", "send_sms"], north)
        ids = {"master": master.id, "uma": uma.id, "nora": user("Nora", "member", [], north).id,
               "sam": user("Sam", "member", [], south).id,
               "pia": user("Pia", "member", ["consume_credits"], north).id}
        _k, uma_key = parties.create_api_key(session, ps.ApiKeyCreate(name="Uma's key"),
                                             actor=parties.actor_for_user(session, uma))
        return {"ws": ws.id, "ids": ids, "north": north, "south": south, "customer": customer, "uma_key": uma_key,
                "email": {n: f"{n}-{tag}@example.com" for n in ("uma", "nora", "sam", "pia")}
                | {"master": f"m-{tag}@example.com"}}

    return db.write(fn)


def _user(db, user_id) -> User:
    with db.read() as session:
        row = session.get(User, user_id)
        session.expunge(row)
        return row


def _audits(db, workspace_id, action) -> list[AuditEvent]:
    with db.read() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == workspace_id,
                                                             AuditEvent.action == action)))
        session.expunge_all()
        return rows


def _error_of(html: str, field: str) -> str:
    match = re.search(rf'<span class="field-error" id="err-{field}">([^<]*)</span>', html)
    assert match, f"no error next to {field}"
    return match.group(1)


def _no_codes(html: str) -> None:
    """No permission code and no schema message reaches the person."""
    for code in PERMISSIONS:
        assert not re.search(rf">[^<]*\b{code}\b[^<]*<", html), code
    assert "Input should be" not in html and "value is not a valid" not in html


# --- customers and offices -----------------------------------------------------------------------------

def test_create_and_edit_a_customer_with_errors_next_to_their_fields(db, web, org):
    logged_in(web, org["email"]["master"])
    form = web.get("/customers/new")
    assert form.status_code == 200 and 'name="idempotency_key"' in form.text
    assert 'name="csrf_token" value=""' not in form.text
    bad = post_form(web, "/customers/new", {"name": "", "email": "not-an-email", "notes": ""}, page="/customers/new")
    assert bad.status_code == 422
    assert _error_of(bad.text, "name") == "Name is required."
    assert _error_of(bad.text, "email") == "Email is not an email address (like name@example.com)."
    _no_codes(bad.text)
    with db.read() as session:
        before = session.scalar(select(func.count()).select_from(Customer).where(Customer.workspace_id == org["ws"]))
    page = web.get("/customers/new").text
    data = {"name": "Umbrella Corp", "email": "billing@umbrella.example.com", "external_ref": "CRM-9", "notes": "VIP",
            "csrf_token": csrf_of(page), "idempotency_key": once_key_of(page)}
    created = web.post("/customers/new", data=data, follow_redirects=False)
    assert created.status_code == 303
    customer_url = created.headers["location"]
    again = web.post("/customers/new", data=data, follow_redirects=False)  # a double click
    assert again.headers["location"] == customer_url
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Customer).where(
            Customer.workspace_id == org["ws"])) == before + 1
    shown = web.get(customer_url).text
    assert "Umbrella Corp" in shown and "billing@umbrella.example.com" in shown
    assert 'id="customer-addresses"' in shown and "Accounts" in shown  # the billing sections still there
    customer_id = customer_url.rsplit("/", 1)[1]
    edited = post_form(web, f"{customer_url}/edit", {"name": "Umbrella Corporation", "email": "", "external_ref": "",
                                                     "notes": "Moved"}, page=f"{customer_url}/edit")
    assert edited.status_code == 303
    with db.read() as session:
        row = session.get(Customer, customer_id)
        assert (row.name, row.email, row.notes) == ("Umbrella Corporation", None, "Moved")
    assert any(e.object_id == customer_id for e in _audits(db, org["ws"], "customer.update"))
    # The language of the customer's emails (expiry emails pick their template by it).
    wrong = post_form(web, f"{customer_url}/edit", {"name": "Umbrella Corporation", "language": "German!"},
                      page=f"{customer_url}/edit")
    assert wrong.status_code == 422
    assert _error_of(wrong.text, "language") == "Language is not a language code (like en, de or fr-CA)."
    german = post_form(web, f"{customer_url}/edit", {"name": "Umbrella Corporation", "language": "de"},
                       page=f"{customer_url}/edit")
    assert german.status_code == 303
    with db.read() as session:
        assert session.get(Customer, customer_id).language == "de"
    assert 'name="language" value="de"' in web.get(f"{customer_url}/edit").text


def test_create_and_edit_an_office_listed_on_its_customer(db, web, org):
    logged_in(web, org["email"]["master"])
    clients = web.get("/clients").text
    assert 'href="/customers/new"' in clients and 'href="/offices/new"' in clients
    page = f"/offices/new?customer_id={org['customer']}"
    assert f'<option value="{org["customer"]}" selected' in web.get(page).text
    created = post_form(web, "/offices/new", {"name": "Initrode Austin", "customer_id": org["customer"],
                                              "email": "austin@initrode.example.com"}, page=page)
    assert created.status_code == 303
    office_id = created.headers["location"].rsplit("/", 1)[1]
    assert "Initrode Austin" in web.get(f"/customers/{org['customer']}").text
    edited = post_form(web, f"/offices/{office_id}/edit", {"name": "Initrode Austin TX", "email": ""},
                       page=f"/offices/{office_id}/edit")
    assert edited.status_code == 303
    with db.read() as session:
        office = session.get(Office, office_id)
        assert (office.name, office.email, office.customer_id) == ("Initrode Austin TX", None, org["customer"])
    # A contact of the customer, added from its office.
    contact = post_form(web, "/users/new", {"kind": "contact", "name": "Connie Contact", "email": "",
                                            "primary_office_id": office_id},
                        page=f"/users/new?office_id={office_id}&kind=contact")
    assert contact.status_code == 303
    customer_page = web.get(f"/customers/{org['customer']}").text
    assert re.search(r'id="customer-contacts">.*Connie Contact', customer_page, re.S)


def test_members_cannot_create_customers_offices_or_teams(web, org):
    logged_in(web, org["email"]["nora"])
    for path in ("/customers/new", "/offices/new", "/teams/new", "/users/new"):
        assert web.get(path).status_code == 403, path
    refused = post_form(web, "/customers/new", {"name": "Sneaky", "idempotency_key": "forged-1"}, page="/clients")
    assert refused.status_code == 403
    assert 'href="/customers/new"' not in web.get("/clients").text


# --- users -----------------------------------------------------------------------------------------------

def test_create_a_staff_user_with_send_sms_and_edit_them(db, app, web, org):
    logged_in(web, org["email"]["master"])
    form = web.get(f"/users/new?office_id={org['north']}").text
    for label in PERMISSION_LABELS.values():
        assert label in form
    _no_codes(form)
    created = post_form(web, "/users/new", {
        "kind": "staff", "name": "Sally Sender", "email": "Sally@Example.com", "role": "member",
        "permissions": ["send_sms"], "primary_office_id": org["north"], "additional_office_ids": [org["south"]],
        "password": "a good password"}, page="/users/new")
    assert created.status_code == 303, created.text
    user_id = created.headers["location"].rsplit("/", 1)[1]
    sally = _user(db, user_id)
    assert (sally.email, sally.permissions, sally.primary_office_id, sally.is_staff) == (
        "sally@example.com", ["send_sms"], org["north"], True)
    page = web.get(f"/users/{user_id}").text
    assert "Sally Sender" in page
    with TestClient(app, base_url="http://testserver") as sally_browser:  # she logs in with the password given
        assert login(sally_browser, "sally@example.com", "a good password").status_code == 303
    listing = web.get("/users?q=sally").text
    assert "Sally Sender" in listing and "Send SMS" in listing
    edited = post_form(web, f"/users/{user_id}/edit", {
        "name": "Sally Sender", "email": "sally@example.com", "role": "manager",
        "permissions": ["send_sms", "manage_office_credits"], "primary_office_id": org["north"],
        "additional_office_ids": [], "password": ""}, page=f"/users/{user_id}/edit")  # is_active unticked
    assert edited.status_code == 303
    sally = _user(db, user_id)
    assert (sally.role, sally.permissions, sally.is_active) == ("manager", ["manage_office_credits", "send_sms"],
                                                                 False)
    with db.read() as session:
        assert parties.additional_office_ids(session, user_id) == []
    audit = [e for e in _audits(db, org["ws"], "user.update") if e.object_id == user_id]
    assert audit and audit[-1].after["is_active"] is False


def test_user_form_errors_are_sentences_next_to_their_field(web, org):
    logged_in(web, org["email"]["master"])
    bad = post_form(web, "/users/new", {"kind": "staff", "name": "", "email": "nope", "password": "short",
                                        "permissions": ["fly"]}, page="/users/new")
    assert bad.status_code == 422
    assert _error_of(bad.text, "name") == "Name is required."
    assert _error_of(bad.text, "email") == "Email is not an email address (like name@example.com)."
    assert _error_of(bad.text, "password") == "Password needs at least 8 characters."
    assert _error_of(bad.text, "permissions") == "Permissions: choose from the list."
    _no_codes(bad.text)
    taken = post_form(web, "/users/new", {"kind": "staff", "name": "Copy", "email": org["email"]["nora"]},
                      page="/users/new")
    assert taken.status_code == 422 and "already exists" in _error_of(taken.text, "email")


def _api_patch(client, key, user_id, body):
    return client.patch(f"/v1/users/{user_id}", json=body, headers={
        "Authorization": f"Bearer {key}", "Idempotency-Key": secrets.token_hex(8)})


def test_a_manager_is_refused_on_the_web_exactly_as_on_the_api(db, web, client, org):
    """Granting a permission Uma lacks, or changing Sam (South, not her office): the API answers 403, the
    web form 403 with the same rule's message in words, next to the field; nothing changes either way."""
    ids = org["ids"]
    logged_in(web, org["email"]["uma"])
    nora_before, sam_before = _user(db, ids["nora"]), _user(db, ids["sam"])
    updates_before = len(_audits(db, org["ws"], "user.update"))

    api = _api_patch(client, org["uma_key"], ids["nora"], {"permissions": ["manage_packs"]})
    assert api.status_code == 403
    web_refused = post_form(web, f"/users/{ids['nora']}/edit", {
        "name": "Nora", "email": org["email"]["nora"], "role": "member", "permissions": ["manage_packs"],
        "primary_office_id": org["north"], "is_active": "yes"}, page=f"/users/{ids['nora']}/edit")
    assert web_refused.status_code == 403
    assert _error_of(web_refused.text, "permissions") == words(api.json()["detail"]) == (
        "You cannot grant permissions you do not hold: “Manage packs”.")
    _no_codes(web_refused.text)

    api = _api_patch(client, org["uma_key"], ids["sam"], {"name": "Sam renamed"})
    assert api.status_code == 403 and api.json()["code"] == "user_outside_your_offices"
    web_refused = post_form(web, f"/users/{ids['sam']}/edit", {
        "name": "Sam renamed", "email": org["email"]["sam"], "role": "member", "primary_office_id": org["south"],
        "is_active": "yes"}, page=f"/users/{ids['sam']}/edit")
    assert web_refused.status_code == 403
    assert api.json()["detail"] in web_refused.text.replace("&#39;", "'")

    # Moving Nora to South (not Uma's office) is refused on both, too.
    api = _api_patch(client, org["uma_key"], ids["nora"], {"additional_office_ids": [org["south"]]})
    assert api.status_code == 403
    web_refused = post_form(web, f"/users/{ids['nora']}/edit", {
        "name": "Nora", "email": org["email"]["nora"], "role": "member", "primary_office_id": org["north"],
        "additional_office_ids": [org["south"]], "is_active": "yes"}, page=f"/users/{ids['nora']}/edit")
    assert web_refused.status_code == 403
    assert _error_of(web_refused.text, "additional_office_ids") == api.json()["detail"]

    assert _user(db, ids["nora"]).permissions == nora_before.permissions
    assert _user(db, ids["sam"]).name == sam_before.name
    assert len(_audits(db, org["ws"], "user.update")) == updates_before
    # Within her office and her rights, Uma may.
    allowed = post_form(web, f"/users/{ids['nora']}/edit", {
        "name": "Nora", "email": org["email"]["nora"], "role": "member", "permissions": ["send_sms"],
        "primary_office_id": org["north"], "is_active": "yes"}, page=f"/users/{ids['nora']}/edit")
    assert allowed.status_code == 303
    assert _user(db, ids["nora"]).permissions == ["send_sms"]


def test_a_member_without_manage_users_cannot_manage_users(db, web, org):
    ids = org["ids"]
    logged_in(web, org["email"]["pia"])
    assert web.get("/users/new").status_code == 403
    assert web.get(f"/users/{ids['nora']}/edit").status_code == 403
    refused = post_form(web, f"/users/{ids['nora']}/edit", {
        "name": "Nora taken", "email": org["email"]["nora"], "role": "member", "primary_office_id": org["north"],
        "is_active": "yes", "idempotency_key": "forged-2"}, page="/users")
    assert refused.status_code == 403 and _user(db, ids["nora"]).name == "Nora"
    _no_codes(refused.text)
    # Her own name she may change.
    own = post_form(web, f"/users/{ids['pia']}/edit", {
        "name": "Pia P.", "email": org["email"]["pia"], "role": "member", "permissions": ["consume_credits"],
        "primary_office_id": org["north"]}, page=f"/users/{ids['pia']}/edit")
    assert own.status_code == 303 and _user(db, ids["pia"]).name == "Pia P."


def test_users_list_paginates(db, web, org):
    def fn(session):
        actor = parties.actor_for_user(session, session.get(User, org["ids"]["master"]))
        for i in range(55):
            parties.create_user(session, ps.UserCreate(name=f"Contact {i:02d}", primary_office_id=org["north"]),
                                actor=actor)
    db.write(fn)
    logged_in(web, org["email"]["master"])
    first = web.get("/users").text
    link = re.search(r'href="(/users\?cursor=[^"]+)">Next page', first)
    assert link and first.count('<tr><td><a href="/users/') == 50
    second = web.get(link.group(1).replace("&amp;", "&")).text
    assert second.count('<tr><td><a href="/users/') == 55 + 5 - 50 and "First page" in second


# --- teams and project contacts -----------------------------------------------------------------------------

def test_create_and_edit_a_team(db, web, org):
    ids = org["ids"]
    logged_in(web, org["email"]["uma"])
    created = post_form(web, "/teams/new", {"name": "North callers", "office_id": org["north"],
                                            "member_ids": [ids["nora"], ids["pia"]]}, page="/teams/new")
    assert created.status_code == 303
    team_id = created.headers["location"].rsplit("/", 1)[1]
    assert "North callers" in web.get("/teams").text
    edited = post_form(web, f"/teams/{team_id}", {"name": "North team", "office_id": "",
                                                  "member_ids": [ids["nora"]]}, page=f"/teams/{team_id}")
    assert edited.status_code == 303
    with db.read() as session:
        team = session.get(Team, team_id)
        assert (team.name, team.office_id) == ("North team", None)
        assert parties.team_member_ids(session, team_id) == [ids["nora"]]
    blank = post_form(web, f"/teams/{team_id}", {"name": ""}, page=f"/teams/{team_id}")
    assert blank.status_code == 422 and _error_of(blank.text, "name") == "Name is required."


def test_edit_the_contacts_of_a_project(db, web, world):
    logged_in(web, world.manager_email)
    page = web.get(f"/projects/{world.project_id}").text
    assert f'href="/projects/{world.project_id}/contacts"' in page
    saved = post_form(web, f"/projects/{world.project_id}/contacts", {"contact_ids": [world.wendy_id, world.liam_id]},
                      page=f"/projects/{world.project_id}/contacts")
    assert saved.status_code == 303
    with db.read() as session:
        from creditdesk.credits.projects import project_contact_ids

        assert set(project_contact_ids(session, world.project_id)) == {world.wendy_id, world.liam_id}
    assert "Liam Leeds" in web.get(f"/projects/{world.project_id}").text
    assert any(e.object_id == world.project_id for e in _audits(db, world.workspace_id, "project.update"))


# --- reversing a consumption ---------------------------------------------------------------------------------

def _consume(db, world, amount=250) -> str:
    def fn(session):
        master = session.scalar(select(User).where(User.workspace_id == world.workspace_id, User.role == "master"))
        out = consumptions.consume(session, cs.ConsumeRequest(
            context={"kind": "project", "id": world.project_id}, credit_type="hours", amount=amount,
            reference={"kind": "project", "id": world.project_id}), actor=parties.actor_for_user(session, master))
        return out.id
    return db.write(fn)


def test_reverse_a_consumption_from_the_project_page_with_a_reason(db, web, world):
    consumption_id = _consume(db, world)
    logged_in(web, world.manager_email)  # manage_packs
    project = web.get(f"/projects/{world.project_id}").text
    link = f"/consumptions/{consumption_id}/reverse?back=/projects/{world.project_id}"
    assert link in project
    no_reason = post_form(web, f"/consumptions/{consumption_id}/reverse", {"reason": "", "back": "/credits"},
                          page=link)
    assert no_reason.status_code == 422 and "Give the reason" in _error_of(no_reason.text, "reason")
    done = post_form(web, f"/consumptions/{consumption_id}/reverse",
                     {"reason": "Logged on the wrong project", "back": f"/projects/{world.project_id}"}, page=link)
    assert done.status_code == 303 and done.headers["location"] == f"/projects/{world.project_id}"
    with db.read() as session:
        assert session.get(Consumption, consumption_id).status == "reversed"
    event = [e for e in _audits(db, world.workspace_id, "consumption.reverse") if e.object_id == consumption_id]
    assert event and event[0].after["reason"] == "Logged on the wrong project"
    after = web.get(f"/projects/{world.project_id}").text
    assert link not in after and "reversed" in after
    # The pack history says why the credits came back.
    with db.read() as session:
        from creditdesk.credits.consumptions import operation_lines
        from creditdesk.credits.repository import CONSUME

        pack_id = operation_lines(session, consumption_id, CONSUME)[0]["pack_id"]
    history = web.get(f"/packs/{pack_id}").text
    returned = history.split("Returned (reversal)", 1)[1].split("</td>", 1)[0]
    assert "Reason: Logged on the wrong project" in returned
    # Reversing again is refused with the service's message, nothing done twice.
    again = post_form(web, f"/consumptions/{consumption_id}/reverse", {"reason": "twice", "back": "/credits",
                                                                               "idempotency_key": "again-1"},
                      page=f"/consumptions/{consumption_id}/reverse")
    assert again.status_code == 409 and "already reversed" in again.text


def test_reverse_from_the_pack_history_and_only_for_those_the_api_allows(db, web, world):
    consumption_id = _consume(db, world)
    with db.read() as session:
        from creditdesk.credits.consumptions import operation_lines
        from creditdesk.credits.repository import CONSUME

        pack_id = operation_lines(session, consumption_id, CONSUME)[0]["pack_id"]
    logged_in(web, world.member_email)  # consume_credits only: the API refuses them the reversal
    assert "/reverse" not in web.get(f"/packs/{pack_id}/history").text
    assert web.get(f"/consumptions/{consumption_id}/reverse").status_code == 403
    refused = post_form(web, f"/consumptions/{consumption_id}/reverse", {"reason": "mine", "back": "/credits",
                                                                                  "idempotency_key": "forged-3"},
                        page="/credits")
    assert refused.status_code == 403
    with db.read() as session:
        assert session.get(Consumption, consumption_id).status == "posted"

    web.cookies.clear()
    logged_in(web, world.manager_email)
    history = web.get(f"/packs/{pack_id}/history").text
    link = f"/consumptions/{consumption_id}/reverse?back=/packs/{pack_id}"
    assert link in history.replace("&amp;", "&")
    done = post_form(web, f"/consumptions/{consumption_id}/reverse", {"reason": "Double entry",
                                                                      "back": f"/packs/{pack_id}"}, page=link)
    assert done.status_code == 303 and done.headers["location"] == f"/packs/{pack_id}"
    assert "Returned (reversal)" in web.get(f"/packs/{pack_id}/history").text


# --- workspaces stay apart -----------------------------------------------------------------------------------

def test_another_workspaces_people_are_not_found(web, world, other_world):
    logged_in(web, world.master_email)
    for path in (f"/customers/{other_world.customer_id}/edit", f"/offices/{other_world.london_id}/edit",
                 f"/users/{other_world.wendy_id}/edit", f"/projects/{other_world.project_id}/contacts"):
        assert web.get(path).status_code == 404, path
    refused = post_form(web, f"/customers/{other_world.customer_id}/edit", {"name": "Taken"}, page="/clients")
    assert refused.status_code == 404
