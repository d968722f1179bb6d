"""Pure ASGI middleware for browser hardening and slow clients, and the /metrics gate.

`SecurityHeaders` adds the Content-Security-Policy and the other security headers to every answer the
app sends (pages, JSON, problem+json, static files, redirects, and the answers other middleware send
before any route runs). `BodyReadTimeout` answers 408 to a client that does not finish sending its
body in time. Both are outermost, so nothing the app answers escapes them.
"""

from __future__ import annotations

import asyncio
import hmac
import json

from creditdesk.api.problems import PROBLEM_MEDIA_TYPE, problem

# No inline script and no inline style anywhere: the back office's JavaScript and CSS are files under
# /static, and Swagger UI / ReDoc run from installed files with our own init scripts (api/docs.py).
# Without 'unsafe-inline' a stored `javascript:` URL or an injected handler cannot run.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate CSP 2
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # ids in back-office URLs never leave for other sites
)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP answer. A header the app set itself is kept: a page that
    needs a different policy (the API docs) says so on its own response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyReadTimeout:
    """A request whose body is not complete `seconds` after the app starts reading it gets 408.

    uvicorn has no body read timeout: a client that declares `Content-Length: 1000` and sends a byte
    a second holds a connection and a task for as long as it likes. The deadline covers the whole
    body, not each chunk, so trickling bytes does not extend it. On time-out the client gets 408
    with `Connection: close`, and the app is told the client went away (`http.disconnect`) so it
    stops without answering; anything it still tries to send is dropped.
    """

    def __init__(self, app, *, seconds: float):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.seconds or self.seconds <= 0 or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        # One timer per request, which cancels the receive it finds waiting: an asyncio.timeout()
        # around every receive measured several times dearer per request.
        loop = asyncio.get_running_loop()
        timer = None
        waiting = None  # the task blocked in receive(), if any
        timed_out = body_done = started = False

        def expire():
            nonlocal timed_out
            timed_out = True
            if waiting is not None:
                waiting.cancel()

        async def timed_receive():
            nonlocal timer, waiting, body_done, started
            if body_done:
                return await receive()  # after the body: the app may wait for a disconnect as long as it likes
            if not timed_out:
                if timer is None:
                    timer = loop.call_later(self.seconds, expire)
                waiting = asyncio.current_task()
                try:
                    message = await receive()
                except asyncio.CancelledError:
                    if not timed_out:
                        raise
                    waiting.uncancel()  # our own cancellation, turned into the answer below
                else:
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        body_done = True
                        timer.cancel()
                    return message
                finally:
                    waiting = None
            if not started:
                started = True  # one 408, however often the app asks again
                await self._request_timeout(scope, send)
            return {"type": "http.disconnect"}

        async def guarded_send(message):
            nonlocal started
            if timed_out and not body_done:
                return  # the 408 went out already; the app's late answer has nobody to go to
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        finally:
            if timer is not None:
                timer.cancel()

    async def _request_timeout(self, scope, send) -> None:
        body = json.dumps(problem(408, "request_timeout", "Request timeout",
                                  f"The request body was not received within {self.seconds:g} seconds.",
                                  instance=scope.get("path", "").replace("\x00", ""))).encode()
        await send({"type": "http.response.start", "status": 408,
                    "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _has_body(scope) -> bool:
    """Whether the request announces a body. Without Content-Length or Transfer-Encoding there is none
    (HTTP/1.1), and uvicorn hands the app an empty one at once: nothing to time."""
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False


def metrics_caller_allowed(authorization: str | None, *, token: str | None, public: bool) -> bool:
    """Whether a caller may read /metrics (and the version in /healthz).

    With a token set, only `Authorization: Bearer <token>` passes (compared in constant time).
    Without one, everyone passes if metrics are declared public, nobody otherwise.
    """
    if token:
        scheme, _, presented = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
    return public
