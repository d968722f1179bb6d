"""Bad input gets a clear problem+json answer and changes nothing."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from creditdesk.config import get_settings
from creditdesk.parties import schemas as ps

from tests.api.helpers import auth, counts
from tests.parties.factories import actor_of, make_api_key, make_office, make_user, master_actor


@pytest.fixture
def objects(client, workspace):
    """One object of every kind to update."""
    h = workspace.headers
    customer = client.post("/v1/customers", json={"name": "C"}, headers=h).json()["id"]
    office = client.post("/v1/offices", json={"name": "O"}, headers=h).json()["id"]
    user = client.post("/v1/users", json={"name": "U", "email": "u@example.com", "is_staff": True},
                       headers=h).json()["id"]
    team = client.post("/v1/teams", json={"name": "T"}, headers=h).json()["id"]
    key = client.post("/v1/api-keys", json={"name": "K"}, headers=h).json()["id"]
    return {"customers": customer, "offices": office, "users": user, "teams": team, "api-keys": key}


def assert_problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:creditdesk:problem:{code}"
    assert body["title"] and body["detail"]
    return body


# Every create and update endpoint with a valid body (unknown fields are added to it).
CREATES = {
    "/v1/customers": {"name": "New"},
    "/v1/offices": {"name": "New"},
    "/v1/users": {"name": "New", "email": "new@example.com", "is_staff": True},
    "/v1/teams": {"name": "New"},
    "/v1/api-keys": {"name": "New"},
}
UPDATES = {
    "customers": {"name": "Changed"},
    "offices": {"name": "Changed"},
    "users": {"name": "Changed"},
    "teams": {"name": "Changed"},
    "api-keys": {"name": "Changed"},
}
SNEAKY_FIELDS = {
    "id": "cus_01aaaaaaaaaaaaaaaaaaaaaaaa",
    "workspace_id": "ws_01aaaaaaaaaaaaaaaaaaaaaaaa",
    "created_at": "2020-01-01T00:00:00Z",
    "is_master": True,
}


def test_every_request_schema_forbids_unknown_fields():
    """Structural guard: a new input schema that forgets extra=forbid fails here."""
    inputs = [obj for obj in vars(ps).values()
              if isinstance(obj, type) and issubclass(obj, ps.Input) and obj is not ps.Input]
    assert len(inputs) >= 11
    for schema in inputs:
        assert schema.model_config.get("extra") == "forbid", schema.__name__


@pytest.mark.parametrize("field", sorted(SNEAKY_FIELDS))
@pytest.mark.parametrize("path", sorted(CREATES))
def test_unknown_fields_on_create_are_refused(client, db, workspace, path, field):
    before = counts(db, workspace.id)
    r = client.post(path, json={**CREATES[path], field: SNEAKY_FIELDS[field]}, headers=workspace.headers)
    body = assert_problem(r, 422, "unknown_field")
    assert field in body["detail"]
    assert any(e["loc"][-1] == field for e in body["errors"])
    assert counts(db, workspace.id) == before


@pytest.mark.parametrize("field", sorted(SNEAKY_FIELDS))
@pytest.mark.parametrize("resource", sorted(UPDATES))
def test_unknown_fields_on_update_are_refused(client, db, workspace, objects, resource, field):
    before = counts(db, workspace.id)
    path = f"/v1/{resource}/{objects[resource]}"
    original = client.get(path, headers=workspace.headers).json()
    r = client.patch(path, json={**UPDATES[resource], field: SNEAKY_FIELDS[field]}, headers=workspace.headers)
    assert_problem(r, 422, "unknown_field")
    assert client.get(path, headers=workspace.headers).json() == original
    assert counts(db, workspace.id) == before


@pytest.mark.parametrize("body", [
    {"name": "Renamed", "id": "ws_x"},
    {"settings": {"sms_credit_mode": "office_pool"}, "workspace_id": "ws_x"},
    {"name": "Renamed", "created_at": "2020-01-01T00:00:00Z"},
])
def test_unknown_fields_on_workspace_update_are_refused(client, db, workspace, body):
    original = client.get("/v1/workspace", headers=workspace.headers).json()
    before = counts(db, workspace.id)
    r = client.patch("/v1/workspace", json=body, headers=workspace.headers)
    assert_problem(r, 422, "unknown_field")
    assert client.get("/v1/workspace", headers=workspace.headers).json() == original
    assert counts(db, workspace.id) == before


def test_secret_columns_cannot_be_set(client, db, workspace, objects):
    before = counts(db, workspace.id)
    r = client.post("/v1/users", json={**CREATES["/v1/users"], "password_hash": "x"}, headers=workspace.headers)
    assert_problem(r, 422, "unknown_field")
    r = client.patch(f"/v1/api-keys/{objects['api-keys']}", json={"name": "K", "key_hash": "0" * 64}, headers=workspace.headers)
    assert_problem(r, 422, "unknown_field")
    r = client.patch(f"/v1/api-keys/{objects['api-keys']}", json={"name": "K", "revoked_at": None}, headers=workspace.headers)
    assert_problem(r, 422, "unknown_field")
    assert counts(db, workspace.id) == before


@pytest.mark.parametrize("raw", [b'{"name": ', b"{'name': 'single quotes'}", b'{"name": "A",}', b"not json"])
def test_malformed_json_is_400(client, db, workspace, raw):
    before = counts(db, workspace.id)
    r = client.post("/v1/customers", content=raw,
                    headers={**workspace.headers, "Content-Type": "application/json"})
    assert_problem(r, 400, "malformed_json")
    assert counts(db, workspace.id) == before


def test_malformed_json_on_update_is_400(client, db, workspace, objects):
    before = counts(db, workspace.id)
    r = client.patch(f"/v1/customers/{objects['customers']}", content=b'{"name": "x"',
                     headers={**workspace.headers, "Content-Type": "application/json"})
    assert_problem(r, 400, "malformed_json")
    assert counts(db, workspace.id) == before


@pytest.mark.parametrize("path,body", [
    ("/v1/customers", {"name": 123}),
    ("/v1/customers", {"name": ""}),
    ("/v1/customers", {"name": "A", "email": "not-an-email"}),
    ("/v1/customers", []),
    ("/v1/customers", "Acme"),
    ("/v1/customers", {}),
    ("/v1/offices", {"name": ["A"]}),
    ("/v1/users", {"name": "A", "email": "a@example.com", "is_staff": "perhaps"}),
    ("/v1/users", {"name": "A", "role": "admin"}),
    ("/v1/users", {"name": "A", "permissions": "send_sms"}),
    ("/v1/users", {"name": "A", "permissions": ["fly"]}),
    ("/v1/users", {"name": "A", "additional_office_ids": "off_x"}),
    ("/v1/users", {"name": "A", "email": "a@example.com", "is_staff": True, "password": "short"}),
    ("/v1/teams", {"name": "A", "member_ids": "usr_x"}),
    ("/v1/api-keys", {"name": None}),
])
def test_wrong_types_are_422(client, db, workspace, path, body):
    before = counts(db, workspace.id)
    r = client.post(path, json=body, headers=workspace.headers)
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"]
    assert counts(db, workspace.id) == before


def test_null_for_a_required_column_is_refused(client, db, workspace, objects):
    before = counts(db, workspace.id)
    r = client.patch(f"/v1/customers/{objects['customers']}", json={"name": None}, headers=workspace.headers)
    assert r.status_code == 422
    assert client.get(f"/v1/customers/{objects['customers']}", headers=workspace.headers).json()["name"] == "C"
    assert counts(db, workspace.id) == before


@pytest.fixture
def small_body_client(db, monkeypatch):
    """An app whose body cap is 2,000 bytes (settings are cached, so rebuild them around the app)."""
    from creditdesk.api.app import create_app

    monkeypatch.setenv("CREDITDESK_MAX_BODY_BYTES", "2000")
    get_settings.cache_clear()
    try:
        app = create_app(db=db)
        assert get_settings().max_body_bytes == 2000
        with TestClient(app) as test_client:
            yield test_client
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_oversize_bodies_are_413(small_body_client, db, workspace):
    client = small_body_client
    before = counts(db, workspace.id)
    big = {"name": "Acme", "notes": "x" * 5000}
    headers = {**workspace.headers, "Idempotency-Key": "big-one"}
    r = client.post("/v1/customers", json=big, headers=headers)
    assert_problem(r, 413, "payload_too_large")

    # Without a Content-Length (chunked upload) the cap holds too.
    def chunks():
        yield b'{"name": "Acme", "notes": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'
    r = client.post("/v1/customers", content=chunks(),
                    headers={**workspace.headers, "Content-Type": "application/json"})
    assert_problem(r, 413, "payload_too_large")
    assert counts(db, workspace.id) == before

    # The key was never claimed: a proper request with it runs.
    r = client.post("/v1/customers", json={"name": "Acme"}, headers=headers)
    assert r.status_code == 201
    assert "Idempotent-Replayed" not in r.headers

    # A body under the cap, chunked, goes through.
    def small():
        yield b'{"name": '
        yield b'"Small"}'
    r = client.post("/v1/customers", content=small(),
                    headers={**workspace.headers, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_missing_api_key_is_401(client, db, workspace):
    before = counts(db, workspace.id)
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
        r = client.post("/v1/customers", json={"name": "Acme"}, headers=headers)
        assert_problem(r, 401, "missing_api_key")
        assert r.headers["WWW-Authenticate"] == "Bearer"
    r = client.get("/v1/customers")
    assert_problem(r, 401, "missing_api_key")
    assert counts(db, workspace.id) == before


@pytest.mark.parametrize("key", ["cdk_not-a-real-key", "sk_live_something", "cdk_"])
def test_invalid_api_key_is_401(client, db, workspace, key):
    before = counts(db, workspace.id)
    r = client.post("/v1/customers", json={"name": "Acme"}, headers=auth(key))
    assert_problem(r, 401, "invalid_api_key")
    assert counts(db, workspace.id) == before


def test_revoked_api_key_is_401(client, db, workspace):
    created = client.post("/v1/api-keys", json={"name": "short-lived"}, headers=workspace.headers).json()
    secret = created["key"]
    assert client.get("/v1/customers", headers=auth(secret)).status_code == 200
    assert client.delete(f"/v1/api-keys/{created['id']}", headers=workspace.headers).status_code == 200
    before = counts(db, workspace.id)
    r = client.post("/v1/customers", json={"name": "Acme"}, headers=auth(secret))
    assert_problem(r, 401, "api_key_revoked")
    assert_problem(client.get("/v1/customers", headers=auth(secret)), 401, "api_key_revoked")
    assert counts(db, workspace.id) == before


def test_a_deactivated_users_key_is_401(client, db, workspace):
    actor = master_actor(db, workspace.id)
    user = make_user(db, actor=actor, name="Leaver", role="manager")
    secret = make_api_key(db, actor=actor, user_id=user)
    assert client.post("/v1/customers", json={"name": "Before"}, headers=auth(secret)).status_code == 201
    r = client.patch(f"/v1/users/{user}", json={"is_active": False}, headers=workspace.headers)
    assert r.status_code == 200 and r.json()["is_active"] is False
    before = counts(db, workspace.id)
    r = client.post("/v1/customers", json={"name": "After"}, headers=auth(secret))
    assert_problem(r, 401, "api_key_user_inactive")
    assert counts(db, workspace.id) == before


def test_role_escalation_by_a_manager_is_refused(client, db, workspace):
    actor = master_actor(db, workspace.id)
    office = make_office(db, actor=actor)
    manager = make_user(db, actor=actor, name="Manny", role="manager", permissions=["manage_users"],
                        primary_office_id=office)
    member = make_user(db, actor=actor, name="Mel", role="member")
    headers = auth(make_api_key(db, actor=actor, user_id=manager))
    before = counts(db, workspace.id)

    r = client.patch(f"/v1/users/{manager}", json={"role": "master"}, headers=headers)
    assert_problem(r, 403, "not_permitted")
    r = client.patch(f"/v1/users/{member}", json={"role": "master"}, headers=headers)
    assert_problem(r, 403, "not_permitted")
    r = client.post("/v1/users", json={"name": "Boss", "email": "boss@example.com", "is_staff": True,
                                       "role": "master"}, headers=headers)
    assert_problem(r, 403, "not_permitted")
    r = client.patch(f"/v1/users/{manager}", json={"permissions": ["manage_users", "manage_packs"]},
                     headers=headers)
    assert_problem(r, 403, "not_permitted")
    r = client.patch(f"/v1/users/{member}", json={"permissions": ["send_sms"]}, headers=headers)
    assert_problem(r, 403, "not_permitted")
    r = client.patch("/v1/workspace", json={"name": "Mine now"}, headers=headers)
    assert_problem(r, 403, "not_permitted")
    r = client.post("/v1/api-keys", json={"name": "as master", "user_id": workspace.master_id}, headers=headers)
    assert_problem(r, 403, "not_permitted")

    assert counts(db, workspace.id) == before
    with db.read():
        me = actor_of(db, manager)
    assert me.role == "manager" and me.permissions == frozenset({"manage_users"})
    assert client.get(f"/v1/users/{member}", headers=headers).json()["role"] == "member"


def test_unknown_routes_and_methods_are_problems(client, workspace):
    r = client.get("/v1/nothing-here", headers=workspace.headers)
    assert_problem(r, 404, "not_found")
    r = client.put("/v1/customers", json={}, headers=workspace.headers)
    assert_problem(r, 405, "method_not_allowed")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"limit": "ten"}])
def test_bad_query_parameters_are_422(client, workspace, params):
    r = client.get("/v1/customers", params=params, headers=workspace.headers)
    assert_problem(r, 422, "validation_error")


@pytest.mark.parametrize("method,path,body,field", [
    ("POST", "/v1/packs", {"holder": {"kind": "workspace"}, "credit_type": "credits", "quantity": True,
                           "name": "Boolean pack"}, "quantity"),
    ("PATCH", "/v1/sms/settings", {"tax_rate_bp": False}, "tax_rate_bp"),
])
def test_true_or_false_is_not_a_number(client, db, workspace, method, path, body, field):
    client.post("/v1/credit-types", json={"code": "credits", "name": "Credits"}, headers=workspace.headers)
    before = counts(db, workspace.id)
    r = client.request(method, path, json=body, headers=workspace.headers)
    problem = assert_problem(r, 422, "validation_error")
    assert [e["loc"][-1] for e in problem["errors"]] == [field], problem
    assert counts(db, workspace.id) == before


@pytest.mark.parametrize("path,params", [
    ("/v1/holds", {"created_from": "10000000.0"}),
    ("/v1/transfers", {"created_to": "1700000000"}),
    ("/v1/consumptions", {"created_from": "1e9"}),
    ("/v1/packs", {"expires_from": "0"}),
    ("/v1/audit-events", {"since": "12"}),
    ("/v1/invoices", {"due_before": "1764720000"}),
])
def test_a_number_is_not_a_date_in_a_query(client, workspace, path, params):
    # Pydantic would read these as seconds since 1970; the API documents ISO 8601 text only.
    r = client.get(path, params=params, headers=workspace.headers)
    problem = assert_problem(r, 422, "validation_error")
    assert [e["loc"][-1] for e in problem["errors"]] == list(params), problem


def test_eight_digits_are_an_iso_basic_date(client, workspace):
    ok = client.get("/v1/invoices", params={"due_before": "20261203"}, headers=workspace.headers)
    assert ok.status_code == 200, ok.text
    r = client.get("/v1/invoices", params={"due_before": "20261399"}, headers=workspace.headers)
    assert_problem(r, 422, "validation_error")


def test_a_number_is_not_a_date_in_a_body(client, db, workspace):
    client.post("/v1/credit-types", json={"code": "credits", "name": "Credits"}, headers=workspace.headers)
    before = counts(db, workspace.id)
    r = client.post("/v1/packs", json={"holder": {"kind": "workspace"}, "credit_type": "credits", "quantity": 5,
                                       "name": "Timestamp pack", "expires_at": 1900000000},
                    headers=workspace.headers)
    problem = assert_problem(r, 422, "validation_error")
    assert [e["loc"][-1] for e in problem["errors"]] == ["expires_at"], problem
    assert counts(db, workspace.id) == before
    ok = client.post("/v1/packs", json={"holder": {"kind": "workspace"}, "credit_type": "credits", "quantity": 5,
                                        "name": "Dated pack", "expires_at": "2030-01-01T00:00:00Z"},
                     headers=workspace.headers)
    assert ok.status_code == 201, ok.text


# --- deeply nested JSON (issue 10 item 14, finding F15) ----------------------------------------------------
# About 900 levels with a \u0000 inside made the NUL check recurse into RecursionError: an unauthenticated 500
# on any path, /login included. Bodies nesting deeper than MAX_JSON_DEPTH are refused before anything parses
# them (the NUL check, FastAPI's json.loads, the idempotency fingerprint), whatever their content type.

def _deep(depth: int, inner: str = '"\\u0000"', *, opener: str = "[", closer: str = "]") -> bytes:
    if opener == "{":
        return ('{"a":' * depth + inner + "}" * depth).encode()
    return ('{"a":' + opener * depth + inner + closer * depth + "}").encode()


@pytest.mark.parametrize("path", ["/v1/packs", "/login", "/v1/sms/purchases", "/v1/customers", "/healthz"])
def test_deep_json_is_400_before_anything_parses_it(client, db, workspace, path):
    before = counts(db, workspace.id)
    for depth in (100, 900, 5000, 100_000):
        for inner in ('"\\u0000"', '"x"', "1"):
            for body in (_deep(depth, inner), _deep(depth, inner, opener="{")):
                for headers in ({**workspace.headers, "Content-Type": "application/json"},
                                {"Content-Type": "application/json"}):  # unauthenticated as well
                    r = client.post(path, content=body, headers=headers)
                    assert_problem(r, 400, "malformed_json")
                    assert "nested" in r.json()["detail"]
    assert counts(db, workspace.id) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None, "application/json; charset=utf-16"])
def test_deep_json_under_another_content_type_is_400(client, db, workspace, content_type):
    # The idempotency fingerprint parses every write's body as JSON, whatever its label.
    headers = {**workspace.headers, "Idempotency-Key": "deep"}
    if content_type:
        headers["Content-Type"] = content_type
    for body in (_deep(5000, '"x"'), _deep(5000), _deep(5000).decode().encode("utf-16"),
                 b"\xef\xbb\xbf" + _deep(5000)):
        r = client.post("/v1/packs", content=body, headers=headers)
        assert_problem(r, 400, "malformed_json")


def test_json_up_to_the_depth_cap_is_parsed_as_usual(client, db, workspace):
    from creditdesk.api.middleware import MAX_JSON_DEPTH

    h = {**workspace.headers, "Content-Type": "application/json"}
    # Within the cap: the schema answers (422), not the depth check.
    r = client.post("/v1/customers", content=_deep(MAX_JSON_DEPTH - 1, '"x"'), headers=h)
    assert_problem(r, 422, "validation_error")
    r = client.post("/v1/customers", content=_deep(MAX_JSON_DEPTH - 1), headers=h)
    assert_problem(r, 422, "invalid_characters")
    # Brackets inside strings, escaped quotes and many sibling objects do not count as depth.
    name = '[[[[{{{{\\"' * 20  # 160 brackets, 180 characters
    r = client.post("/v1/customers", content=('{"name": "' + name + '"}').encode(), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name.replace('\\"', '"')
    wide = ('{"name": "Wide", "external_ref": null, "x": [' + ",".join(["{}"] * 5000) + "]}").encode()
    assert_problem(client.post("/v1/customers", content=wide, headers=h), 422, "unknown_field")


def test_the_depth_check_is_linear_on_hostile_bodies():
    import time

    from creditdesk.api.middleware import _json_too_deep

    for body in (b"[" + b"{}," * 300_000 + b"{}]", b'["' + b'\\"[' * 300_000 + b'"]', b'["' + b'"' * 900_000,
                 b"[" * 999_999, b'[' + b'"[' * 400_000):
        started = time.perf_counter()
        _json_too_deep(body)
        assert time.perf_counter() - started < 1.0, body[:20]


# --- amounts in the API (issue 10 item 3) -------------------------------------------------------------------
# The API takes amounts as integers in the smallest unit, parsed by pydantic, never through Decimal: exponent
# and comma forms are refused at once, as the back-office parser refuses them (guards, not regressions).

@pytest.mark.parametrize("value", ["1e300000", "1e999999999", "1.5", "1,5", "1,500", "Infinity", "9" * 5000])
def test_api_amounts_in_exponent_or_decimal_form_are_refused_at_once(client, db, workspace, value):
    import time

    h = workspace.headers
    client.post("/v1/credit-types", json={"code": "credits", "name": "Credits"}, headers=h)
    before = counts(db, workspace.id)
    started = time.perf_counter()
    assert_problem(client.get("/v1/packs", params={"remaining_min": value}, headers=h), 422, "validation_error")
    pack = '{"holder": {"kind": "workspace"}, "credit_type": "credits", "name": "x", "quantity": %s}'
    bodies = [pack % json.dumps(value)]  # as a JSON string
    if "," not in value and value != "Infinity":
        bodies.append(pack % value)  # as a JSON number
    for body in bodies:
        r = client.post("/v1/packs", content=body.encode(), headers={**h, "Content-Type": "application/json"})
        assert r.status_code in (400, 422), r.text
    assert time.perf_counter() - started < 2
    assert counts(db, workspace.id) == before


def test_a_currency_is_an_iso_4217_code(client, db, workspace):
    client.post("/v1/credit-types", json={"code": "credits", "name": "Credits"}, headers=workspace.headers)
    before = counts(db, workspace.id)
    r = client.post("/v1/packs", json={"holder": {"kind": "workspace"}, "credit_type": "credits", "quantity": 5,
                                       "name": "Dollars", "price_paid": 500, "currency": "DOL"},
                    headers=workspace.headers)
    problem = assert_problem(r, 422, "validation_error")
    assert "ISO 4217" in json.dumps(problem) and counts(db, workspace.id) == before
    ok = client.post("/v1/packs", json={"holder": {"kind": "workspace"}, "credit_type": "credits", "quantity": 5,
                                        "name": "Dollars", "price_paid": 500, "currency": "USD"},
                     headers=workspace.headers)
    assert ok.status_code == 201, ok.text
