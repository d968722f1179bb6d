"""Payment gateways of account payment preferences (seed 004): one interface, several providers.

A gateway registers a card (the card number goes from the customer to the gateway, never to us: the
caller hands over the gateway's token of it) and charges a registered card. We store only what the
gateway answers: its customer and payment method ids, the brand, the last four digits, the expiry.

`charge` is an external call: it is made after the transaction that decided it has committed, outside
any transaction, with an idempotency key that stays the same on every retry (billing.payment_preferences
records the charge first, then calls, then records the outcome), so the card is charged once.

Built in:
- "manual": nothing to call; a manual or bank-transfer preference is never charged automatically.
- "stripe": billing.stripe_gateway, on the official `stripe` package (configured by CREDITDESK_STRIPE_API_KEY
  and, for tests and stripe-mock, CREDITDESK_STRIPE_API_BASE).
Tests register others (`register_gateway`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, Protocol


class GatewayError(Exception):
    """The gateway refused or failed; `code` is stable (card_declined, gateway_unavailable, ...)."""

    def __init__(self, message: str, *, code: str = "gateway_error"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RegisteredCard:
    customer_ref: str       # the gateway's customer (Stripe: cus_...)
    card_ref: str           # the gateway's payment method (Stripe: pm_...)
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class ChargeResult:
    status: Literal["succeeded", "pending", "failed"]
    reference: str | None = None  # the gateway's charge (Stripe: pi_...)
    error_code: str | None = None
    error: str | None = None


class Gateway(Protocol):
    code: str
    label: str

    def register_card(self, *, card_token: str, customer_ref: str | None, email: str | None,
                      name: str) -> RegisteredCard: ...

    def charge(self, *, amount: int, currency: str, customer_ref: str, card_ref: str, idempotency_key: str,
               description: str) -> ChargeResult: ...


class ManualGateway:
    """Manual payments and bank transfers: recorded by a person (Payments), never charged by us."""

    code = "manual"
    label = "Manual or bank transfer"

    def register_card(self, **_) -> RegisteredCard:
        raise GatewayError("Manual payment preferences take no card.", code="gateway_takes_no_cards")

    def charge(self, **_) -> ChargeResult:
        return ChargeResult(status="failed", error_code="gateway_not_automatic",
                            error="A manual or bank-transfer preference is never charged automatically.")


_lock = threading.Lock()
_gateways: dict[str, Gateway] = {ManualGateway.code: ManualGateway()}


def register_gateway(gateway: Gateway) -> Gateway | None:
    """Add (or replace) a gateway; returns the one it replaced."""
    with _lock:
        previous = _gateways.get(gateway.code)
        _gateways[gateway.code] = gateway
    return previous


def unregister_gateway(code: str) -> None:
    with _lock:
        if code != ManualGateway.code:
            _gateways.pop(code, None)


def get_gateway(code: str) -> Gateway | None:
    gateway = _gateways.get(code)
    if gateway is None and code == "stripe":
        from creditdesk.billing.stripe_gateway import configured_stripe  # only when a workspace uses it

        gateway = configured_stripe()
        if gateway is not None:
            register_gateway(gateway)
    return gateway


def gateway_codes() -> list[str]:
    return sorted(set(_gateways) | {"stripe"})
