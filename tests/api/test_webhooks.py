"""Outbound webhooks through the API (issue 16): endpoints managed by masters (the secret shown once, also
under an Idempotency-Key replay), a consumption delivered signed to a real HTTP server on loopback and
verified there, the delivery log and replay, invoice events, rotation, and refusals (members, private URLs)."""

from __future__ import annotations

import pytest

from creditdesk.webhooks import delivery
from tests.api.helpers import audit_rows
from tests.api.test_billing_accounts import SETTINGS, Api
from tests.parties.factories import make_api_key, make_user, master_actor

pytest_plugins = ["tests.webhooks.fixtures"]  # the receiver fixture: a real HTTP server on loopback


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def office(api):
    api.post("/v1/credit-types", {"code": "hours", "name": "Hours"})
    return api.post("/v1/offices", {"name": "Berlin"})["id"]


def test_endpoints_crud_and_the_secret_shown_once(api, db, workspace):
    body = {"url": "https://hooks.example.com/creditdesk", "event_types": ["pack.created", "consumption.created"],
            "description": "ERP"}
    made = api.post("/v1/webhook-endpoints", body, key="ep-1")
    assert made["secret"].startswith("whsec_") and made["enabled"] and made["object"] == "webhook_endpoint"
    replayed = api.client.post("/v1/webhook-endpoints", json=body, headers={**api.headers, "Idempotency-Key": "ep-1"})
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == made["id"] and replayed.json()["secret"] is None
    shown = api.get(f"/v1/webhook-endpoints/{made['id']}")
    assert "secret" not in shown and shown["event_types"] == ["pack.created", "consumption.created"]
    assert [e["id"] for e in api.get("/v1/webhook-endpoints")["data"]] == [made["id"]]
    changed = api.patch(f"/v1/webhook-endpoints/{made['id']}", {"event_types": ["invoice.paid"], "enabled": False})
    assert (changed["event_types"], changed["enabled"]) == (["invoice.paid"], False)
    rotated = api.post(f"/v1/webhook-endpoints/{made['id']}/rotate-secret", status=200)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]
    api.call("DELETE", f"/v1/webhook-endpoints/{made['id']}", status=200)
    assert api.get(f"/v1/webhook-endpoints/{made['id']}", status=404)["code"] == "not_found"
    assert api.get("/v1/webhook-endpoints")["data"] == []
    actions = [e.action for e in audit_rows(db, workspace.id, object_id=made["id"])]
    assert actions == ["webhook_endpoint.create", "webhook_endpoint.update", "webhook_endpoint.rotate_secret",
                       "webhook_endpoint.delete"]


def test_a_consumption_arrives_signed_and_the_log_shows_it(api, office, receiver):
    ep = api.post("/v1/webhook-endpoints", {"url": receiver.url, "event_types": ["consumption.created"]})
    receiver.secret = ep["secret"]
    api.post("/v1/packs", {"holder": {"kind": "office", "id": office}, "credit_type": "hours", "quantity": 10,
                           "name": "Ten hours"})
    used = api.post("/v1/consumptions", {"context": {"kind": "office", "id": office}, "credit_type": "hours",
                                         "amount": 3, "reference": {"kind": "project", "id": "P-7"}})
    got = receiver.wait_for(1)
    assert delivery.wait_idle(10)
    assert got[0].verified and got[0].payload["type"] == "consumption.created"
    assert got[0].payload["data"]["id"] == used["id"] and got[0].payload["data"]["amount"] == 3
    log = api.get(f"/v1/webhook-deliveries?endpoint_id={ep['id']}")["data"]
    assert len(log) == 1 and (log[0]["status"], log[0]["last_status_code"]) == ("delivered", 200)
    assert log[0]["event_id"] == got[0].headers["webhook-id"] and log[0]["last_latency_ms"] is not None
    detail = api.get(f"/v1/webhook-deliveries/{log[0]['id']}")
    assert detail["payload"]["data"]["id"] == used["id"]
    assert [(a["status_code"], a["response_excerpt"]) for a in detail["attempt_log"]] == [(200, '{"ok":true}')]
    # Replay: the same event again, same id, verified again.
    replayed = api.post(f"/v1/webhook-deliveries/{log[0]['id']}/replay", status=200)
    assert replayed["status"] == "pending" and replayed["event_id"] == log[0]["event_id"]
    again = receiver.wait_for(2)
    assert delivery.wait_idle(10)
    assert again[1].verified and again[1].headers["webhook-id"] == log[0]["event_id"]
    assert api.get(f"/v1/webhook-deliveries/{log[0]['id']}")["attempts"] == 2
    other = api.post("/v1/webhook-endpoints", {"url": receiver.url + "?2", "event_types": ["pack.created"]})
    assert api.get(f"/v1/webhook-deliveries?endpoint_id={other['id']}")["data"] == []


