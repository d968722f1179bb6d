"""Pure ASGI middleware: request body size cap and Prometheus metrics."""

from __future__ import annotations

import json
import re
import time

from prometheus_client import Counter, Histogram

from creditdesk.api.problems import PROBLEM_MEDIA_TYPE, problem

REQUESTS = Counter("creditdesk_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("creditdesk_http_request_seconds", "HTTP request latency", ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class BodyLimitAndMetrics:
    def __init__(self, app, *, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = {"status": 500}
        limit = self.max_body_bytes

        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if declared is not None and declared > limit:
            await self._too_large(scope, send)
            self._observe(scope, 413, started)
            return

        # Read the whole body here (at most `limit` bytes) before the app sees it. A chunked body
        # without Content-Length can only be measured by reading it, and an error raised later from
        # inside the app's `receive` is turned by FastAPI into a 400 "error parsing the body".
        chunks = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body: nobody to answer
            body = message.get("body", b"")
            received += len(body)
            if received > limit:
                await self._too_large(scope, send)
                self._observe(scope, 413, started)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _json_too_deep(body):
            await self._refuse_deep(scope, send)
            self._observe(scope, 400, started)
            return
        if _has_nul(scope, body):
            await self._refuse_nul(scope, send)
            self._observe(scope, 422, started)
            return
        buffered = {"type": "http.request", "body": body, "more_body": False}

        async def replay_receive():
            nonlocal buffered
            if buffered is not None:
                message, buffered = buffered, None
                return message
            return await receive()  # after the body: wait for http.disconnect as usual

        async def tracking_send(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, replay_receive, tracking_send)
        finally:
            self._observe(scope, status_holder["status"], started)

    def _observe(self, scope, status: int, started: float) -> None:
        path = _route_template(scope)
        REQUESTS.labels(scope["method"], path, str(status)).inc()
        LATENCY.labels(scope["method"], path).observe(time.perf_counter() - started)

    async def _refuse_nul(self, scope, send) -> None:
        body = json.dumps(problem(422, "invalid_characters", "Invalid input",
                                  "Text may not contain NUL (U+0000) characters.", instance=_printable_path(scope)))
        await _send_problem(send, 422, body.encode())

    async def _refuse_deep(self, scope, send) -> None:
        body = json.dumps(problem(400, "malformed_json", "Malformed JSON",
                                  f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep.",
                                  instance=_printable_path(scope)))
        await _send_problem(send, 400, body.encode())

    async def _too_large(self, scope, send) -> None:
        body = json.dumps(problem(413, "payload_too_large", "Request body too large",
                                  f"Request bodies are limited to {self.max_body_bytes} bytes.",
                                  instance=scope.get("path"))).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _send_problem(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _printable_path(scope) -> str:
    return scope.get("path", "").replace("\x00", "")


def _content_type(scope) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.lower()
    return b""


# Deeper JSON is refused before anything parses it: json.loads, pydantic and the idempotency fingerprint
# all recurse, and about a thousand levels raise RecursionError (a 500, on any path, before authentication).
# No request of this API nests more than a few levels.
MAX_JSON_DEPTH = 64
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')  # once escapes are gone; linear, unlike one pattern handling both
_BRACKETS = re.compile(r"[^\[\]{}]+")


def _json_too_deep(body: bytes) -> bool:
    """Whether the body is a JSON document nesting brackets deeper than MAX_JSON_DEPTH (brackets inside
    strings do not count). Whatever the content type: the idempotency fingerprint parses every write's
    body, so a form or text label does not keep a body from json.loads."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    try:
        # Decoded as json.loads decodes bytes (UTF-8 with or without BOM, UTF-16, UTF-32): scanning the raw
        # bytes of a UTF-16 body would take parts of other characters for quotes.
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return False  # json.loads fails on it at once
    if text.lstrip(" \t\r\n")[:1] not in ("[", "{"):
        return False  # not JSON that nests (a form, a multipart upload): json.loads stops at the first byte
    depth = 0
    for char in _BRACKETS.sub("", _STRING.sub("", _ESCAPE.sub("", text))):
        if char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _has_nul(scope, body: bytes) -> bool:
    """NUL in the path, the query or a JSON / form body. PostgreSQL cannot store it in text and
    psycopg refuses to send it, so it must be refused here as bad input rather than fail as a 500."""
    if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
        return True
    if not body:
        return False
    content_type = _content_type(scope)
    if b"x-www-form-urlencoded" in content_type:
        return b"%00" in body or b"\x00" in body
    if b"\\u0000" not in body:  # the only way JSON spells NUL (a raw NUL byte is malformed JSON)
        return False
    try:
        return _json_has_nul(json.loads(body))
    except (ValueError, RecursionError):
        return False  # malformed: the app answers 400


def _json_has_nul(value) -> bool:
    # Iterative: a recursive walk raised RecursionError on deep documents (the depth cap comes first too).
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return True
                pending.append(child)
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _route_template(scope) -> str:
    """The matched route as a template (/v1/customers/{customer_id}), never the raw path.

    Rebuilt from the request path and its path parameters: the route object alone may hold only
    the path relative to its router (/customers without the /v1 prefix) in newer FastAPI.
    """
    if scope.get("route") is None:
        return "unmatched"
    by_value = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    segments = [f"{{{by_value[s]}}}" if s in by_value else s for s in scope.get("path", "").split("/")]
    return "/".join(segments) or "/"
