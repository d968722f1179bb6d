"""Wallets and payment preferences through the API (seed 004): top up, pay an invoice, refund, the wallet
money refused on every credit path, and "charge first" by a wallet and by a card when the credit limit is
about to be exceeded (the card through a gateway registered for the test, charged after the commit, once)."""

from __future__ import annotations

import threading

import pytest

from creditdesk.billing import gateways, payment_preferences
from creditdesk.billing.wallet_models import GatewayCharge
from creditdesk.ledger import service as ledger
from tests.api.helpers import audit_rows
from tests.api.test_billing_accounts import SETTINGS, Api
from tests.parties.factories import make_api_key, make_user, master_actor
from tests.reliability.test_authorization_roles import workspace_state

pytest_plugins = ["tests.billing.fake_stripe"]  # the fake_stripe fixture: a local server playing Stripe


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def shop(api):
    api.patch("/v1/billing/settings", SETTINGS)
    api.post("/v1/tax-classes", {"code": "gst", "name": "GST"})
    api.post("/v1/tax-rates", {"tax_class": "gst", "rate_bp": 1000, "valid_from": "2020-01-01"})
    api.post("/v1/products", {"code": "hours", "name": "Consulting hours", "kind": "service", "unit": "hour",
                              "tax_class": "gst"})
    plan = api.post("/v1/price-plans", {"code": "aud", "name": "AUD", "currency": "AUD", "is_default": True})
    api.call("PUT", f"/v1/price-plans/{plan['id']}/prices", {"product": "hours", "unit_price": 15000}, status=200)
    customer = api.post("/v1/customers", {"name": "Acme"})["id"]
    account = api.post("/v1/accounts", {"customer_id": customer, "name": "Main"})
    return {"customer": customer, "account": account["id"]}


def draft_of(api, account, hours="2"):
    inv = api.post("/v1/invoices", {"account_id": account})
    return api.post(f"/v1/invoices/{inv['id']}/lines", {"product": "hours", "quantity": hours}, status=200)


def test_top_up_pay_refund(api, shop, db, workspace):
    account = shop["account"]
    assert api.get(f"/v1/accounts/{account}/wallet", status=404)["code"] == "no_wallet"
    wallet = api.post(f"/v1/accounts/{account}/wallet")
    assert (wallet["balance"], wallet["currency"], wallet["credit_type"]) == (0, "AUD", "wallet_aud")
    again = api.post(f"/v1/accounts/{account}/wallet", status=409)  # one wallet per account
    assert (again["code"], again["wallet_id"]) == ("wallet_exists", wallet["id"])
    top = api.post(f"/v1/accounts/{account}/wallet/top-ups", {"amount": 50000, "reference": "EFT 77"},
                   key="top-1")
    again = api.post(f"/v1/accounts/{account}/wallet/top-ups", {"amount": 50000, "reference": "EFT 77"},
                     key="top-1")
    assert again == top and top["kind"] == "top_up" and top["pack_id"].startswith("pack_")
    assert api.get(f"/v1/accounts/{account}/wallet")["balance"] == 50000
    # The account's balance does not move on a top up: the money is held in the wallet.
    assert api.get(f"/v1/accounts/{account}/balance")["balance"] == 0

    inv = api.post(f"/v1/invoices/{draft_of(api, account)['id']}/post", status=200)
    assert inv["amount_due"] == 33000
    paid = api.post(f"/v1/invoices/{inv['id']}/pay-from-wallet", {}, key="wpay-1")
    assert (paid["method"], paid["amount"], paid["allocations"][0]["invoice_id"]) == ("wallet", 33000, inv["id"])
    assert api.get(f"/v1/invoices/{inv['id']}")["status"] == "settled"
    assert api.get(f"/v1/accounts/{account}/wallet")["balance"] == 17000
    assert api.get(f"/v1/accounts/{account}/balance")["balance"] == 0

    before = workspace_state(db, workspace.id)
    problem = api.post(f"/v1/accounts/{account}/wallet/refunds", {"amount": 17001, "reason": "Closing"}, status=409)
    assert problem["code"] == "wallet_balance_too_low" and problem["balance"] == 17000
    assert workspace_state(db, workspace.id) == before
    refund = api.post(f"/v1/accounts/{account}/wallet/refunds", {"amount": 7000, "reason": "Customer asked"})
    assert (refund["kind"], refund["reference"]) == ("refund", "Customer asked")
    assert api.get(f"/v1/accounts/{account}/wallet")["balance"] == 10000
    kinds = [t["kind"] for t in api.get(f"/v1/accounts/{account}/wallet/transactions")["data"]]
    assert kinds == ["refund", "payment", "top_up"]
    assert {e.action for e in audit_rows(db, workspace.id, object_id=wallet["id"])} == {
        "wallet.open", "wallet.top_up", "wallet.payment", "wallet.refund"}
    assert _verify(db, workspace.id)


