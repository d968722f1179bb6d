"""billing.stripe_gateway against a local fake of Stripe's API: the real SDK, real HTTP, no database."""

from __future__ import annotations

import json

import pytest
import stripe

from creditdesk.billing import gateways
from creditdesk.billing.gateways import GatewayError
from creditdesk.billing.stripe_gateway import StripeGateway

pytest_plugins = ["tests.billing.fake_stripe"]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    # The SDK waits at least half a second between retries; the fake needs no time to recover.
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.02)


def _register(gateway, token="pm_card_visa", customer_ref=None):
    return gateway.register_card(card_token=token, customer_ref=customer_ref, email="ada@example.com",
                                 name="Ada Lovelace")


def _charge(gateway, card, key="charge-1", amount=1999, currency="EUR"):
    return gateway.charge(amount=amount, currency=currency, customer_ref=card.customer_ref,
                          card_ref=card.card_ref, idempotency_key=key, description="Invoice INV-1")


def test_register_card_creates_customer_and_attaches_card(fake_stripe):
    card = _register(fake_stripe.gateway())

    assert card.brand == "visa" and card.last4 == "4242"
    assert (card.exp_month, card.exp_year) == (12, 2030)
    assert card.customer_ref.startswith("cus_") and card.customer_ref in fake_stripe.customers
    assert card.card_ref.startswith("pm_") and card.card_ref != "pm_card_visa"
    [created] = fake_stripe.requests_to("POST", "/v1/customers")
    assert created.form == {"email": "ada@example.com", "name": "Ada Lovelace"}
    assert created.headers["authorization"] == f"Bearer {fake_stripe.api_key}"
    [attached] = fake_stripe.requests_to("POST", "/v1/payment_methods/pm_card_visa/attach")
    assert attached.form == {"customer": card.customer_ref}
    assert "4242424242424242" not in repr(card)


def test_register_card_for_a_known_customer_creates_no_customer(fake_stripe):
    gateway = fake_stripe.gateway()
    first = _register(gateway)
    second = _register(gateway, token="pm_card_mastercard", customer_ref=first.customer_ref)

    assert second.customer_ref == first.customer_ref
    assert (second.brand, second.last4) == ("mastercard", "4444")
    assert len(fake_stripe.requests_to("POST", "/v1/customers")) == 1


def test_charge_succeeds_with_amount_and_currency_as_sent(fake_stripe):
    gateway = fake_stripe.gateway()
    card = _register(gateway)

    result = _charge(gateway, card, key="charge-ok", amount=1999, currency="EUR")

    assert result.status == "succeeded" and result.error_code is None
    assert result.reference.startswith("pi_")
    [intent] = fake_stripe.payment_intents
    assert intent["id"] == result.reference
    assert (intent["amount"], intent["currency"]) == (1999, "eur")
    [sent] = fake_stripe.requests_to("POST", "/v1/payment_intents")
    assert sent.headers["idempotency-key"] == "charge-ok"
    assert sent.form["amount"] == "1999" and sent.form["currency"] == "eur"
    assert sent.form["confirm"] == "true" and sent.form["off_session"] == "true"
    assert sent.form["customer"] == card.customer_ref and sent.form["payment_method"] == card.card_ref
    assert sent.form["description"] == "Invoice INV-1"


def test_same_idempotency_key_charges_once(fake_stripe):
    gateway = fake_stripe.gateway()
    card = _register(gateway)

    first = _charge(gateway, card, key="charge-twice")
    again = _charge(gateway, card, key="charge-twice")

    assert first.status == again.status == "succeeded"
    assert again.reference == first.reference
    assert len(fake_stripe.payment_intents) == 1
    assert len(fake_stripe.requests_to("POST", "/v1/payment_intents")) == 2


def test_another_idempotency_key_charges_again(fake_stripe):
    gateway = fake_stripe.gateway()
    card = _register(gateway)

    first = _charge(gateway, card, key="charge-a")
    second = _charge(gateway, card, key="charge-b")

    assert first.reference != second.reference
    assert len(fake_stripe.payment_intents) == 2


def test_declined_card_answers_failed(fake_stripe):
    gateway = fake_stripe.gateway()
    card = _register(gateway, token="pm_card_chargeDeclined")
    assert card.last4 == "0341"

    result = _charge(gateway, card, key="charge-declined")

    assert result.status == "failed"
    assert result.error_code == "card_declined"
    assert result.error == "Your card was declined."
    [intent] = fake_stripe.payment_intents
    assert result.reference == intent["id"] and intent["status"] == "requires_payment_method"


@pytest.mark.parametrize(("status", "expected"), [("processing", "pending"), ("requires_action", "failed")])
def test_intent_status_maps_to_charge_status(fake_stripe, status, expected):
    gateway = fake_stripe.gateway()
    card = _register(gateway)
    fake_stripe.intent_status = status

    result = _charge(gateway, card, key=f"charge-{status}")

    assert result.status == expected
    assert result.reference == fake_stripe.payment_intents[0]["id"]
    assert (result.error_code is None) == (expected == "pending")


