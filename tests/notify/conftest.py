"""A real SMTP server on loopback (aiosmtpd) that keeps what arrived, and a shop with packs to warn about."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from tests.credits.helpers import credit_type
from tests.parties.factories import master_actor
from tests.conftest import make_workspace


@dataclass
class Inbox:
    messages: list = field(default_factory=list)
    # While > 0, each DATA is answered "451" (temporary failure) and the counter goes down.
    refuse_next: int = 0
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            time.sleep(self.delay)  # holds the server's loop: widens the window for racing jobs
        with self.lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return "451 4.3.0 Try again later"
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_smtp(settings_env):
    """A real SMTP server on a free loopback port, and the CREDITDESK_SMTP_* settings pointing at it."""
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings_env(smtp_host="127.0.0.1", smtp_port=port, smtp_from="desk@shop.example", smtp_timeout_seconds=10)
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(settings_env):
    with serve_smtp(settings_env) as inbox:
        yield inbox


@dataclass
class EmailShop:
    workspace_id: str
    actor: object
    customer_id: str
    email: str


_counter = iter(range(1_000_000))


def make_email_shop(db, *, email: str | None = "auto", language: str | None = None) -> EmailShop:
    ws = make_workspace(db, name="Email shop")
    actor = master_actor(db, ws.id)
    credit_type(db, actor, "massage")
    if email == "auto":
        email = f"client{next(_counter)}-{ws.id[-6:]}@example.com"
    customer = db.write(lambda s: parties.create_customer(
        s, ps.CustomerCreate(name="Ada Client", email=email, language=language), actor=actor).id)
    return EmailShop(ws.id, actor, customer, email)


@pytest.fixture
def shop(db):
    return make_email_shop(db)
