"""Nothing crosses workspaces: another workspace's id answers 404, never the object, and changes nothing."""

from __future__ import annotations

import pytest

from tests.api.helpers import counts


@pytest.fixture
def theirs(client, other_workspace):
    """One object of every kind in the *other* workspace, made through the API."""
    h = other_workspace.headers

    def post(path, body):
        r = client.post(path, json=body, headers=h)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    customer = post("/v1/customers", {"name": "Their customer"})
    office = post("/v1/offices", {"name": "Their office", "customer_id": customer})
    own_office = post("/v1/offices", {"name": "Their own office"})
    user = post("/v1/users", {"name": "Their user", "email": "their.user@example.com", "is_staff": True,
                              "primary_office_id": office})
    team = post("/v1/teams", {"name": "Their team", "member_ids": [user]})
    api_key = post("/v1/api-keys", {"name": "Their key", "user_id": user})
    return {"customers": customer, "offices": office, "own_office": own_office, "users": user, "teams": team,
            "api-keys": api_key, "master": other_workspace.master_id}


PATCH_BODIES = {
    "customers": {"name": "Stolen"},
    "offices": {"name": "Stolen"},
    "users": {"name": "Stolen"},
    "teams": {"name": "Stolen"},
    "api-keys": {"name": "Stolen"},
}


@pytest.mark.parametrize("resource", ["customers", "offices", "users", "teams", "api-keys"])
def test_get_and_patch_of_another_workspaces_object_answer_404(client, db, workspace, other_workspace, theirs,
                                                                resource):
    object_id = theirs[resource]
    before_mine, before_theirs = counts(db, workspace.id), counts(db, other_workspace.id)

    r = client.get(f"/v1/{resource}/{object_id}", headers=workspace.headers)
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "not_found"
    assert "Their" not in r.text  # the object is never shown

    r = client.patch(f"/v1/{resource}/{object_id}", json=PATCH_BODIES[resource], headers=workspace.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"

    # The owner still sees it unchanged.
    r = client.get(f"/v1/{resource}/{object_id}", headers=other_workspace.headers)
    assert r.status_code == 200
    assert r.json()["name"] != "Stolen"
    assert counts(db, workspace.id) == before_mine
    assert counts(db, other_workspace.id) == before_theirs


def test_revoking_another_workspaces_api_key_answers_404(client, db, workspace, other_workspace, theirs):
    before = counts(db, other_workspace.id)
    r = client.delete(f"/v1/api-keys/{theirs['api-keys']}", headers=workspace.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    r = client.get(f"/v1/api-keys/{theirs['api-keys']}", headers=other_workspace.headers)
    assert r.json()["revoked_at"] is None
    assert counts(db, other_workspace.id) == before


@pytest.mark.parametrize("resource", ["customers", "offices", "users", "teams", "api-keys", "audit-events"])
def test_lists_never_include_another_workspaces_rows(client, workspace, other_workspace, theirs, resource):
    mine = client.get(f"/v1/{resource}", params={"limit": 500}, headers=workspace.headers)
    assert mine.status_code == 200
    their_ids = set(theirs.values())
    listed = {row["id"] for row in mine.json()["data"]}
    assert not listed & their_ids
    if resource == "audit-events":
        assert not {row["object_id"] for row in mine.json()["data"]} & their_ids
    # The other workspace does see its own rows (the list is not simply empty).
    theirs_listed = client.get(f"/v1/{resource}", params={"limit": 500}, headers=other_workspace.headers).json()
    key = "object_id" if resource == "audit-events" else "id"
    assert {row[key] for row in theirs_listed["data"]} & their_ids


def test_filters_by_another_workspaces_ids_find_nothing(client, workspace, theirs):
    h = workspace.headers
    assert client.get("/v1/offices", params={"customer_id": theirs["customers"]}, headers=h).json()["data"] == []
    assert client.get("/v1/users", params={"office_id": theirs["offices"]}, headers=h).json()["data"] == []
    assert client.get("/v1/teams", params={"office_id": theirs["own_office"]}, headers=h).json()["data"] == []
    events = client.get("/v1/audit-events", params={"object_id": theirs["customers"]}, headers=h).json()
    assert events["data"] == []
    events = client.get("/v1/audit-events", params={"actor_id": theirs["master"]}, headers=h).json()
    assert events["data"] == []


def test_workspace_endpoint_shows_the_callers_workspace(client, workspace, other_workspace):
    assert client.get("/v1/workspace", headers=workspace.headers).json()["id"] == workspace.id
    assert client.get("/v1/workspace", headers=other_workspace.headers).json()["id"] == other_workspace.id


def _refused(client, db, workspace, method, path, body):
    before = counts(db, workspace.id)
    r = client.request(method, path, json=body, headers=workspace.headers)
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "not_found"
    assert counts(db, workspace.id) == before
    return r


def test_referencing_another_workspaces_objects_answers_404_and_creates_nothing(client, db, workspace, theirs):
    h = workspace.headers
    office = client.post("/v1/offices", json={"name": "My office"}, headers=h).json()["id"]
    user = client.post("/v1/users", json={"name": "Me", "email": "me@example.com", "is_staff": True},
                       headers=h).json()["id"]
    team = client.post("/v1/teams", json={"name": "My team"}, headers=h).json()["id"]

    # Creating things that point at their objects.
    _refused(client, db, workspace, "POST", "/v1/offices", {"name": "X", "customer_id": theirs["customers"]})
    _refused(client, db, workspace, "POST", "/v1/users",
             {"name": "X", "email": "x1@example.com", "is_staff": True, "primary_office_id": theirs["offices"]})
    _refused(client, db, workspace, "POST", "/v1/users",
             {"name": "X", "email": "x2@example.com", "is_staff": True, "primary_office_id": office,
              "additional_office_ids": [office, theirs["offices"]]})
    _refused(client, db, workspace, "POST", "/v1/teams", {"name": "X", "member_ids": [user, theirs["users"]]})
    _refused(client, db, workspace, "POST", "/v1/teams", {"name": "X", "office_id": theirs["own_office"]})
    _refused(client, db, workspace, "POST", "/v1/api-keys", {"name": "X", "user_id": theirs["users"]})

    # Updating my objects to point at theirs.
    _refused(client, db, workspace, "PATCH", f"/v1/users/{user}", {"primary_office_id": theirs["offices"]})
    _refused(client, db, workspace, "PATCH", f"/v1/users/{user}", {"additional_office_ids": [theirs["offices"]]})
    _refused(client, db, workspace, "PATCH", f"/v1/teams/{team}", {"member_ids": [theirs["users"]]})
    _refused(client, db, workspace, "PATCH", f"/v1/teams/{team}", {"office_id": theirs["offices"]})

    me = client.get(f"/v1/users/{user}", headers=h).json()
    assert me["primary_office_id"] is None and me["additional_office_ids"] == []
    my_team = client.get(f"/v1/teams/{team}", headers=h).json()
    assert my_team["member_ids"] == [] and my_team["office_id"] is None


def test_an_api_key_only_ever_acts_in_its_own_workspace(client, workspace, other_workspace):
    r = client.post("/v1/customers", json={"name": "Mine"}, headers=workspace.headers)
    assert r.status_code == 201
    theirs = client.get("/v1/customers", headers=other_workspace.headers).json()["data"]
    assert r.json()["id"] not in {c["id"] for c in theirs}