def _verify(db, workspace_id):
    with db.read() as session:
        return ledger.verify(session, workspace_id=workspace_id).ok


def test_wallet_money_moves_only_through_the_wallet(api, shop, client, workspace):
    account = shop["account"]
    api.post(f"/v1/accounts/{account}/wallet")
    top = api.post(f"/v1/accounts/{account}/wallet/top-ups", {"amount": 1000})
    holder = {"kind": "customer", "id": shop["customer"]}
    refused = [
        ("POST", "/v1/packs", {"holder": holder, "credit_type": "wallet_aud", "quantity": 100, "name": "Free money"}),
        ("POST", "/v1/consumptions", {"context": {"kind": "customer", "id": shop["customer"]},
                                      "credit_type": "wallet_aud", "amount": 100}),
        ("POST", "/v1/holds", {"context": {"kind": "customer", "id": shop["customer"]}, "credit_type": "wallet_aud",
                               "amount": 100}),
        ("POST", f"/v1/packs/{top['pack_id']}/void", {"reason": "x"}),
    ]
    for method, path, body in refused:
        r = client.request(method, path, json=body, headers=workspace.headers)
        assert r.status_code in (403, 422) and r.json()["code"] in ("wallet_money", "source_reserved"), \
            (path, r.status_code, r.text)
    assert api.get(f"/v1/accounts/{account}/wallet")["balance"] == 1000
    r = client.post("/v1/packs", json={"holder": holder, "credit_type": "wallet_aud", "quantity": 1,
                                       "name": "x", "source": "wallet"}, headers=workspace.headers)
    assert r.status_code in (403, 422)


def test_only_card_and_wallet_preferences_opt_in(api, shop):
    account = shop["account"]
    problem = api.post("/v1/payment-preferences", {"account_id": account, "kind": "bank_transfer",
                                                   "opt_in_purchases": True}, status=422)
    assert problem["code"] == "opt_in_card_or_wallet"
    assert api.post("/v1/payment-preferences", {"account_id": account, "kind": "wallet"}, status=409)["code"] == \
        "no_wallet"
    assert api.post("/v1/payment-preferences", {"account_id": account, "kind": "card"}, status=422)["code"] == \
        "gateway_required"
    bank = api.post("/v1/payment-preferences", {"account_id": account, "kind": "bank_transfer"})
    assert (bank["opt_in_purchases"], bank["cards"]) == (False, [])
    assert api.patch(f"/v1/payment-preferences/{bank['id']}", {"opt_in_subscriptions": True}, status=422)["code"] \
        == "opt_in_card_or_wallet"
    listed = api.get(f"/v1/payment-preferences?account_id={account}")["data"]
    assert [p["id"] for p in listed] == [bank["id"]]


def limited(api, account, limit):
    api.post(f"/v1/accounts/{account}/credit-terms", {"credit_limit": limit}, status=200)


def test_charge_first_from_the_wallet(api, shop, db, workspace):
    account = shop["account"]
    limited(api, account, 10000)
    draft = draft_of(api, account)  # 330.00 with tax, over the 100.00 limit
    assert api.post(f"/v1/invoices/{draft['id']}/post", status=409)["code"] == "credit_limit_exceeded"
    api.post(f"/v1/accounts/{account}/wallet")
    api.post(f"/v1/accounts/{account}/wallet/top-ups", {"amount": 20000})
    pref = api.post("/v1/payment-preferences", {"account_id": account, "kind": "wallet", "opt_in_purchases": True})
    # The wallet has 200.00: paying it keeps the balance (130.00) over the limit: still refused.
    ask = {"account_id": account, "event": "invoice_post", "amount": 33000}
    assert api.post("/v1/decisions/spend", ask, status=200)["allowed"] is False
    assert api.post(f"/v1/invoices/{draft['id']}/post", status=409)["code"] == "credit_limit_exceeded"
    api.post(f"/v1/accounts/{account}/wallet/top-ups", {"amount": 20000})
    decision = api.post("/v1/decisions/spend", ask, status=200)
    assert decision["allowed"] is True and "charge_first" in [r["code"] for r in decision["reasons"]]
    posted = api.post(f"/v1/invoices/{draft['id']}/post", status=200)
    assert (posted["status"], posted["amount_paid"], posted["amount_due"]) == ("settled", 33000, 0)
    assert api.get(f"/v1/accounts/{account}/wallet")["balance"] == 7000
    assert api.get(f"/v1/accounts/{account}/balance")["balance"] == 0
    # Opted out: no longer used.
    api.patch(f"/v1/payment-preferences/{pref['id']}", {"opt_in_purchases": False})
    other = draft_of(api, account)
    assert api.post(f"/v1/invoices/{other['id']}/post", status=409)["code"] == "credit_limit_exceeded"


