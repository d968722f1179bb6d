"""External calls (the payment method's charge, the sender backend's send) run after the commit, outside any
transaction, once, with an idempotency key; a call whose request died after its commit is completed by the
recovery job, exactly once (F19 of the 2026-12-02 probe, issue 10 item 19)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from creditdesk.credits.models import Hold, Pack
from creditdesk.jobs import runner
from creditdesk.sms import payments, senders
from creditdesk.sms import schemas as s
from creditdesk.sms import service as sms
from creditdesk.sms.models import SmsMessage, SmsPurchase
from tests.api.credits_world import Api, assert_ledger_clean
from tests.api.helpers import audit_rows, auth
from tests.parties.factories import make_api_key, master_actor
from tests.sms.conftest import BILLING


def no_transaction_open(db) -> bool:
    """Nothing of this process holds a connection (so no transaction is open), and on SQLite another write
    gets through at once: the call does not sit on the single writer."""
    if db.engine.pool.checkedout() != 0:
        return False
    if db.is_sqlite and db._write_lock.locked():
        return False
    done = threading.Event()

    def other_write():
        db.write(lambda session: None)
        done.set()
    thread = threading.Thread(target=other_write, daemon=True)
    thread.start()
    return done.wait(10)


class CountingGateway:
    """A card gateway that dedupes on the idempotency key, as a real one does: a second call with a key it has
    seen answers the first answer and charges nothing."""

    code, label = "test_counting_card", "A card gateway that counts"

    def __init__(self, db, *, status="paid"):
        self.db = db
        self.status = status
        self.calls: list[tuple[str, str]] = []  # (purchase id, idempotency key)
        self.charged: dict[str, payments.PaymentResult] = {}
        self.outside_transactions: list[bool] = []
        self.committed_first: list[bool] = []

    def charge(self, purchase, *, idempotency_key):
        self.outside_transactions.append(no_transaction_open(self.db))
        with self.db.read() as session:
            row = session.get(SmsPurchase, purchase.id)
            self.committed_first.append(row is not None and row.status == "pending")
        self.calls.append((purchase.id, idempotency_key))
        if idempotency_key not in self.charged:
            self.charged[idempotency_key] = payments.PaymentResult(status=self.status,
                                                                   reference=f"card:{len(self.charged) + 1}")
        return self.charged[idempotency_key]


class CountingSender:
    name = "test_counting_sender"

    def __init__(self, db):
        self.db = db
        self.calls: list[tuple[str, str]] = []
        self.sent: dict[str, senders.SendResult] = {}
        self.outside_transactions: list[bool] = []

    def send(self, message, *, idempotency_key):
        self.outside_transactions.append(no_transaction_open(self.db))
        self.calls.append((message.id, idempotency_key))
        if idempotency_key not in self.sent:
            self.sent[idempotency_key] = senders.SendResult(accepted=True, provider_reference=f"sms:{len(self.sent) + 1}")
        return self.sent[idempotency_key]


@pytest.fixture
def gateway(db):
    method = CountingGateway(db)
    payments.register_payment_method(method)
    yield method
    payments.unregister_payment_method(method.code)


@pytest.fixture
def sender(db):
    backend = CountingSender(db)
    previous = senders.set_sender(backend)
    yield backend
    senders.set_sender(previous)


def purchase_body(world, for_name, quantity, method=CountingGateway.code) -> s.PurchaseCreate:
    return s.PurchaseCreate.model_validate({"for": {"kind": "user", "id": world.ids[for_name]}, "quantity": quantity,
                                            "billing": BILLING, "payment_method": method})


def purchase_row(db, purchase_id) -> SmsPurchase:
    with db.read() as session:
        row = session.get(SmsPurchase, purchase_id)
        session.expunge(row)
        return row


def message_row(db, message_id) -> SmsMessage:
    with db.read() as session:
        row = session.get(SmsMessage, message_id)
        session.expunge(row)
        return row


def packs_for(db, ws, purchase_id) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Pack).where(Pack.workspace_id == ws,
                                                                           Pack.external_ref == purchase_id))


@pytest.fixture
def crash_after_commit(monkeypatch):
    """From the call on, the process "dies" right after each commit: the after-commit call never happens."""
    return lambda: monkeypatch.setattr(sms, "_after_commit", lambda session, row, complete: None)


# --- after the commit, outside any transaction, once -------------------------------------------------------

def test_the_gateway_is_charged_once_after_the_commit_outside_any_transaction(world, gateway):
    purchase = world.buy("Ann", "user", "Ann", 10, method=gateway.code)
    assert (purchase.status, purchase.payment_reference, purchase.charge_due_at) == ("paid", "card:1", None)
    assert gateway.calls == [(purchase.id, sms.external_idempotency_key(purchase.id))]
    assert gateway.outside_transactions == [True]
    assert gateway.committed_first == [True]  # the purchase was committed (pending) before the charge
    assert world.balance("Ann")["available"] == 10
    assert [r.action for r in audit_rows(world.db, world.ws, object_id=purchase.id)] == [
        "sms_purchase.create", "sms_purchase.paid"]


def test_the_sender_is_called_once_after_the_commit_outside_any_transaction(world, sender):
    world.buy("Ann", "user", "Ann", 10)
    message = world.send("Ann", "Hello")
    assert (message.status, message.provider_reference, message.credits_charged) == ("accepted", "sms:1", 1)
    assert sender.calls == [(message.id, sms.external_idempotency_key(message.id))]
    assert sender.outside_transactions == [True]
    assert world.balance("Ann") == {"available": 9, "held": 0, "frozen": 0}


def serialization_failure() -> DBAPIError:
    class Orig(Exception):
        sqlstate = "40001"
    return DBAPIError("COMMIT", {}, Orig("could not serialize access due to concurrent update"))


def write_retried_once(db, fn):
    """Run fn in a write transaction whose first attempt PostgreSQL refuses with a serialization failure.
    PostgreSQL: Database.write's own retry. SQLite has one writer and never retries: the same loop here."""
    if not db.is_sqlite:
        return db.write(fn)
    for attempt in range(2):
        try:
            with db.transaction() as session:
                return fn(session)
        except DBAPIError:
            if attempt:
                raise


