"""Payment methods for SMS credit purchases. Pluggable, one interface.

`charge(purchase, idempotency_key=...)` answers paid, pending or failed. Credits are granted only once a
purchase is paid: at once for "paid", later through `service.settle_purchase` for "pending" (a card
gateway's callback, or a master confirming a bank transfer), never for "failed".

`charge` is called after the purchase is committed, outside any database transaction (a slow gateway
holds no lock), with a read-only copy of the purchase. It may be called more than once for the same
purchase (the request died before recording the answer, and the recovery job charges again), always
with the same `idempotency_key`: a real gateway must pass it on (Stripe's Idempotency-Key, Adyen's
idempotency header...) so that the card is charged once. Raising counts as a failed payment, so a
gateway whose answer is uncertain (a timeout) should retry with the same key itself, or answer pending.

The built-in "test" method answers pending and waits for its outcome through the API (for integrators
trying the pending path). The default "manual_invoice" method is for workspaces that invoice their own staff purchases
(or pay by account): the purchase is paid when made, and the receipt is its tax invoice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, Protocol

from creditdesk.sms.models import SmsPurchase

PaymentStatus = Literal["paid", "pending", "failed"]


@dataclass(frozen=True)
class PaymentResult:
    status: PaymentStatus
    reference: str | None = None
    error: str | None = None


class PaymentMethod(Protocol):
    code: str
    label: str

    def charge(self, purchase: SmsPurchase, *, idempotency_key: str) -> PaymentResult: ...


class ManualInvoice:
    code = "manual_invoice"
    label = "Invoice (paid on account)"

    def charge(self, purchase: SmsPurchase, *, idempotency_key: str) -> PaymentResult:
        return PaymentResult(status="paid", reference=f"invoice:{purchase.id}")


class TestPending:
    """For integrators: the payment stays pending until its outcome is recorded through
    POST /v1/sms/purchases/{id}/payment (paid or failed), the path a card gateway's callback or a
    confirmed bank transfer takes. No money moves."""

    code = "test"
    label = "Test payment (stays pending until settled)"

    def charge(self, purchase: SmsPurchase, *, idempotency_key: str) -> PaymentResult:
        return PaymentResult(status="pending", reference=f"test:{purchase.id}")


_lock = threading.Lock()
_BUILT_IN = (ManualInvoice.code, TestPending.code)
_methods: dict[str, PaymentMethod] = {ManualInvoice.code: ManualInvoice(), TestPending.code: TestPending()}


def register_payment_method(method: PaymentMethod) -> PaymentMethod | None:
    """Add (or replace) a payment method; returns the one it replaced."""
    with _lock:
        previous = _methods.get(method.code)
        _methods[method.code] = method
    return previous


def unregister_payment_method(code: str) -> None:
    with _lock:
        if code not in _BUILT_IN:
            _methods.pop(code, None)


def get_payment_method(code: str) -> PaymentMethod | None:
    return _methods.get(code)


def payment_method_codes() -> list[str]:
    return sorted(_methods)
