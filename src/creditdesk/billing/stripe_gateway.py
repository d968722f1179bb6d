"""The Stripe gateway: cards registered and charged through Stripe, behind `billing.gateways.Gateway`.

Why the official `stripe` package rather than hand-written HTTP: it encodes Stripe's form parameters,
maps Stripe's error answers to typed exceptions and retries network failures and 5xx answers with the
same Idempotency-Key, which is what makes a retried charge safe. The card number never reaches us: the
caller hands over a Stripe PaymentMethod id (made by Stripe.js in the customer's browser), and we keep
only what Stripe answers about it (customer and payment method ids, brand, last four digits, expiry).

Configured by environment variables, read when the "stripe" gateway is first asked for:
- CREDITDESK_STRIPE_API_KEY: the secret key (sk_live_... or sk_test_...); unset or empty means Stripe
  is not configured and `gateways.get_gateway("stripe")` answers None.
- CREDITDESK_STRIPE_API_BASE: optional, another API address (stripe-mock, or the fake of the tests).

Each gateway owns a `stripe.StripeClient`, never the module-level `stripe.api_key`, so two keys (or a
test's fake) can live in one process without stepping on each other.
"""

from __future__ import annotations

import os

import stripe

from creditdesk.billing.gateways import ChargeResult, GatewayError, RegisteredCard

API_KEY_VARIABLE = "CREDITDESK_STRIPE_API_KEY"
API_BASE_VARIABLE = "CREDITDESK_STRIPE_API_BASE"


class StripeGateway:
    code = "stripe"
    label = "Card (Stripe)"

    def __init__(self, api_key: str, api_base: str | None = None):
        self.api_base = api_base
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            # The SDK retries only what is safe to retry (connection errors, 409, 5xx) and reuses the
            # request's Idempotency-Key, so a retry never charges twice.
            max_network_retries=2,
        )

    def __repr__(self) -> str:  # never the key: gateways end up in logs
        return f"StripeGateway(api_base={self.api_base!r})"

    def register_card(self, *, card_token: str, customer_ref: str | None, email: str | None,
                      name: str) -> RegisteredCard:
        try:
            if customer_ref is None:
                params: dict = {"name": name}
                if email:
                    params["email"] = email
                customer_ref = self._client.v1.customers.create(params=params).id
            method = self._client.v1.payment_methods.attach(card_token, params={"customer": customer_ref})
        except stripe.CardError as err:
            raise GatewayError(_message(err), code=err.code or "card_declined") from err
        except stripe.InvalidRequestError as err:
            # The token itself is wrong (unknown, used, another account's): asking again will not help.
            raise GatewayError(_message(err), code="invalid_card_token") from err
        except stripe.AuthenticationError as err:
            raise GatewayError("The server's Stripe key is refused by Stripe.", code="gateway_misconfigured") from err
        except stripe.StripeError as err:
            raise GatewayError(_message(err), code="gateway_unavailable") from err
        card = _field(method, "card")
        if card is None:
            raise GatewayError("The payment method is not a card.", code="not_a_card")
        return RegisteredCard(customer_ref=customer_ref, card_ref=method.id, brand=_field(card, "brand") or "",
                              last4=_field(card, "last4") or "", exp_month=int(_field(card, "exp_month") or 0),
                              exp_year=int(_field(card, "exp_year") or 0))

    def charge(self, *, amount: int, currency: str, customer_ref: str, card_ref: str, idempotency_key: str,
               description: str) -> ChargeResult:
        try:
            intent = self._client.v1.payment_intents.create(
                params={
                    "amount": amount,
                    "currency": currency.lower(),
                    "customer": customer_ref,
                    "payment_method": card_ref,
                    "confirm": True,
                    # The customer is not there to pass a 3-D Secure check: Stripe must decline rather
                    # than wait for an action nobody will take.
                    "off_session": True,
                    "description": description,
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as err:
            return ChargeResult(status="failed", reference=_intent_id(err), error_code=err.code or "card_declined",
                                error=_message(err))
        except stripe.InvalidRequestError as err:
            # Stripe refused the request itself (detached card, unknown customer...): retrying the same
            # request cannot succeed, so this is an answer, not an outage.
            return ChargeResult(status="failed", reference=_intent_id(err), error_code=err.code or "invalid_request",
                                error=_message(err))
        except stripe.StripeError as err:
            # Connection errors, 5xx answers after the SDK's retries and rate limits: the charge may or may
            # not have happened, so it is not a failure; the caller tries again later with the same
            # idempotency key, which Stripe answers from its first outcome. Authentication, permission and
            # idempotency errors land here too: nothing was charged, and a retry after the fix is safe.
            raise GatewayError(_message(err), code="gateway_unavailable") from err
        return _result(intent)


def _result(intent) -> ChargeResult:
    status = _field(intent, "status")
    if status == "succeeded":
        return ChargeResult(status="succeeded", reference=intent.id)
    if status == "processing":
        return ChargeResult(status="pending", reference=intent.id)
    last_error = _field(intent, "last_payment_error")
    if status == "requires_action":
        code, message = "authentication_required", "The card requires the customer's authentication."
    elif status == "requires_payment_method":
        code, message = "payment_failed", "The card was not charged."
    else:
        code, message = "unexpected_status", f"Stripe answered a payment in status {status!r}."
    return ChargeResult(status="failed", reference=intent.id, error_code=_field(last_error, "code") or code,
                        error=_field(last_error, "message") or message)


def _field(obj, name: str):
    # Stripe objects are not dicts (v16 refuses .get) and leave out absent fields instead of nulling them.
    return getattr(obj, name, None) if obj is not None else None


def _intent_id(err: stripe.StripeError) -> str | None:
    return _field(_field(err.error, "payment_intent"), "id")


def _message(err: stripe.StripeError) -> str:
    return err.user_message or str(err) or type(err).__name__


def configured_stripe() -> StripeGateway | None:
    api_key = os.environ.get(API_KEY_VARIABLE, "").strip()
    if not api_key:
        return None
    return StripeGateway(api_key, os.environ.get(API_BASE_VARIABLE, "").strip() or None)