def test_a_retried_transaction_charges_once(world, gateway):
    attempts = []
    actor = world.actor("Ann")

    def fn(session):
        purchase = sms.create_purchase(session, purchase_body(world, "Ann", 7), actor=actor)
        attempts.append(purchase.id)
        if len(attempts) == 1:
            raise serialization_failure()
        return purchase

    purchase = write_retried_once(world.db, fn)
    assert len(attempts) == 2 and purchase.id == attempts[1]
    assert purchase.status == "paid"
    assert [call[0] for call in gateway.calls] == [attempts[1]]  # the rolled-back attempt charged nothing
    assert world.balance("Ann")["available"] == 7
    with world.db.read() as session:
        assert session.get(SmsPurchase, attempts[0]) is None


def test_a_retried_transaction_sends_once(world, sender):
    world.buy("Ann", "user", "Ann", 10)
    attempts = []
    actor = world.actor("Ann")

    def fn(session):
        message = sms.send_message(session, s.MessageCreate(to="+61400000001", body="Once"), actor=actor)
        attempts.append(message.id)
        if len(attempts) == 1:
            raise serialization_failure()
        return message

    message = write_retried_once(world.db, fn)
    assert len(attempts) == 2 and message.status == "accepted"
    assert [call[0] for call in sender.calls] == [attempts[1]]
    assert world.balance("Ann") == {"available": 9, "held": 0, "frozen": 0}
    assert_ledger_clean(world.db, world.ws)


def test_a_purchase_rolled_back_with_its_savepoint_is_never_charged(world, gateway):
    """As WriteContext does with a refused request: the outer transaction commits, the purchase does not."""
    actor = world.actor("Ann")

    def fn(session):
        savepoint = session.begin_nested()
        sms.create_purchase(session, purchase_body(world, "Ann", 2), actor=actor)
        savepoint.rollback()

    world.write(fn)
    assert gateway.calls == [] and world.balance("Ann")["available"] == 0


