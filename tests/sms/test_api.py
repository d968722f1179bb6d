"""The SMS credits REST API end to end: each rule of seed 003 through HTTP, with API keys of every role."""

from __future__ import annotations

import csv
import io

import pytest
from pypdf import PdfReader

from creditdesk.sms import service as sms
from tests.api.credits_world import Api, assert_ledger_clean, problem
from tests.api.helpers import audit_rows, auth
from tests.parties.factories import make_api_key, master_actor
from tests.sms.conftest import BILLING, RefusingSender


@pytest.fixture
def api(client, world, workspace):
    """An API client per user of the world, acting with that user's own key."""
    master = master_actor(world.db, world.ws)
    clients = {"master": Api(client, workspace.headers)}
    for name in ("Mia", "Max", "Ann", "Ben", "Dan", "Eve", "Cat"):
        clients[name] = Api(client, auth(make_api_key(world.db, actor=master, user_id=world.ids[name])))
    return clients


def purchase_body(world, for_name, quantity=10, **extra):
    target = {"kind": "workspace"} if for_name == "pool" else {"kind": "user", "id": world.ids[for_name]}
    return {"for": target, "quantity": quantity, "billing": BILLING, **extra}


def transfer_body(world, source, to, quantity, agree=True):
    def ref(name):
        return {"kind": "workspace"} if name == "pool" else {"kind": "user", "id": world.ids[name]}
    body = {"from": ref(source), "to": ref(to), "quantity": quantity}
    if agree is not None:
        body["agree_to_conditions"] = agree
    return body


def accounts(api, world, who) -> dict:
    names = {v: k for k, v in world.ids.items()} | {world.ws: "pool"}
    return {names[row["id"]]: row for row in api[who].get("/v1/sms/accounts").json()["data"]}


# --- settings ---

def test_settings_read_by_anyone_changed_by_masters_only(api, world):
    assert api["Ann"].get("/v1/sms/settings").json()["credit_mode"] == "individual"
    problem(api["Mia"].patch("/v1/sms/settings", {"credit_mode": "shared"}), 403, "not_permitted")
    # A change of mode is confirmed: without it, 409 with what the change leaves where it is, and nothing changes.
    problem(api["master"].patch("/v1/sms/settings", {"credit_mode": "shared", "unit_price": 12}), 409,
            "mode_change_unconfirmed")
    assert api["Ann"].get("/v1/sms/settings").json()["unit_price"] != 12
    out = api["master"].patch("/v1/sms/settings", {"credit_mode": "shared", "unit_price": 12,
                                                   "confirm_mode_change": True}, status=200).json()
    assert (out["credit_mode"], out["unit_price"]) == ("shared", 12)
    assert audit_rows(world.db, world.ws, action="workspace.sms_credit_mode")
    problem(api["master"].patch("/v1/sms/settings", {"credit_mode": "pooled"}), 422, "validation_error")
    problem(api["master"].patch("/v1/sms/settings", {"sms_credit_mode": "shared"}), 422, "unknown_field")
    problem(api["Ann"].post("/v1/sms/purchases", purchase_body(world, "Ann")), 409, "sms_credit_mode_shared")


# --- the Manage SMS credits box ---

def test_accounts_visibility_per_role(api, world):
    assert set(accounts(api, world, "master")) == {"pool", "master", "Mia", "Max", "Ann", "Ben", "Eve", "Cat"}
    assert set(accounts(api, world, "Mia")) == {"Mia", "Max", "Ann", "Ben", "Eve"}
    assert set(accounts(api, world, "Ann")) == {"Ann", "Ben"}
    row = accounts(api, world, "Ann")["Ben"]
    assert row["object"] == "sms_account" and row["actions"] == ["purchase", "transfer_to", "logs"]
    assert {"available", "held", "frozen", "can_send_sms", "is_self", "name", "email"} <= set(row)


# --- purchases ---

