"""Settings > Webhooks in the back office (issue 16): add an endpoint (its secret shown once, a resubmitted form
shows it no more), edit and disable it, the delivery log with status code, latency and response excerpt,
Replay, the banner of an endpoint disabled after failing, and members refused."""

from __future__ import annotations

import re

from creditdesk import clock
from creditdesk.credits import packs
from creditdesk.credits import schemas as cs
from creditdesk.webhooks import delivery, service
from creditdesk.webhooks import schemas as ws
from tests.parties.factories import master_actor
from tests.web.conftest import csrf_of, logged_in, once_key_of, post_form
from tests.webhooks.test_service import deliveries

pytest_plugins = ["tests.webhooks.fixtures"]  # the receiver fixture: a real HTTP server on loopback


def test_add_an_endpoint_and_see_its_secret_once(web, db, world, receiver):
    client = logged_in(web, world.master_email)
    assert 'id="webhooks-link"' in client.get("/settings").text
    page = client.get("/settings/webhooks").text
    data = {"url": receiver.url, "description": "ERP", "event_types": ["pack.created", "invoice.paid"],
            "csrf_token": csrf_of(page), "idempotency_key": once_key_of(page)}
    first = client.post("/settings/webhooks/endpoints", data=data, follow_redirects=False)
    assert first.status_code == 200, first.text
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', first.text).group(1)
    again = client.post("/settings/webhooks/endpoints", data=data, follow_redirects=True)
    assert again.status_code == 200 and "Already done" in again.text and secret not in again.text
    with db.read() as session:
        [endpoint] = service.list_endpoints(session, actor=master_actor(db, world.workspace_id))
        assert endpoint.secret == secret and endpoint.event_types == ["pack.created", "invoice.paid"]
    listing = client.get("/settings/webhooks").text
    assert receiver.url in listing and secret not in listing
    # Events go out signed with that secret.
    receiver.secret = secret
    db.write(lambda s: packs.grant_pack(s, cs.PackCreate(
        holder={"kind": "office", "id": world.london_id}, credit_type="hours", quantity=100, name="Web pack"),
        actor=master_actor(db, world.workspace_id)))
    assert receiver.wait_for(1)[0].verified


def test_edit_disable_and_refused_url(web, db, world, settings_env):
    actor = master_actor(db, world.workspace_id)
    endpoint, _ = db.write(lambda s: service.create_endpoint(s, ws.EndpointCreate(
        url="https://hooks.example.com/a", event_types=["pack.created"]), actor=actor))
    client = logged_in(web, world.master_email)
    url = f"/settings/webhooks/endpoints/{endpoint.id}"
    saved = post_form(client, url, {"url": "https://hooks.example.com/b", "description": "new",
                                    "event_types": ["pack.expired"]}, page=url)  # enabled unticked
    assert saved.status_code == 303, saved.text
    with db.read() as session:
        row = service.get_endpoint(session, world.workspace_id, endpoint.id)
        assert (row.url, row.event_types, row.enabled) == ("https://hooks.example.com/b", ["pack.expired"], False)
    settings_env(webhooks_allow_private=0)
    refused = post_form(client, url, {"url": "http://169.254.169.254/", "event_types": ["pack.expired"],
                                      "enabled": "on"}, page=url)
    assert refused.status_code == 422 and "link-local" in refused.text
    rotated = post_form(client, f"{url}/rotate-secret", {}, page=url)
    assert rotated.status_code == 200 and 'id="webhook-secret">whsec_' in rotated.text
    deleted = post_form(client, f"{url}/delete", {}, page=url)
    assert deleted.status_code == 303 and client.get(url).status_code == 404


def test_delivery_log_and_replay(web, db, world, receiver):
    actor = master_actor(db, world.workspace_id)
    receiver.reply = b"thanks, received"
    endpoint, receiver.secret = db.write(lambda s: service.create_endpoint(s, ws.EndpointCreate(
        url=receiver.url, event_types=["pack.voided"]), actor=actor))
    db.write(lambda s: packs.void_pack(s, world.leeds_pack, cs.VoidPack(reason="web test"), actor=actor))
    receiver.wait_for(1)
    assert delivery.wait_idle(10)
    [row] = deliveries(db, world.workspace_id)
    client = logged_in(web, world.master_email)
    page = client.get("/settings/webhooks").text
    log = page.split('id="webhook-log"', 1)[1]
    assert f'id="delivery-{row.id}"' in log and "pack.voided" in log and ">200<" in log and " ms<" in log
    detail = client.get(f"/settings/webhooks/deliveries/{row.id}").text
    assert "thanks, received" in detail and row.event_id in detail and world.leeds_pack in detail
    replayed = post_form(client, f"/settings/webhooks/deliveries/{row.id}/replay", {},
                         page=f"/settings/webhooks/deliveries/{row.id}")
    assert replayed.status_code == 303
    got = receiver.wait_for(2)
    assert delivery.wait_idle(10)
    assert got[1].verified and got[1].headers["webhook-id"] == row.event_id
    assert client.get(f"/settings/webhooks/deliveries/{row.id}").text.count("thanks, received") == 2


def test_a_disabled_endpoint_shows_a_banner(web, db, world):
    actor = master_actor(db, world.workspace_id)
    endpoint, _ = db.write(lambda s: service.create_endpoint(s, ws.EndpointCreate(
        url="https://hooks.example.com/down", event_types=["pack.created"]), actor=actor))

    def fail_for_a_day(session):
        row = service.get_endpoint(session, world.workspace_id, endpoint.id)
        row.failing_since = clock.now()
        delivery.disable(session, row, clock.now(), last_error="HTTP 500")
    db.write(fail_for_a_day)
    client = logged_in(web, world.master_email)
    page = client.get("/settings/webhooks").text
    assert f'id="disabled-{endpoint.id}"' in page and "HTTP 500" in page


def test_members_are_refused(web, db, world):
    actor = master_actor(db, world.workspace_id)
    endpoint, _ = db.write(lambda s: service.create_endpoint(s, ws.EndpointCreate(
        url="https://hooks.example.com/m", event_types=["pack.created"]), actor=actor))
    for email in (world.member_email, world.manager_email):
        client = logged_in(web.__class__(web.app, base_url="http://testserver"), email)
        assert 'id="webhooks-link"' not in client.get("/settings").text
        assert client.get("/settings/webhooks").status_code == 403
        assert client.get(f"/settings/webhooks/endpoints/{endpoint.id}").status_code == 403
        refused = post_form(client, "/settings/webhooks/endpoints", {"url": "https://x.example.com/",
                                                                      "event_types": ["pack.created"]})
        assert refused.status_code == 403
        assert post_form(client, f"/settings/webhooks/endpoints/{endpoint.id}/delete", {}).status_code == 403
    with db.read() as session:
        assert [e.id for e in service.list_endpoints(session, actor=actor)] == [endpoint.id]