# --- a crash after the commit: the recovery job completes it, once -----------------------------------------

def test_a_purchase_left_due_by_a_crash_is_charged_once_by_the_job(world, gateway, crash_after_commit,
                                                                   frozen_clock):
    crash_after_commit()
    purchase = world.buy("Ann", "user", "Ann", 12, method=gateway.code)
    assert purchase.status == "pending" and purchase.charge_due_at is not None
    assert gateway.calls == [] and world.balance("Ann")["available"] == 0
    # The request that made it owns the call for its lease: the job leaves it alone meanwhile.
    assert sms.complete_due_calls(world.db, workspace_id=world.ws) == 0
    frozen_clock.advance(timedelta(seconds=sms.CALL_LEASE_SECONDS + 1))
    assert sms.complete_due_calls(world.db, workspace_id=world.ws) == 1
    assert gateway.calls == [(purchase.id, sms.external_idempotency_key(purchase.id))]
    assert gateway.outside_transactions == [True]
    row = purchase_row(world.db, purchase.id)
    assert (row.status, row.charge_due_at, row.number) == ("paid", None, 1)
    assert world.balance("Ann")["available"] == 12
    frozen_clock.advance(timedelta(hours=2))
    assert sms.complete_due_calls(world.db, workspace_id=world.ws) == 0  # done: never again
    assert len(gateway.calls) == 1 and packs_for(world.db, world.ws, purchase.id) == 1


def test_the_job_runner_completes_calls_left_due(world, gateway, crash_after_commit, frozen_clock):
    crash_after_commit()
    purchase = world.buy("Ann", "user", "Ann", 3, method=gateway.code)
    frozen_clock.advance(timedelta(seconds=sms.CALL_LEASE_SECONDS + 1))
    assert runner.run_all(world.db)["sms_calls_completed"] >= 1
    assert purchase_row(world.db, purchase.id).status == "paid" and len(gateway.calls) == 1


def test_charged_but_not_recorded_is_charged_again_with_the_same_key_and_granted_once(world, gateway, monkeypatch,
                                                                                      frozen_clock):
    real = sms._record_charge
    failures = []

    def dies_once(session, purchase_id, result, *, actor):
        if not failures:
            failures.append(purchase_id)
            raise RuntimeError("the process died after the gateway answered")
        return real(session, purchase_id, result, actor=actor)
    monkeypatch.setattr(sms, "_record_charge", dies_once)

    purchase = world.buy("Ann", "user", "Ann", 5, method=gateway.code)
    assert purchase.status == "pending" and len(gateway.calls) == 1  # charged, not recorded
    frozen_clock.advance(timedelta(seconds=sms.CALL_LEASE_SECONDS + 1))
    assert sms.complete_due_calls(world.db, workspace_id=world.ws) == 1
    key = sms.external_idempotency_key(purchase.id)
    assert gateway.calls == [(purchase.id, key), (purchase.id, key)]  # the gateway dedupes on the key
    assert len(gateway.charged) == 1
    assert purchase_row(world.db, purchase.id).status == "paid"
    assert world.balance("Ann")["available"] == 5 and packs_for(world.db, world.ws, purchase.id) == 1


def test_two_recoveries_of_the_same_purchase_record_it_once(world, gateway, crash_after_commit, frozen_clock):
    crash_after_commit()
    purchase = world.buy("Ann", "user", "Ann", 4, method=gateway.code)
    first = sms.complete_purchase(world.db, purchase.id)
    second = sms.complete_purchase(world.db, purchase.id)
    assert first.status == second.status == "paid"
    assert len(gateway.calls) == 1 and world.balance("Ann")["available"] == 4
    assert [r.action for r in audit_rows(world.db, world.ws, object_id=purchase.id)] == [
        "sms_purchase.create", "sms_purchase.paid"]