class FakeGateway:
    """A gateway in memory: registers any token, charges once per idempotency key."""

    code = "stripe"
    label = "Card (test)"

    def __init__(self, decline: bool = False):
        self.decline = decline
        self.charges: dict[str, gateways.ChargeResult] = {}
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def register_card(self, *, card_token, customer_ref, email, name):
        if card_token == "pm_bad":
            raise gateways.GatewayError("No such PaymentMethod", code="invalid_card_token")
        return gateways.RegisteredCard(customer_ref=customer_ref or "cus_1", card_ref=card_token, brand="visa",
                                       last4="4242", exp_month=12, exp_year=2030)

    def charge(self, *, amount, currency, customer_ref, card_ref, idempotency_key, description):
        with self.lock:
            self.calls.append(idempotency_key)
            if idempotency_key not in self.charges:
                self.charges[idempotency_key] = (
                    gateways.ChargeResult("failed", error_code="card_declined", error="Declined")
                    if self.decline else gateways.ChargeResult("succeeded", reference=f"pi_{len(self.charges)}"))
            return self.charges[idempotency_key]


@pytest.fixture
def fake_gateway():
    gateway = FakeGateway()
    previous = gateways.register_gateway(gateway)
    yield gateway
    gateways.unregister_gateway("stripe")
    if previous is not None:
        gateways.register_gateway(previous)


def card_preference(api, account):
    pref = api.post("/v1/payment-preferences", {"account_id": account, "kind": "card", "gateway": "stripe",
                                                "opt_in_purchases": True})
    card = api.post(f"/v1/payment-preferences/{pref['id']}/cards", {"card_token": "pm_card_visa"})
    assert (card["last4"], card["brand"], card["is_default"]) == ("4242", "visa", True)
    return pref, card


def test_charge_first_by_card_after_the_commit_once(api, shop, db, workspace, fake_gateway):
    account = shop["account"]
    limited(api, account, 10000)
    pref, card = card_preference(api, account)
    assert api.post(f"/v1/payment-preferences/{pref['id']}/cards", {"card_token": "pm_bad"}, status=422)["code"] \
        == "invalid_card_token"
    draft = draft_of(api, account)
    answer = api.post(f"/v1/invoices/{draft['id']}/post", status=200, key="post-card")
    assert answer["status"] == "draft" and answer["pending_charge_id"]  # decided, then charged after the commit
    charge = api.get(f"/v1/gateway-charges/{answer['pending_charge_id']}")
    assert (charge["status"], charge["amount"], charge["card_id"]) == ("succeeded", 33000, card["id"])
    invoice = api.get(f"/v1/invoices/{draft['id']}")
    assert (invoice["status"], invoice["amount_paid"], invoice["pending_charge_id"]) == ("settled", 33000, None)
    assert fake_gateway.calls == [f"creditdesk:{charge['id']}"]
    replay = api.post(f"/v1/invoices/{draft['id']}/post", status=200, key="post-card")
    assert replay == answer and fake_gateway.calls == [f"creditdesk:{charge['id']}"]
    assert api.get(f"/v1/accounts/{account}/balance")["balance"] == 0
    actions = [e.action for e in audit_rows(db, workspace.id, object_id=charge["id"])]
    assert sorted(actions) == ["gateway_charge.create", "gateway_charge.succeeded"]


def test_a_declined_card_leaves_the_draft_and_says_why(api, shop, fake_gateway):
    fake_gateway.decline = True
    account = shop["account"]
    limited(api, account, 10000)
    card_preference(api, account)
    draft = draft_of(api, account)
    answer = api.post(f"/v1/invoices/{draft['id']}/post", status=200)
    charge = api.get(f"/v1/gateway-charges/{answer['pending_charge_id']}")
    assert (charge["status"], charge["error_code"]) == ("failed", "card_declined")
    invoice = api.get(f"/v1/invoices/{draft['id']}")
    assert (invoice["status"], invoice["pending_charge_id"]) == ("draft", None)
    assert api.get(f"/v1/accounts/{account}/balance")["balance"] == 0


