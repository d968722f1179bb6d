"""/healthz, /metrics and the OpenAPI document."""

from __future__ import annotations

from fastapi.testclient import TestClient

from creditdesk.db import Database


def test_healthz(client, db):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == db.dialect
    assert "version" not in body  # which release runs is for monitoring, not anonymous callers (F13)


def test_healthz_shows_the_version_to_the_metrics_token_only(client, settings_env):
    from creditdesk import __version__

    settings_env(metrics_token="scrape-secret-1234")
    assert "version" not in client.get("/healthz", headers={"Authorization": "Bearer wrong"}).json()
    assert client.get("/healthz", headers={"Authorization": "Bearer scrape-secret-1234"}).json()["version"] == \
        __version__
    assert client.get("/openapi.json").json()["info"]["version"] == "1"  # the API's version, not the release


def test_healthz_answers_503_when_the_database_is_unreachable(tmp_path):
    from creditdesk.api.app import create_app

    broken = Database(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    with TestClient(create_app(db=broken)) as client:
        r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    broken.dispose()


def test_metrics_are_not_published_by_default(client):
    r = client.get("/metrics")
    assert r.status_code == 404
    assert "creditdesk_http_requests_total" not in r.text


def test_metrics_need_the_token_when_one_is_set(client, settings_env):
    settings_env(metrics_token="scrape-secret-1234", metrics_public="true")  # the token wins over public
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic c2NyYXBlLXNlY3JldC0xMjM0"},
                    {"Authorization": "scrape-secret-1234"}):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.headers["content-type"] == "application/problem+json"
        assert "creditdesk_http_requests_total" not in r.text
    r = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1234"})
    assert r.status_code == 200
    assert "creditdesk_http_requests_total" in r.text


def test_metrics_count_requests_by_route_template(client, workspace, settings_env):
    settings_env(metrics_public="true")  # published to anyone, e.g. on a private network
    client.get("/v1/customers", headers=workspace.headers)
    client.get("/v1/customers/cus_nothing", headers=workspace.headers)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "creditdesk_http_requests_total" in text
    assert "creditdesk_http_request_seconds_bucket" in text
    assert 'route="/v1/customers",status="200"' in text
    # Ids never become labels (one series per route, not per object).
    assert 'route="/v1/customers/{customer_id}",status="404"' in text
    assert "cus_nothing" not in text


def test_openapi_documents_the_api(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    paths = spec["paths"]
    for path in ("/v1/customers", "/v1/offices", "/v1/users", "/v1/teams", "/v1/api-keys", "/v1/audit-events",
                 "/v1/workspace"):
        assert path in paths, path
    params = {p["name"] for p in paths["/v1/customers"]["post"].get("parameters", [])}
    assert "Idempotency-Key" in params
    assert client.get("/docs").status_code == 200