def test_purchase_for_self_applies_credits_and_offers_the_receipt(api, world):
    out = api["Ann"].post("/v1/sms/purchases", purchase_body(world, "Ann", 25), status=201).json()
    assert (out["object"], out["status"], out["for"], out["quantity"], out["number"], out["receipt_number"]) == (
        "sms_purchase", "paid", {"kind": "user", "id": world.ids["Ann"]}, 25, 1, "SMS-000001")
    assert (out["subtotal"], out["tax"], out["total"], out["currency"]) == (250, 25, 275, "AUD")
    assert out["billing"] == BILLING and out["created_by"] == world.ids["Ann"]
    assert out["receipt_url"] == f"/v1/sms/purchases/{out['id']}/receipt.pdf"
    assert accounts(api, world, "Ann")["Ann"]["available"] == 25
    assert api["Ann"].get(f"/v1/sms/purchases/{out['id']}").json() == out
    assert [p["id"] for p in api["Ann"].get("/v1/sms/purchases").json()["data"]] == [out["id"]]

    r = api["Ann"].client.get(out["receipt_url"], headers=api["Ann"].headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert 'filename="receipt-SMS-000001.pdf"' in r.headers["content-disposition"]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
    for expected in ("TAX INVOICE / RECEIPT", "SMS-000001", "Ann Example", "Test workspace", "AUD 0.10",
                     "AUD 2.50", "GST (10%)", "AUD 0.25", "AUD 2.75", "SMS credits for Ann"):
        assert expected in text, expected


@pytest.mark.parametrize(("who", "for_name", "status", "code"), [
    ("Ann", "Ben", 201, None), ("Ann", "Cat", 403, "not_permitted"), ("Ann", "pool", 403, "pool_master_only"),
    ("Ann", "Dan", 422, "recipient_cannot_send_sms"),
    ("Mia", "Eve", 201, None), ("Mia", "Cat", 403, "not_permitted"), ("Mia", "pool", 403, "pool_master_only"),
    ("master", "pool", 201, None), ("master", "Cat", 201, None), ("master", "Dan", 422, "recipient_cannot_send_sms"),
])
def test_who_may_buy_for_whom(api, world, who, for_name, status, code):
    r = api[who].post("/v1/sms/purchases", purchase_body(world, for_name, 5))
    if code:
        problem(r, status, code)
        target = "pool" if for_name == "pool" else for_name
        assert world.balance(target)["available"] == 0
    else:
        assert r.status_code == status, r.text
        assert r.json()["status"] == "paid"


def test_credits_only_on_successful_payment(api, world, test_payment_methods):
    declined = api["Ann"].post("/v1/sms/purchases", purchase_body(world, "Ann", 9, payment_method="test_declined"),
                               status=201).json()
    assert (declined["status"], declined["number"], declined["receipt_url"], declined["pack_id"]) == (
        "failed", None, None, None)
    assert accounts(api, world, "Ann")["Ann"]["available"] == 0
    problem(api["Ann"].get(f"/v1/sms/purchases/{declined['id']}/receipt.pdf", status=None), 409,
            "receipt_not_available")

    pending = api["Ann"].post("/v1/sms/purchases", purchase_body(world, "Ann", 9, payment_method="test_pending"),
                              status=201).json()
    assert pending["status"] == "pending" and accounts(api, world, "Ann")["Ann"]["available"] == 0
    problem(api["Ann"].post(f"/v1/sms/purchases/{pending['id']}/payment", {"status": "paid"}), 403, "not_permitted")
    paid = api["master"].post(f"/v1/sms/purchases/{pending['id']}/payment", {"status": "paid", "reference": "b-1"},
                              status=200).json()
    assert (paid["status"], paid["number"], paid["payment_reference"]) == ("paid", 1, "b-1")
    assert accounts(api, world, "Ann")["Ann"]["available"] == 9
    problem(api["master"].post(f"/v1/sms/purchases/{pending['id']}/payment", {"status": "paid"}), 409,
            "purchase_not_pending")


def test_a_retried_purchase_is_applied_once(api, world):
    body = purchase_body(world, "Ann", 40)
    first = api["Ann"].post("/v1/sms/purchases", body, key="buy-ann-40", status=201)
    again = api["Ann"].post("/v1/sms/purchases", body, key="buy-ann-40", status=201)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert accounts(api, world, "Ann")["Ann"]["available"] == 40
    assert len(api["Ann"].get("/v1/sms/purchases").json()["data"]) == 1


def test_purchase_input_is_checked(api, world):
    problem(api["Ann"].post("/v1/sms/purchases", {**purchase_body(world, "Ann"), "status": "paid"}), 422,
            "unknown_field")
    problem(api["Ann"].post("/v1/sms/purchases", purchase_body(world, "Ann", 0)), 422, "validation_error")
    bad = purchase_body(world, "Ann")
    bad["billing"] = {**BILLING, "email": "not an address"}
    problem(api["Ann"].post("/v1/sms/purchases", bad), 422, "validation_error")
    problem(api["Ann"].post("/v1/sms/purchases", purchase_body(world, "Ann", payment_method="cash")), 422,
            "unknown_payment_method")


def test_purchases_of_another_workspace_are_not_found(api, world, client, other_workspace):
    out = api["Ann"].post("/v1/sms/purchases", purchase_body(world, "Ann"), status=201).json()
    stranger = Api(client, other_workspace.headers)
    problem(stranger.get(f"/v1/sms/purchases/{out['id']}", status=None), 404, "not_found")
    problem(stranger.get(f"/v1/sms/purchases/{out['id']}/receipt.pdf", status=None), 404, "not_found")
    problem(api["Cat"].get(f"/v1/sms/purchases/{out['id']}", status=None), 404, "not_found")


# --- transfers ---

@pytest.fixture
def funded(api, world):
    api["master"].post("/v1/sms/purchases", purchase_body(world, "pool", 500), status=201)
    for name in ("Ann", "Ben", "Eve", "Cat"):
        api["master"].post("/v1/sms/purchases", purchase_body(world, name, 100), status=201)
    return api


@pytest.mark.parametrize(("who", "source", "to", "status", "code"), [
    ("master", "pool", "Cat", 201, None), ("master", "Cat", "pool", 201, None), ("master", "Ann", "Cat", 201, None),
    ("Mia", "Ben", "Eve", 201, None), ("Mia", "Ben", "Cat", 403, "not_permitted"),
    ("Mia", "pool", "Ben", 403, "pool_master_only"),
    ("Ann", "Ann", "Ben", 201, None), ("Ann", "Ben", "Ann", 403, "not_permitted"),
    ("Ann", "Ann", "Cat", 403, "not_permitted"), ("Ann", "Ann", "Dan", 422, "recipient_cannot_send_sms"),
])
def test_who_may_transfer_what_where(funded, world, who, source, to, status, code):
    r = funded[who].post("/v1/sms/transfers", transfer_body(world, source, to, 30))
    if code:
        problem(r, status, code)
        assert world.balance(source)["available"] == (500 if source == "pool" else 100)
    else:
        assert r.status_code == 201, r.text
        out = r.json()
        assert out["credit_type"] == "sms" and out["amount"] == 30
        assert world.balance(source)["available"] == (470 if source == "pool" else 70)


@pytest.mark.parametrize("agree", [None, False])
def test_transfer_needs_the_conditions_agreed(funded, world, agree):
    body = problem(funded["Ann"].post("/v1/sms/transfers", transfer_body(world, "Ann", "Ben", 5, agree=agree)), 422,
                   "conditions_not_agreed")
    assert body["conditions"] == sms.TRANSFER_CONDITIONS
    assert world.balance("Ben")["available"] == 100


def test_frozen_credits_over_http(funded, world):
    api = funded
    api["master"].patch(f"/v1/users/{world.ids['Ben']}", {"permissions": []}, status=200)
    ben = accounts(api, world, "Mia")["Ben"]
    assert (ben["available"], ben["frozen"], ben["can_send_sms"], ben["actions"]) == (
        0, 100, False, ["transfer_from", "logs"])
    problem(api["Ben"].post("/v1/messages", {"to": "+61400000001", "body": "hi"}), 403, "not_permitted")
    problem(api["Mia"].post("/v1/sms/transfers", transfer_body(world, "Ann", "Ben", 5)), 422,
            "recipient_cannot_send_sms")
    api["Mia"].post("/v1/sms/transfers", transfer_body(world, "Ben", "Ann", 100), status=201)
    assert world.balance("Ann")["available"] == 200 and world.balance("Ben")["frozen"] == 0


# --- messages ---

def test_send_consumes_own_credits_per_segment_and_lists_the_outbox(funded, world):
    api = funded
    msg = api["Ann"].post("/v1/messages", {"to": "+61 400 000 001", "body": "x" * 161,
                                           "on_behalf_of_user_id": world.ids["Ben"]}, status=201).json()
    assert (msg["object"], msg["status"], msg["segments"], msg["credits_charged"], msg["to"]) == (
        "sms_message", "accepted", 2, 2, "+61400000001")
    assert (msg["sender_user_id"], msg["on_behalf_of_user_id"]) == (world.ids["Ann"], world.ids["Ben"])
    assert world.balance("Ann")["available"] == 98 and world.balance("Ben")["available"] == 100
    assert [m["id"] for m in api["Ann"].get("/v1/messages").json()["data"]] == [msg["id"]]
    assert api["Ben"].get(f"/v1/messages/{msg['id']}").json() == msg  # sent on his behalf
    problem(api["Cat"].get(f"/v1/messages/{msg['id']}", status=None), 404, "not_found")
    assert_ledger_clean(world.db, world.ws)


def test_no_credits_no_send(api, world):
    body = problem(api["Ann"].post("/v1/messages", {"to": "+61400000001", "body": "Hello"}), 409,
                   "insufficient_credits")
    assert (body["available"], body["requested"]) == (0, 1)
    assert api["Ann"].get("/v1/messages").json()["data"] == []


def test_a_refused_message_is_kept_as_failed_and_charges_nothing(funded, world, sender_backend):
    sender_backend(RefusingSender())
    msg = funded["Ann"].post("/v1/messages", {"to": "+61400000001", "body": "Hi"}, status=201).json()
    assert (msg["status"], msg["credits_charged"], msg["failure_reason"]) == ("failed", 0, "Number unreachable")
    assert world.balance("Ann") == {"available": 100, "held": 0, "frozen": 0}
    assert funded["Ann"].get("/v1/messages", {"status": "failed"}).json()["data"][0]["id"] == msg["id"]


@pytest.mark.parametrize("body", [{"to": "hello", "body": "x"}, {"to": "+61400000001", "body": ""},
                                  {"to": "+61400000001", "body": "   "}, {"to": "+61400000001"}])
def test_message_input_is_checked(funded, body):
    problem(funded["Ann"].post("/v1/messages", body), 422, "validation_error")


def test_message_body_is_sent_as_written(funded):
    msg = funded["Ann"].post("/v1/messages", {"to": "+61400000001", "body": "  spaced  "}, status=201).json()
    assert msg["body"] == "  spaced  "


# --- logs ---

def test_logs_and_csv_of_the_last_30_days(funded, world, frozen_clock):
    api = funded
    frozen_clock.advance(days=5)
    api["Ann"].post("/v1/sms/transfers", transfer_body(world, "Ann", "Ben", 7), status=201)
    rows = api["Ann"].get("/v1/sms/logs", {"account": world.ids["Ann"]}).json()["data"]
    assert [(r["movement"], r["direction"], r["quantity"]) for r in rows] == [
        ("transfer_out", "out", 7), ("purchase", "in", 100)]
    assert rows[0]["counterparty"]["name"] == "Ben" and rows[0]["object"] == "sms_log_entry"
    problem(api["Ann"].get("/v1/sms/logs", {"account": world.ids["Cat"]}, status=None), 403, "not_permitted")
    problem(api["Ann"].get("/v1/sms/logs.csv", {"account": "workspace"}, status=None), 403, "not_permitted")
    problem(api["Ann"].get("/v1/sms/logs", {"acount": world.ids["Ann"]}, status=None), 422, "unknown_query_parameter")

    r = api["Ann"].get("/v1/sms/logs.csv", {"account": world.ids["Ann"]})
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0] == list(sms.LOG_CSV_COLUMNS) == [
        "date_utc", "account_kind", "account_id", "account_name", "direction", "movement", "quantity",
        "counterparty_kind", "counterparty_id", "counterparty_name", "reference", "memo", "reference_kind",
        "reference_id", "actor_id", "actor_name", "movement_id"]
    assert [(row[0], row[5], row[6], row[9]) for row in table[1:]] == [
        ("2026-01-20T12:00:00Z", "transfer_out", "7", "Ben"), ("2026-01-15T12:00:00Z", "purchase", "100", "")]

    frozen_clock.advance(days=26)  # day 31: the purchase is older than 30 days
    table = list(csv.reader(io.StringIO(api["Ann"].get("/v1/sms/logs.csv", {"account": world.ids["Ann"]}).text)))
    assert [row[5] for row in table[1:]] == ["transfer_out"]
    master_csv = list(csv.reader(io.StringIO(api["master"].get("/v1/sms/logs.csv").text)))
    assert {row[2] for row in master_csv[1:]} == {world.ids["Ann"], world.ids["Ben"]}


def test_logs_csv_streams_many_rows(api, world):
    for _ in range(3):
        api["master"].post("/v1/sms/purchases", purchase_body(world, "pool", 1000), status=201)
    for i in range(230):
        world.move("master", "pool", "Ann", 1)
    table = list(csv.reader(io.StringIO(api["master"].get("/v1/sms/logs.csv", {"account": "workspace"}).text)))
    assert len(table) == 1 + 3 + 230
    assert {row[5] for row in table[1:]} == {"purchase", "transfer_out"}