def test_a_master_settling_a_purchase_still_due_stops_its_charge(world, gateway, crash_after_commit, frozen_clock):
    crash_after_commit()
    purchase = world.buy("Ann", "user", "Ann", 6, method=gateway.code)
    world.write(lambda session: sms.settle_purchase(session, purchase.id, s.PaymentOutcome(status="failed"),
                                                    actor=world.actor("master")))
    frozen_clock.advance(timedelta(seconds=sms.CALL_LEASE_SECONDS + 1))
    assert sms.complete_due_calls(world.db, workspace_id=world.ws) == 0
    assert gateway.calls == [] and purchase_row(world.db, purchase.id).status == "failed"


def test_a_message_left_due_by_a_crash_is_sent_once_by_the_job(world, sender, crash_after_commit, frozen_clock):
    world.buy("Ann", "user", "Ann", 10)
    crash_after_commit()
    message = world.send("Ann", "Hello")
    assert message.status == "sending" and sender.calls == []
    assert world.balance("Ann") == {"available": 9, "held": 1, "frozen": 0}
    frozen_clock.advance(timedelta(seconds=sms.CALL_LEASE_SECONDS + 1))
    assert sms.complete_due_calls(world.db, workspace_id=world.ws) == 1
    assert sender.calls == [(message.id, sms.external_idempotency_key(message.id))]
    assert sender.outside_transactions == [True]
    row = message_row(world.db, message.id)
    assert (row.status, row.credits_charged, row.send_due_at) == ("accepted", 1, None)
    assert world.balance("Ann") == {"available": 9, "held": 0, "frozen": 0}
    assert sms.complete_due_calls(world.db, workspace_id=world.ws) == 0 and len(sender.calls) == 1
    assert_ledger_clean(world.db, world.ws)


def test_a_message_whose_hold_lapsed_before_recovery_is_not_sent_and_costs_nothing(world, sender, crash_after_commit,
                                                                                  frozen_clock):
    world.buy("Ann", "user", "Ann", 10)
    crash_after_commit()
    message = world.send("Ann", "Too late")
    frozen_clock.advance(timedelta(seconds=sms.HOLD_TIMEOUT_SECONDS + 1))
    assert sms.complete_due_calls(world.db, workspace_id=world.ws) == 1
    assert sender.calls == []  # a late SMS is worse than none
    row = message_row(world.db, message.id)
    assert (row.status, row.credits_charged) == ("failed", 0) and "lapsed" in row.failure_reason
    with world.db.read() as session:
        assert session.get(Hold, row.hold_id).status == "timed_out"
    assert world.balance("Ann") == {"available": 10, "held": 0, "frozen": 0}
    assert_ledger_clean(world.db, world.ws)


# --- through the API: the answer shows the outcome, as before ---------------------------------------------

@pytest.fixture
def ann_api(client, world):
    key = make_api_key(world.db, actor=master_actor(world.db, world.ws), user_id=world.ids["Ann"])
    return Api(client, auth(key))


def test_the_api_answers_the_outcome_and_a_replay_charges_nothing_more(ann_api, world, gateway):
    body = {"for": {"kind": "user", "id": world.ids["Ann"]}, "quantity": 9, "billing": BILLING,
            "payment_method": gateway.code}
    first = ann_api.post("/v1/sms/purchases", body, key="buy-once", status=201)
    assert (first.json()["status"], first.json()["payment_reference"]) == ("paid", "card:1")
    replay = ann_api.post("/v1/sms/purchases", body, key="buy-once", status=201)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()
    assert len(gateway.calls) == 1 and gateway.outside_transactions == [True]
    assert world.balance("Ann")["available"] == 9


def test_the_api_answers_a_sent_message(ann_api, world, sender):
    world.buy("Ann", "user", "Ann", 3)
    out = ann_api.post("/v1/messages", {"to": "+61400000001", "body": "Hi"}, status=201).json()
    assert (out["status"], out["credits_charged"], out["provider_reference"]) == ("accepted", 1, "sms:1")
    assert len(sender.calls) == 1 and sender.outside_transactions == [True]
