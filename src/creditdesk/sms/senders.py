"""Sender backends: what actually sends an SMS. Pluggable; the default writes to the outbox.

A backend gets a read-only copy of the message row (already committed, status "sending", its credits
on hold) and answers whether it accepted the message. Accepted: the hold is captured. Refused, or the
backend raised: the hold is released and the message is kept as failed, so nothing is charged for it.

`send` is called outside any database transaction (a slow gateway holds no lock). It may be called
more than once for the same message (the request died before recording the answer, and the recovery
job hands it over again), always with the same `idempotency_key`: a gateway backend must pass it on to
the provider (or dedupe on it) so that the SMS goes out once.

The default `OutboxSender` accepts every message by leaving it in the `sms_messages` table (the
outbox) for a delivery worker or a gateway integration to pick up; `GET /v1/messages` lists it.
A gateway backend implements the same `send` and is installed with `set_sender`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from creditdesk.sms.models import SmsMessage


@dataclass(frozen=True)
class SendResult:
    accepted: bool
    provider_reference: str | None = None
    error: str | None = None


class SmsSender(Protocol):
    name: str

    def send(self, message: SmsMessage, *, idempotency_key: str) -> SendResult: ...


class OutboxSender:
    """Accepts every message: the row in the outbox table is the hand-over."""

    name = "outbox"

    def send(self, message: SmsMessage, *, idempotency_key: str) -> SendResult:
        return SendResult(accepted=True, provider_reference=message.id)


_lock = threading.Lock()
_sender: SmsSender = OutboxSender()


def current_sender() -> SmsSender:
    return _sender


def set_sender(sender: SmsSender) -> SmsSender:
    """Install a backend for the whole process; returns the one it replaces (tests put it back)."""
    global _sender
    with _lock:
        previous, _sender = _sender, sender
    return previous
