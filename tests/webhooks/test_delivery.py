"""Webhook delivery: at least once with stable event ids (a worker killed with kill -9 mid-delivery, the
delivery made again by the next run with the same id), the backoff schedule over a day, an endpoint
disabled after a day of failures (masters emailed), replays, the timeout and the 1 KiB excerpt, and the
refusal of loopback, private and link-local targets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from creditdesk import clock, migrate
from creditdesk.errors import Conflict
from creditdesk.jobs import runner
from creditdesk.webhooks import delivery, service
from creditdesk.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.api.helpers import audit_rows
from tests.credits.helpers import grant, make_shop
from tests.notify.conftest import Inbox, _free_port
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_service import deliveries, endpoint

pytest_plugins = ["tests.webhooks.fixtures"]  # the receiver fixture: a real HTTP server on loopback


def one_delivery(db, ws_id: str) -> WebhookDelivery:
    rows = deliveries(db, ws_id)
    assert len(rows) == 1, rows
    return rows[0]


def attempts(db, delivery_id: str) -> list[WebhookAttempt]:
    with db.read() as session:
        rows = list(session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                                    .order_by(WebhookAttempt.id)))
        session.expunge_all()
        return rows


def endpoint_row(db, endpoint_id: str) -> WebhookEndpoint:
    with db.read() as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        session.expunge(row)
        return row


@pytest.fixture
def shop(db):
    return make_shop(db, "Delivery shop")


# --- at least once, stable ids ------------------------------------------------------------------------------

def test_a_worker_killed_mid_delivery_is_redelivered_with_the_same_event_id(empty_db, monkeypatch, frozen_clock):
    db = empty_db
    migrate.upgrade(db)
    frozen_clock.set(datetime.now(UTC))
    shop = make_shop(db, "Kill shop")
    slow = Receiver(delay=60).start()
    try:
        ep, slow.secret = endpoint(db, shop.actor, slow.url, types=["pack.created"])
        # The request's process dies right after its commit: the after-commit hand-over never happens.
        monkeypatch.setattr(delivery, "dispatch", lambda db, delivery_id: None)
        pack = grant(db, shop.actor, "office", shop.berlin, 10)
        row = one_delivery(db, shop.ws)
        assert (row.status, row.attempts) == ("pending", 1)
        # Its lease over: the jobs of another process take it, and are killed while the receiver is slow.
        db.write(lambda s: s.execute(update(WebhookDelivery).where(WebhookDelivery.id == row.id).values(
            next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))))
        child = subprocess.Popen([sys.executable, "-c", "from creditdesk.cli import app; app()", "jobs", "run",
                                  "--database-url", db.url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 env={**os.environ, "CREDITDESK_WEBHOOKS_ALLOW_PRIVATE": "1"})
        assert slow.arrived.wait(60), child.communicate(timeout=5)[0]
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed = one_delivery(db, shop.ws)
        assert (killed.status, killed.attempts) == ("pending", 2)  # claimed, never recorded
        assert clock.aware(killed.next_attempt_at) > datetime.now(UTC)  # leased to the dead worker
        assert attempts(db, row.id) == []
        # The lease runs out; the next run of the jobs delivers it again.
        slow.delay = 0
        frozen_clock.set(datetime.now(UTC) + timedelta(minutes=10))
        assert runner.run_all(db)["webhooks_delivered"] == 1
        got = slow.wait_for(2)
        assert len(got) == 2 and all(r.verified for r in got)
        assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"] == row.event_id
        assert got[0].body == got[1].body and got[1].payload["data"]["id"] == pack
        done = one_delivery(db, shop.ws)
        assert (done.status, done.attempts, done.last_status_code) == ("delivered", 3, 200)
        assert runner.run_all(db)["webhooks_delivered"] == 0  # nothing more: delivered once recorded
        assert len(slow.received) == 2
    finally:
        slow.stop()


# --- retries ------------------------------------------------------------------------------------------------

def test_backoff_schedule_then_disabled_after_a_day(db, shop, receiver, frozen_clock, settings_env):
    inbox = Inbox()
    port = _free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    settings_env(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_seconds=10)
    try:
        receiver.status = 503
        receiver.reply = b"down for maintenance"
        ep, _ = endpoint(db, shop.actor, receiver.url, types=["pack.created"])
        start = frozen_clock.now()
        grant(db, shop.actor, "office", shop.berlin, 10)
        assert delivery.wait_idle(10)
        schedule = []
        while True:
            row = one_delivery(db, shop.ws)
            if row.next_attempt_at is None:
                break
            due = clock.aware(row.next_attempt_at)
            schedule.append(int((due - start).total_seconds() // 60))
            frozen_clock.set(due - timedelta(seconds=1))
            assert delivery.deliver_due(db, workspace_id=shop.ws) == 0  # not before its time
            frozen_clock.set(due)
            assert delivery.deliver_due(db, workspace_id=shop.ws) == 1
        # 1, 2, 4, ... minutes after each failure, the last retry at the end of the day.
        assert schedule == [1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, 1440]
        assert (row.status, row.attempts, row.last_status_code) == ("failed", 12, 503)
        assert len(receiver.received) == 12
        log = attempts(db, row.id)
        assert [a.status_code for a in log] == [503] * 12 and log[0].response_excerpt == "down for maintenance"
        gone = endpoint_row(db, ep)
        assert not gone.enabled and "503" in gone.disabled_reason
        assert [e.action for e in audit_rows(db, shop.ws, object_id=ep)][-1] == "webhook_endpoint.disable"
        master_emails = [m for m in inbox.messages if "disabled" in m["Subject"]]
        assert len(master_emails) == 1 and receiver.url in master_emails[0].get_content()
        # A disabled endpoint gets nothing more, and its deliveries cannot be replayed until enabled.
        grant(db, shop.actor, "office", shop.berlin, 1)
        assert len(deliveries(db, shop.ws)) == 1
        with pytest.raises(Conflict):
            db.write(lambda s: service.replay(s, row.id, actor=shop.actor))
    finally:
        smtp.stop()


def test_a_success_ends_the_run_of_failures(db, shop, receiver, frozen_clock):
    receiver.answers = [500]
    ep, _ = endpoint(db, shop.actor, receiver.url, types=["pack.created"])
    grant(db, shop.actor, "office", shop.berlin, 10)
    assert delivery.wait_idle(10)
    assert endpoint_row(db, ep).failing_since is not None
    frozen_clock.advance(minutes=1)
    assert delivery.deliver_due(db, workspace_id=shop.ws) == 1
    row = one_delivery(db, shop.ws)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 2, 200)
    assert endpoint_row(db, ep).failing_since is None


def test_backoff_function():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert delivery.backoff(1) == timedelta(minutes=1) and delivery.backoff(5) == timedelta(minutes=16)
    assert delivery.next_attempt_at(start + timedelta(hours=23, minutes=59), 11, start) == start + timedelta(days=1)
    assert delivery.next_attempt_at(start + timedelta(days=1), 12, start) is None


# --- replay, timeout, excerpt ---------------------------------------------------------------------------------

def test_replay_sends_the_same_event_again(db, shop, receiver):
    ep, receiver.secret = endpoint(db, shop.actor, receiver.url, types=["pack.created"])
    grant(db, shop.actor, "office", shop.berlin, 10)
    receiver.wait_for(1)
    assert delivery.wait_idle(10)
    first = one_delivery(db, shop.ws)
    assert first.status == "delivered"
    db.write(lambda s: service.replay(s, first.id, actor=shop.actor))
    got = receiver.wait_for(2)
    assert delivery.wait_idle(10)
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"] and got[1].verified
    again = one_delivery(db, shop.ws)
    assert (again.status, again.attempts) == ("delivered", 2) and len(attempts(db, first.id)) == 2
    assert [e.action for e in audit_rows(db, shop.ws, object_id=first.id)] == ["webhook_delivery.replay"]


def test_timeout_and_excerpt(db, shop, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.5)
    receiver.delay = 2
    endpoint(db, shop.actor, receiver.url, types=["pack.created"])
    grant(db, shop.actor, "office", shop.berlin, 10)
    assert delivery.wait_idle(10)
    slow = one_delivery(db, shop.ws)
    assert slow.status == "pending" and slow.last_status_code is None and "No answer within" in slow.last_error
    receiver.delay = 0
    receiver.reply = "é".encode() * 3000
    outcome = delivery.send(receiver.url, service.new_secret(), "whevt_x", "{}")
    assert outcome.ok and len(outcome.excerpt.encode()) <= 1024 and outcome.excerpt.startswith("éé")


def test_redirects_are_not_followed(receiver):
    receiver.status = 302
    outcome = delivery.send(receiver.url, service.new_secret(), "whevt_x", "{}")
    assert outcome.status_code == 302 and not outcome.ok and len(receiver.received) == 1


# --- server-side request forgery -------------------------------------------------------------------------------

REFUSED = ["http://127.0.0.1:8080/x", "http://localhost/x", "http://10.1.2.3/", "http://192.168.0.1/",
           "http://172.16.5.4/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://0.0.0.0/",
           "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/", "ftp://example.com/", "https://user:pw@example.com/",
           "javascript:alert(1)", "http:///nohost"]


@pytest.mark.parametrize("url", REFUSED)
def test_private_targets_are_refused(url, settings_env):
    settings_env(webhooks_allow_private=0)
    with pytest.raises(delivery.UnsafeTarget):
        delivery.check_url(url)


def test_public_address_is_taken(settings_env):
    settings_env(webhooks_allow_private=0)
    assert delivery.check_url("https://93.184.215.14/hooks") == "https://93.184.215.14/hooks"


def test_a_host_that_turned_private_is_not_sent_to(db, shop, receiver, settings_env):
    ep, _ = endpoint(db, shop.actor, receiver.url, types=["pack.created"])  # allowed when it was made
    settings_env(webhooks_allow_private=0)
    with pytest.raises(delivery.UnsafeTarget):
        db.write(lambda s: service.create_endpoint(s, service.s.EndpointCreate(
            url=receiver.url, event_types=["pack.created"]), actor=shop.actor))
    grant(db, shop.actor, "office", shop.berlin, 10)
    assert delivery.wait_idle(10)
    row = one_delivery(db, shop.ws)
    assert row.status == "pending" and "127.0.0.1" in row.last_error
    assert receiver.received == [] and attempts(db, row.id)[0].status_code is None
    time.sleep(0.1)
    assert receiver.received == []