def test_rotated_secret_signs_from_then_on(api, office, receiver):
    ep = api.post("/v1/webhook-endpoints", {"url": receiver.url, "event_types": ["pack.created"]})
    rotated = api.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", status=200)
    receiver.secret = ep["secret"]  # the old one
    api.post("/v1/packs", {"holder": {"kind": "office", "id": office}, "credit_type": "hours", "quantity": 1,
                           "name": "One"})
    got = receiver.wait_for(1)
    assert not got[0].verified
    receiver.secret = rotated["secret"]
    api.post("/v1/packs", {"holder": {"kind": "office", "id": office}, "credit_type": "hours", "quantity": 2,
                           "name": "Two"})
    assert receiver.wait_for(2)[1].verified


def test_invoice_posted_and_paid(api, receiver):
    api.patch("/v1/billing/settings", SETTINGS)
    api.post("/v1/products", {"code": "hours", "name": "Hours", "kind": "service", "unit": "hour"})
    customer = api.post("/v1/customers", {"name": "Acme"})["id"]
    account = api.post("/v1/accounts", {"customer_id": customer, "name": "Main"})["id"]
    ep = api.post("/v1/webhook-endpoints", {"url": receiver.url, "event_types": ["invoice.posted", "invoice.paid"]})
    receiver.secret = ep["secret"]
    inv = api.post("/v1/invoices", {"account_id": account, "lines": [{"product": "hours", "quantity": 2,
                                                                      "unit_price": 5000}]})
    api.post(f"/v1/invoices/{inv['id']}/post", status=200)
    api.post("/v1/payments", {"account_id": account, "amount": 10000, "method": "bank_transfer"})
    got = sorted(receiver.wait_for(2), key=lambda r: r.payload["id"])
    assert all(r.verified for r in got)
    assert [(r.payload["type"], r.payload["data"]["status"], r.payload["data"]["amount_due"]) for r in got] == [
        ("invoice.posted", "posted", 10000), ("invoice.paid", "settled", 0)]
    assert got[0].payload["data"]["number"] == "INV-000001"


def test_members_are_refused(api, db, workspace, client):
    ep = api.post("/v1/webhook-endpoints", {"url": "https://hooks.example.com/x", "event_types": ["pack.created"]})
    master = master_actor(db, workspace.id)
    for role in ("member", "manager"):
        user = make_user(db, actor=master, name=role.title(), role=role, permissions=["manage_packs", "manage_users"])
        them = Api(client, {"Authorization": f"Bearer {make_api_key(db, actor=master, user_id=user)}"})
        _all_refused(them, ep["id"])
    assert api.get(f"/v1/webhook-endpoints/{ep['id']}")["enabled"] is True


def _all_refused(them, endpoint_id: str) -> None:
    ep = {"id": endpoint_id}
    for method, path, body in (("POST", "/v1/webhook-endpoints", {"url": "https://a.example.com/x",
                                                                  "event_types": ["pack.created"]}),
                               ("GET", "/v1/webhook-endpoints", None), ("GET", f"/v1/webhook-endpoints/{ep['id']}", None),
                               ("PATCH", f"/v1/webhook-endpoints/{ep['id']}", {"enabled": False}),
                               ("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", None),
                               ("DELETE", f"/v1/webhook-endpoints/{ep['id']}", None),
                               ("GET", "/v1/webhook-deliveries", None)):
        assert them.call(method, path, body, status=403)["code"] == "not_permitted", (method, path)


def test_bad_urls_and_types_are_refused(api, settings_env):
    settings_env(webhooks_allow_private=0)
    for url in ("http://127.0.0.1:9000/x", "http://169.254.169.254/", "file:///etc/passwd"):
        r = api.post("/v1/webhook-endpoints", {"url": url, "event_types": ["pack.created"]}, status=422)
        assert r["code"] == "webhook_url_refused", url
    api.post("/v1/webhook-endpoints", {"url": "https://hooks.example.com/x", "event_types": ["pack.exploded"]},
             status=422)
    api.post("/v1/webhook-endpoints", {"url": "https://hooks.example.com/x", "event_types": []}, status=422)
    assert api.get("/v1/webhook-endpoints")["data"] == []