def test_a_charge_left_due_by_a_crash_is_made_once_by_the_job(api, shop, db, fake_gateway, monkeypatch,
                                                              frozen_clock):
    from datetime import timedelta

    from creditdesk import external_calls

    account = shop["account"]
    limited(api, account, 10000)
    card_preference(api, account)
    draft = draft_of(api, account)
    monkeypatch.setattr(payment_preferences.external_calls, "run_after_commit", lambda session, row, complete: None)
    answer = api.post(f"/v1/invoices/{draft['id']}/post", status=200)
    assert fake_gateway.calls == [] and api.get(f"/v1/invoices/{draft['id']}")["status"] == "draft"
    monkeypatch.undo()
    assert payment_preferences.complete_due_charges(db) == 0  # its lease has not ended
    frozen_clock.advance(timedelta(seconds=external_calls.CALL_LEASE_SECONDS + 1))
    assert payment_preferences.complete_due_charges(db) == 1
    assert payment_preferences.complete_due_charges(db) == 0
    assert fake_gateway.calls == [f"creditdesk:{answer['pending_charge_id']}"]
    assert api.get(f"/v1/invoices/{draft['id']}")["status"] == "settled"
    with db.read() as session:
        assert session.get(GatewayCharge, answer["pending_charge_id"]).charge_due_at is None


def test_members_may_not_touch_wallets_or_preferences(api, shop, client, db, workspace):
    account = shop["account"]
    wallet_world = api.post(f"/v1/accounts/{account}/wallet")
    assert wallet_world["balance"] == 0
    master = master_actor(db, workspace.id)
    member = make_user(db, actor=master, name="Member", role="member")
    headers = {"Authorization": "Bearer " + make_api_key(db, actor=master, user_id=member)}
    before = workspace_state(db, workspace.id)
    for path, body in [(f"/v1/accounts/{account}/wallet/top-ups", {"amount": 100}),
                       (f"/v1/accounts/{account}/wallet/refunds", {"amount": 1, "reason": "x"}),
                       ("/v1/payment-preferences", {"account_id": account, "kind": "manual"})]:
        assert client.post(path, json=body, headers=headers).status_code == 403, path
    assert workspace_state(db, workspace.id) == before


@pytest.fixture
def stripe_configured(fake_stripe, monkeypatch):
    """The Stripe adapter, on the official SDK, speaking HTTP to a local server playing Stripe."""
    gateways.unregister_gateway("stripe")
    monkeypatch.setenv("CREDITDESK_STRIPE_API_KEY", fake_stripe.api_key)
    monkeypatch.setenv("CREDITDESK_STRIPE_API_BASE", fake_stripe.url)
    yield fake_stripe
    gateways.unregister_gateway("stripe")


def test_charge_first_through_the_stripe_adapter(api, shop, stripe_configured):
    stripe = stripe_configured
    account = shop["account"]
    limited(api, account, 10000)
    pref = api.post("/v1/payment-preferences", {"account_id": account, "kind": "card", "gateway": "stripe",
                                                "opt_in_purchases": True})
    card = api.post(f"/v1/payment-preferences/{pref['id']}/cards", {"card_token": "pm_card_visa"})
    assert (card["last4"], card["brand"]) == ("4242", "visa")
    stored = api.get(f"/v1/payment-preferences/{pref['id']}")
    assert "4242424242424242" not in str(stored)  # only the gateway's ids and the last four digits
    problem = api.post(f"/v1/payment-preferences/{pref['id']}/cards", {"card_token": "pm_card_doesNotExist"},
                       status=422)
    assert problem["code"] == "invalid_card_token"
    draft = draft_of(api, account)
    answer = api.post(f"/v1/invoices/{draft['id']}/post", status=200)
    [intent] = stripe.payment_intents
    assert (intent["amount"], intent["currency"]) == (33000, "aud")
    charge = api.get(f"/v1/gateway-charges/{answer['pending_charge_id']}")
    assert (charge["status"], charge["gateway_ref"]) == ("succeeded", intent["id"])
    [sent] = [r for r in stripe.requests if r.path.endswith("/payment_intents")]
    assert sent.headers["idempotency-key"] == f"creditdesk:{charge['id']}"
    assert api.get(f"/v1/invoices/{draft['id']}")["status"] == "settled"