def test_unknown_token_raises(fake_stripe):
    with pytest.raises(GatewayError) as raised:
        _register(fake_stripe.gateway(), token="pm_card_doesNotExist")

    assert "No such PaymentMethod" in str(raised.value)
    assert raised.value.code == "invalid_card_token"  # asking again will not help: not "unavailable"
    assert fake_stripe.payment_methods == {}


def test_wrong_api_key_raises(fake_stripe):
    card = _register(fake_stripe.gateway())
    wrong = fake_stripe.gateway(api_key="sk_test_wrong")

    with pytest.raises(GatewayError) as refused:
        _register(wrong)
    assert refused.value.code == "gateway_misconfigured"
    with pytest.raises(GatewayError) as raised:
        _charge(wrong, card, key="charge-wrong-key")

    assert raised.value.code == "gateway_unavailable"
    assert fake_stripe.requests[-1].headers["authorization"] == "Bearer sk_test_wrong"
    assert fake_stripe.payment_intents == []


def test_server_errors_beyond_retries_raise_gateway_unavailable(fake_stripe):
    gateway = fake_stripe.gateway()
    card = _register(gateway)
    fake_stripe.fail_next(3)  # the first try and both of the SDK's retries

    with pytest.raises(GatewayError) as raised:
        _charge(gateway, card, key="charge-outage")

    assert raised.value.code == "gateway_unavailable"
    attempts = fake_stripe.requests_to("POST", "/v1/payment_intents")
    assert [a.headers["idempotency-key"] for a in attempts] == ["charge-outage"] * 3
    assert fake_stripe.payment_intents == []

    # The caller tries again later with the same key, once Stripe is back.
    assert _charge(gateway, card, key="charge-outage").status == "succeeded"
    assert len(fake_stripe.payment_intents) == 1


def test_one_server_error_is_retried_with_the_same_key(fake_stripe):
    gateway = fake_stripe.gateway()
    card = _register(gateway)
    fake_stripe.fail_next(1)

    result = _charge(gateway, card, key="charge-retried")

    assert result.status == "succeeded"
    attempts = fake_stripe.requests_to("POST", "/v1/payment_intents")
    assert [a.headers["idempotency-key"] for a in attempts] == ["charge-retried", "charge-retried"]
    assert attempts[0].form == attempts[1].form
    [intent] = fake_stripe.payment_intents
    assert intent["id"] == result.reference


def test_nothing_returned_carries_more_than_the_last_four_digits(fake_stripe):
    gateway = fake_stripe.gateway()
    card = _register(gateway)
    result = _charge(gateway, card, key="charge-digits")

    returned = json.dumps([card.__dict__, result.__dict__])
    for number in ("4242424242424242", "424242424242"):
        assert number not in returned
    assert fake_stripe.api_key not in repr(gateway)


def test_get_gateway_stripe_follows_the_environment(fake_stripe, monkeypatch):
    gateways.unregister_gateway("stripe")
    monkeypatch.delenv("CREDITDESK_STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("CREDITDESK_STRIPE_API_BASE", raising=False)
    try:
        assert gateways.get_gateway("stripe") is None

        monkeypatch.setenv("CREDITDESK_STRIPE_API_KEY", fake_stripe.api_key)
        monkeypatch.setenv("CREDITDESK_STRIPE_API_BASE", fake_stripe.url)
        gateway = gateways.get_gateway("stripe")

        assert isinstance(gateway, StripeGateway)
        assert (gateway.code, gateway.label) == ("stripe", "Card (Stripe)")
        assert gateways.get_gateway("stripe") is gateway  # registered once configured
        card = _register(gateway)
        assert card.card_ref in fake_stripe.payment_methods
    finally:
        gateways.unregister_gateway("stripe")


def test_empty_api_key_means_not_configured(monkeypatch):
    gateways.unregister_gateway("stripe")
    monkeypatch.setenv("CREDITDESK_STRIPE_API_KEY", "")
    try:
        assert gateways.get_gateway("stripe") is None
    finally:
        gateways.unregister_gateway("stripe")


def test_unknown_card_ref_answers_failed_without_a_charge(fake_stripe):
    gateway = fake_stripe.gateway()
    card = _register(gateway)

    result = gateway.charge(amount=500, currency="eur", customer_ref=card.customer_ref, card_ref="pm_gone",
                            idempotency_key="charge-gone", description="Invoice INV-2")

    assert (result.status, result.error_code, result.reference) == ("failed", "resource_missing", None)
    assert fake_stripe.payment_intents == []


def test_unreachable_stripe_raises_gateway_unavailable(fake_stripe):
    gateway = fake_stripe.gateway()
    card = _register(gateway)
    fake_stripe.stop()

    with pytest.raises(GatewayError) as raised:
        _charge(gateway, card, key="charge-unreachable")

    assert raised.value.code == "gateway_unavailable"
    assert isinstance(raised.value.__cause__, stripe.APIConnectionError)
