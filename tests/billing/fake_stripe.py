"""A local stand-in for the parts of Stripe's REST API that billing.stripe_gateway uses.

It listens on 127.0.0.1 (a free port) so the real `stripe` SDK speaks real HTTP to it: form-encoded
bodies, `Authorization: Bearer ...`, `Idempotency-Key`, JSON answers and error bodies shaped like
Stripe's. It records every request and every PaymentIntent so tests can check "charged once".

Test tokens (Stripe's own names): pm_card_visa (4242) and pm_card_mastercard (4444) attach and charge;
pm_card_chargeDeclined (0341) attaches but every charge is declined (402 card_error); anything else is
"No such PaymentMethod" (400). `fail_next(n)` makes the next n requests answer 500.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from creditdesk.billing.stripe_gateway import StripeGateway

API_KEY = "sk_test_fake_creditdesk"

CARDS = {
    "pm_card_visa": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
    "pm_card_mastercard": {"brand": "mastercard", "last4": "4444", "exp_month": 12, "exp_year": 2030},
    "pm_card_chargeDeclined": {"brand": "visa", "last4": "0341", "exp_month": 12, "exp_year": 2030},
}
DECLINED = {"pm_card_chargeDeclined"}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


class Answer(Exception):
    """Raised by a route to answer with an HTTP status and a JSON body."""

    def __init__(self, status: int, body: dict):
        super().__init__(status)
        self.status, self.body = status, body


def _error(status: int, type_: str, message: str, *, code: str | None = None, param: str | None = None,
           **extra) -> Answer:
    body = {"type": type_, "message": message, **extra}
    if code:
        body["code"] = code
    if param:
        body["param"] = param
    return Answer(status, {"error": body})


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class FakeStripe:
    def __init__(self, api_key: str = API_KEY):
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.payment_intents: list[dict] = []
        self.customers: dict[str, dict] = {}
        self.payment_methods: dict[str, dict] = {}
        self.intent_status: str | None = None  # forces the status of the next successful charges
        self._failures = 0
        self._replays: dict[str, tuple[tuple, int, dict]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: stop() waits for it at the end of every test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-stripe", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail_next(self, n: int) -> None:
        with self._lock:
            self._failures = n

    def gateway(self, api_key: str | None = None) -> StripeGateway:
        return StripeGateway(api_key or self.api_key, api_base=self.url)

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # -- one request, under the lock: the fake plays a single consistent Stripe account

    def handle(self, method: str, path: str, headers: dict[str, str], form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(Recorded(method, path, headers, form))
            if self._failures > 0:
                self._failures -= 1
                return 500, {"error": {"type": "api_error", "message": "An unknown error occurred."}}
            if headers.get("authorization") != f"Bearer {self.api_key}":
                return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}}
            key = headers.get("idempotency-key")
            fingerprint = (method, path, tuple(sorted(form.items())))
            if method == "POST" and key and key in self._replays:
                seen, status, body = self._replays[key]
                if seen != fingerprint:
                    return 400, {"error": {"type": "idempotency_error", "message": "Keys for idempotent "
                                           "requests can only be used with the same parameters."}}
                return status, body
            try:
                status, body = 200, self._route(method, path, form)
            except Answer as answer:
                status, body = answer.status, answer.body
            if method == "POST" and key:
                self._replays[key] = (fingerprint, status, body)
            return status, body

    def _route(self, method: str, path: str, form: dict[str, str]) -> dict:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "customers"]:
            customer = {"id": _new_id("cus"), "object": "customer", "email": form.get("email"),
                        "name": form.get("name"), "livemode": False}
            self.customers[customer["id"]] = customer
            return customer
        if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "payment_methods"] and parts[3] == "attach":
            return self._attach(parts[2], form)
        if method == "POST" and parts == ["v1", "payment_intents"]:
            return self._create_intent(form)
        raise _error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _attach(self, token: str, form: dict[str, str]) -> dict:
        customer = form.get("customer")
        if customer not in self.customers:
            raise _error(400, "invalid_request_error", f"No such customer: '{customer}'",
                         code="resource_missing", param="customer")
        if token not in CARDS:
            raise _error(400, "invalid_request_error", f"No such PaymentMethod: '{token}'",
                         code="resource_missing", param="payment_method")
        # Like Stripe, attaching a test token makes a new payment method of its own id.
        method = {"id": _new_id("pm"), "object": "payment_method", "type": "card", "card": dict(CARDS[token]),
                  "customer": customer, "livemode": False}
        self.payment_methods[method["id"]] = {**method, "token": token}
        return method

    def _create_intent(self, form: dict[str, str]) -> dict:
        amount = form.get("amount", "")
        if not amount.isdigit():
            raise _error(400, "invalid_request_error", "Invalid integer: " + amount, param="amount")
        method = self.payment_methods.get(form.get("payment_method", ""))
        if method is None or method["customer"] != form.get("customer"):
            raise _error(400, "invalid_request_error", "No such PaymentMethod: "
                         f"'{form.get('payment_method')}'", code="resource_missing", param="payment_method")
        intent = {"id": _new_id("pi"), "object": "payment_intent", "amount": int(amount),
                  "currency": form.get("currency"), "customer": form["customer"], "payment_method": method["id"],
                  "description": form.get("description"), "confirmation_method": "automatic",
                  "status": self.intent_status or "succeeded", "last_payment_error": None, "livemode": False}
        self.payment_intents.append(intent)
        if method["token"] in DECLINED:
            decline = {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                       "message": "Your card was declined."}
            intent.update(status="requires_payment_method", last_payment_error=decline)
            raise _error(402, "card_error", decline["message"], code="card_declined",
                         decline_code="generic_decline", payment_intent=dict(intent))
        return intent


def _handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            path, _, query = self.path.partition("?")
            form = dict(parse_qsl(raw or query, keep_blank_values=True))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, body = fake.handle(self.command, path, headers, form)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", _new_id("req"))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def fake_stripe():
    fake = FakeStripe().start()
    try:
        yield fake
    finally:
        fake.stop()
