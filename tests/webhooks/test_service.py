"""webhooks.emit from the services that change credits: one outbox row per subscribed endpoint written in the
change's own transaction, delivered after the commit to a real HTTP server on loopback that verifies the
signature; nothing for a change that rolls back or is refused; nothing at all without endpoints."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select

from creditdesk import audit, webhooks
from creditdesk.credits import schemas as cs
from creditdesk.credits import consumptions, packs
from creditdesk.credits.errors import InsufficientCredits
from creditdesk.webhooks import delivery, service
from creditdesk.webhooks import schemas as ws
from creditdesk.webhooks.models import WebhookDelivery
from tests.credits.helpers import consume, grant, make_shop, transfer

pytest_plugins = ["tests.webhooks.fixtures"]  # the receiver fixture: a real HTTP server on loopback

ALL = ["pack.created", "pack.depleted", "pack.voided", "consumption.created", "consumption.reversed",
       "transfer.created"]


def endpoint(db, actor, url: str, types=ALL, enabled: bool = True):
    """An endpoint and its secret, through the service."""
    def write(session):
        ep, secret = service.create_endpoint(session, ws.EndpointCreate(url=url, event_types=types, enabled=enabled),
                                             actor=actor)
        return ep.id, secret
    return db.write(write)


def deliveries(db, ws_id: str) -> list[WebhookDelivery]:
    with db.read() as session:
        rows = list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.workspace_id == ws_id)
                                    .order_by(WebhookDelivery.id)))
        session.expunge_all()
        return rows


def events(received) -> list[tuple[str, dict]]:
    """What arrived, in the order the events happened (ids sort by creation; a few threads deliver)."""
    return [(r.payload["type"], r.payload["data"]) for r in sorted(received, key=lambda r: r.payload["id"])]


@pytest.fixture
def shop(db):
    return make_shop(db, "Webhook shop")


def test_no_endpoint_no_rows(db, shop):
    pack = grant(db, shop.actor, "office", shop.berlin, 10)
    consume(db, shop.actor, "office", shop.berlin, 10)  # depletes it too
    assert deliveries(db, shop.ws) == []
    with db.read() as session:
        assert webhooks.emit(session, shop.ws, "pack.created", {"id": pack}) is None


def test_a_consumption_is_delivered_signed_and_verified(db, shop, receiver):
    ep, secret = endpoint(db, shop.actor, receiver.url)
    receiver.secret = secret
    pack = grant(db, shop.actor, "office", shop.berlin, 10)
    out = consume(db, shop.actor, "office", shop.berlin, 10, reference={"kind": "invoice", "id": "INV-1"})
    got = receiver.wait_for(3)
    assert delivery.wait_idle(10)
    assert all(r.verified for r in got), [r.headers for r in got]
    kinds = events(got)
    assert [k for k, _ in kinds] == ["pack.created", "consumption.created", "pack.depleted"]
    assert kinds[0][1]["id"] == pack and kinds[0][1]["quantity"] == 10
    assert kinds[1][1]["id"] == out.id and kinds[1][1]["lines"] == [{"pack_id": pack, "amount": 10}]
    assert kinds[2][1] == {"id": pack}
    # The webhook-id header is the event id in the body; every delivery is recorded as delivered.
    assert {r.headers["webhook-id"] for r in got} == {r.payload["id"] for r in got}
    rows = deliveries(db, shop.ws)
    assert [(r.status, r.last_status_code, r.endpoint_id) for r in rows] == [("delivered", 200, ep)] * 3
    assert all(r.next_attempt_at is None and r.last_latency_ms is not None for r in rows)


def test_a_rolled_back_change_sends_nothing(db, shop, receiver):
    endpoint(db, shop.actor, receiver.url)
    data = cs.PackCreate(holder={"kind": "office", "id": shop.berlin}, credit_type="credits", quantity=5, name="Gone")

    class Boom(Exception):
        pass

    def write(session):
        packs.grant_pack(session, data, actor=shop.actor)
        assert len(session.execute(select(WebhookDelivery).where(WebhookDelivery.workspace_id == shop.ws)).all()) == 1
        raise Boom()

    with pytest.raises(Boom):
        db.write(write)
    assert delivery.wait_idle(10)
    assert deliveries(db, shop.ws) == [] and receiver.received == []
    # A refused consumption writes nothing either.
    with pytest.raises(InsufficientCredits):
        consume(db, shop.actor, "office", shop.berlin, 1)
    assert delivery.wait_idle(10)
    assert deliveries(db, shop.ws) == [] and receiver.received == []


def test_only_subscribed_enabled_endpoints(db, shop, receiver):
    endpoint(db, shop.actor, receiver.url, types=["transfer.created"])
    endpoint(db, shop.actor, receiver.url + "?off", types=ALL, enabled=False)
    grant(db, shop.actor, "office", shop.berlin, 10)
    out = transfer(db, shop.actor, ("office", shop.paris), 4, source=("office", shop.berlin), memo="move")
    got = receiver.wait_for(1)
    assert delivery.wait_idle(10)
    assert len(receiver.received) == 1
    kind, data = events(got)[0]
    assert kind == "transfer.created" and data["id"] == out.id and data["amount"] == 4
    assert [r.event_type for r in deliveries(db, shop.ws)] == ["transfer.created"]


def test_one_event_id_for_every_endpoint(db, shop, receiver):
    endpoint(db, shop.actor, receiver.url, types=["pack.created"])
    endpoint(db, shop.actor, receiver.url + "?second", types=["pack.created"])
    grant(db, shop.actor, "office", shop.berlin, 10)
    got = receiver.wait_for(2)
    assert delivery.wait_idle(10)
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert len({r.endpoint_id for r in deliveries(db, shop.ws)}) == 2


def test_void_reverse_and_expiry_events(db, shop, receiver, frozen_clock):
    from datetime import timedelta

    from creditdesk.credits import expiry

    endpoint(db, shop.actor, receiver.url, types=["pack.voided", "consumption.reversed", "pack.expired"])
    voided = grant(db, shop.actor, "office", shop.berlin, 3)
    db.write(lambda s: packs.void_pack(s, voided, cs.VoidPack(reason="sold by mistake"), actor=shop.actor))
    kept = grant(db, shop.actor, "office", shop.berlin, 10, expires_at=frozen_clock.now() + timedelta(days=1))
    out = consume(db, shop.actor, "office", shop.berlin, 4)
    db.write(lambda s: consumptions.reverse_consumption(s, out.id, actor=shop.actor, reason="wrong project"))
    frozen_clock.advance(days=2)
    assert db.write(lambda s: expiry.expire_packs(s, [kept])) == 1
    got = receiver.wait_for(3)
    assert delivery.wait_idle(10)
    kinds = dict(events(got))
    assert kinds["pack.voided"]["id"] == voided and kinds["pack.voided"]["reason"] == "sold by mistake"
    assert kinds["consumption.reversed"]["id"] == out.id and kinds["consumption.reversed"]["status"] == "reversed"
    assert kinds["pack.expired"] == {"id": kept, "breakage": 10, "held": 0}


def test_the_secret_is_never_in_the_audit_log(db, shop):
    ep, secret = endpoint(db, shop.actor, "https://hooks.example.com/x")
    db.write(lambda s: service.rotate_secret(s, ep, actor=shop.actor))
    with db.read() as session:
        rows = session.scalars(select(audit.AuditEvent).where(audit.AuditEvent.object_id == ep)
                              .order_by(audit.AuditEvent.id)).all()
        assert [r.action for r in rows] == ["webhook_endpoint.create", "webhook_endpoint.rotate_secret"]
        assert "whsec_" not in json.dumps([r.after for r in rows])
        count = session.scalar(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.workspace_id == shop.ws))
    assert count == 0


def test_unknown_event_type_is_a_bug(db, shop):
    with db.read() as session, pytest.raises(ValueError):
        webhooks.emit(session, shop.ws, "pack.exploded", {})


def test_pack_expiring_once_per_pack_n_days_before(db, shop, receiver, frozen_clock):
    """pack.expiring: the workspace's warning lead (14 days by default) before a pack expires, once per pack,
    also with two jobs at once; nothing for a workspace without an endpoint that wants it."""
    from datetime import timedelta

    from creditdesk import clock
    from creditdesk.webhooks import expiring

    ep, secret = endpoint(db, shop.actor, receiver.url, types=["pack.expiring"])
    receiver.secret = secret
    soon = grant(db, shop.actor, "office", shop.berlin, 10, name="Soon", expires_at=clock.now() + timedelta(days=10))
    later = grant(db, shop.actor, "office", shop.berlin, 10, name="Later", expires_at=clock.now() + timedelta(days=20))
    grant(db, shop.actor, "office", shop.berlin, 10, name="Never")
    other = make_shop(db, "No endpoint shop")
    grant(db, other.actor, "office", other.berlin, 10, name="Elsewhere", expires_at=clock.now() + timedelta(days=2))
    results = []
    jobs = [threading.Thread(target=lambda: results.append(expiring.emit_all_due(db))) for _ in range(2)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    got = receiver.wait_for(1)
    assert delivery.wait_idle(10)
    assert [(k, d["id"], d["days_left"]) for k, d in events(got)] == [("pack.expiring", soon, 10)]
    assert all(r.verified for r in got)
    assert expiring.emit_all_due(db) == 0  # once per pack
    frozen_clock.advance(days=7)
    assert expiring.emit_all_due(db) == 1
    got = receiver.wait_for(2)
    assert delivery.wait_idle(10)
    assert [d["id"] for _, d in events(got)] == [soon, later]
    assert deliveries(db, other.ws) == []
    assert {r.endpoint_id for r in deliveries(db, shop.ws)} == {ep}
