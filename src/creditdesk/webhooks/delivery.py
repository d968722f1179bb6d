"""Delivering webhooks: the HTTP call, signed (Standard Webhooks), made after the commit, once per attempt.

The shared external-call pattern (creditdesk.external_calls): `webhooks.emit` writes a delivery with its
call due (`next_attempt_at` = now + the first lease) in the caller's transaction; once that commits, the
delivery is handed to a small pool of threads in this process (`dispatch`), so that no request waits on
a receiver. The outcome of each attempt is recorded in a short transaction of its own. A delivery whose
outcome was never recorded (the process died mid-call) is still due: the recovery job (`deliver_due`, in
jobs.runner.run_all) claims it once its lease has ended and sends it again, with the same event id and
the same body: at least once, never "at most once".

Retries: after the n-th failed attempt the next comes 2**(n-1) minutes later (1, 2, 4, ... minutes), for a
day from the event (or from its last manual replay); the last retry is at that day's end. An endpoint
that has failed every attempt for a day is disabled, its pending deliveries given up, and the workspace's
masters are told (by email when SMTP is configured; always an audit event and a banner in Settings >
Webhooks).

Server-side request forgery: only http(s) URLs, and the host is resolved before every attempt; a
loopback, private, link-local, multicast or reserved address is refused unless the installation sets
CREDITDESK_WEBHOOKS_ALLOW_PRIVATE=1. The request then goes to the address that was checked (the URL's
host is kept in the Host header and as the TLS server name), so a DNS answer that changes between the
check and the connection cannot point it elsewhere. Redirects are not followed, and proxies from the
environment are not used (a proxy would resolve the name again).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from urllib.parse import SplitResult, urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from creditdesk import __version__, audit, clock, external_calls
from creditdesk.audit import Actor
from creditdesk.config import get_settings
from creditdesk.db import Database, after_commit
from creditdesk.errors import InvalidInput
from creditdesk.ids import new_id
from creditdesk.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
EXCERPT_BYTES = 1024
RETRY_WINDOW = timedelta(days=1)
DISABLE_AFTER = timedelta(days=1)
BACKOFF_BASE_SECONDS = 60


# --- the URL: only http(s), only public addresses ------------------------------------------------------

class UnsafeTarget(InvalidInput):
    code = "webhook_url_refused"


def _parse(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise UnsafeTarget("The URL is not valid.", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("Webhook URLs are http:// or https:// with a host.", field="url")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("A webhook URL carries no user name or password: the signature authenticates us.",
                           field="url")
    return parts


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or getattr(ip, "is_site_local", False))


def _resolve(parts: SplitResult) -> list[str]:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _allow_private() -> bool:
    return get_settings().webhooks_allow_private


def check_url(url: str) -> str:
    """A URL an endpoint may have (on create and update): http(s), and, unless private targets are
    allowed, a host that does not resolve to a loopback, private or link-local address. A host that does
    not resolve now is taken (every attempt resolves it again and checks)."""
    parts = _parse(url)
    if not _allow_private():
        try:
            addresses = _resolve(parts)
        except (OSError, UnicodeError):
            addresses = []
        refused = [a for a in addresses if not _public(a)]
        if refused:
            raise UnsafeTarget(f"{parts.hostname} resolves to {refused[0]}, a loopback, private or link-local "
                               "address: webhooks are only sent to public addresses.", field="url")
    return url


def resolve_target(url: str) -> tuple[SplitResult, str]:
    """The URL's parts and the one address to connect to, checked now (every attempt)."""
    parts = _parse(url)
    try:
        addresses = _resolve(parts)
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(f"{parts.hostname} could not be resolved ({exc}).") from None
    if not addresses:
        raise UnsafeTarget(f"{parts.hostname} could not be resolved.")
    if not _allow_private():
        refused = [a for a in addresses if not _public(a)]
        if refused:
            raise UnsafeTarget(f"{parts.hostname} resolves to {refused[0]}, a loopback, private or link-local "
                               "address: not sent.")
    return parts, addresses[0]


# --- one attempt ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    latency_ms: int | None = None
    excerpt: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(secret: str, event_id: str, body: str) -> dict[str, str]:
    """The Standard Webhooks headers. The timestamp is the wall clock's, not creditdesk's clock: the
    receiver compares it with its own clock to refuse replayed messages."""
    now = datetime.now(UTC)
    return {"content-type": "application/json", "user-agent": f"creditdesk-webhooks/{__version__}",
            "webhook-id": event_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(event_id, now, body)}


def send(url: str, secret: str, event_id: str, body: str) -> Outcome:
    """POST the body to the URL, at the address checked just before; never raises."""
    try:
        parts, address = resolve_target(url)
    except UnsafeTarget as exc:
        return Outcome(error=exc.message[:500])
    host = f"[{address}]" if ":" in address else address
    pinned = parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host).geturl()
    headers = {**signed_headers(secret, event_id, body), "host": parts.netloc}
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    started = time.monotonic()
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client:
            with client.stream("POST", pinned, content=body.encode(), headers=headers,
                               extensions=extensions) as response:
                excerpt = b""
                for chunk in response.iter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= EXCERPT_BYTES:
                        break
                latency = int((time.monotonic() - started) * 1000)
                return Outcome(status_code=response.status_code, latency_ms=latency,
                               excerpt=excerpt[:EXCERPT_BYTES].decode("utf-8", "replace"))
    except httpx.TimeoutException:
        return Outcome(latency_ms=int((time.monotonic() - started) * 1000),
                       error=f"No answer within {TIMEOUT_SECONDS} s.")
    except (httpx.HTTPError, OSError) as exc:
        return Outcome(latency_ms=int((time.monotonic() - started) * 1000),
                       error=f"{type(exc).__name__}: {exc}"[:500])


def backoff(attempt: int) -> timedelta:
    """How long after the `attempt`-th failed attempt the next one comes."""
    return timedelta(seconds=BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0))


def next_attempt_at(now: datetime, attempt: int, retry_from: datetime) -> datetime | None:
    """When to try again after the `attempt`-th failure; None: the day of retries is over."""
    deadline = clock.aware(retry_from) + RETRY_WINDOW
    if now >= deadline:
        return None
    return min(now + backoff(attempt), deadline)


def deliver(db: Database, delivery_id: str) -> WebhookDelivery | None:
    """Make the delivery's call if it is still due, outside any transaction, then record the outcome in a
    short transaction. Run after the emitting transaction committed (`dispatch`), by the recovery job
    (`deliver_due`) and for a replay. Returns the delivery as recorded (None if there is none)."""
    found = external_calls.detached(db, WebhookDelivery, delivery_id)
    if found is None or found.status != "pending" or found.next_attempt_at is None:
        return found
    endpoint = external_calls.detached(db, WebhookEndpoint, found.endpoint_id)
    if endpoint is None or not endpoint.enabled or endpoint.deleted_at is not None:
        return db.write(lambda session: _give_up(session, delivery_id, "The endpoint is disabled or deleted."))
    outcome = send(endpoint.url, endpoint.secret, found.event_id, found.body)
    return db.write(lambda session: record(session, delivery_id, outcome, url=endpoint.url))


def _give_up(session: Session, delivery_id: str, reason: str) -> WebhookDelivery:
    row = session.execute(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
                          ).scalar_one()
    if row.status == "pending":
        row.status, row.next_attempt_at, row.last_error, row.updated_at = "failed", None, reason, clock.now()
    return row


def record(session: Session, delivery_id: str, outcome: Outcome, *, url: str) -> WebhookDelivery:
    """The outcome of one attempt: its log row, the delivery's state, the endpoint's run of failures."""
    now = clock.now()
    # The endpoint's row first, then the delivery's: the order disable() and delete take them in.
    endpoint_id = session.scalar(select(WebhookDelivery.endpoint_id).where(WebhookDelivery.id == delivery_id))
    endpoint = session.execute(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                               .with_for_update()).scalar_one()
    row = session.execute(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
                          ).scalar_one()
    session.add(WebhookAttempt(id=new_id("wha"), workspace_id=row.workspace_id, delivery_id=row.id,
                               endpoint_id=row.endpoint_id, url=url, status_code=outcome.status_code,
                               latency_ms=outcome.latency_ms, response_excerpt=outcome.excerpt,
                               error=outcome.error, created_at=now))
    row.last_status_code, row.last_latency_ms, row.updated_at = outcome.status_code, outcome.latency_ms, now
    row.last_error = outcome.error or (None if outcome.ok else f"HTTP {outcome.status_code}")
    if outcome.ok:
        endpoint.failing_since = None
        if row.status == "pending":
            row.status, row.delivered_at, row.next_attempt_at = "delivered", now, None
        return row
    if endpoint.failing_since is None:
        # Failing since the event was ready to go: its last retry, a day later, then finds the endpoint
        # failing for a day (unless something succeeded meanwhile) and disables it.
        endpoint.failing_since = min(now, clock.aware(row.retry_from))
    if row.status == "pending":  # not recorded already by a concurrent attempt
        row.next_attempt_at = next_attempt_at(now, row.attempts, row.retry_from)
        if row.next_attempt_at is None:
            row.status = "failed"
    if endpoint.enabled and now - clock.aware(endpoint.failing_since) >= DISABLE_AFTER:
        disable(session, endpoint, now, last_error=row.last_error)
    return row


def disable(session: Session, endpoint: WebhookEndpoint, now: datetime, *, last_error: str | None) -> None:
    """Disable an endpoint that failed for a day: its pending deliveries are given up, the system's audit
    event says why, and the masters are emailed after the commit (when SMTP is configured)."""
    since = clock.aware(endpoint.failing_since).strftime("%Y-%m-%d %H:%M UTC")
    before = {"enabled": True, "failing_since": endpoint.failing_since.isoformat()}
    endpoint.enabled, endpoint.disabled_at, endpoint.updated_at = False, now, now
    endpoint.disabled_reason = f"Every delivery failed since {since} (last: {last_error or 'no answer'})."[:300]
    session.execute(update(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id,
                                                  WebhookDelivery.status == "pending")
                    .values(status="failed", next_attempt_at=None, updated_at=now,
                            last_error="Given up: the endpoint was disabled after failing for a day.")
                    .execution_options(synchronize_session=False))
    audit.record(session, actor=Actor.system(endpoint.workspace_id), action="webhook_endpoint.disable",
                 object_type="webhook_endpoint", object_id=endpoint.id, before=before,
                 after={"enabled": False, "disabled_reason": endpoint.disabled_reason, "url": endpoint.url})
    from creditdesk.notify import smtp
    from creditdesk.parties.models import User

    if not smtp.is_configured():
        return  # the audit event and the banner in Settings > Webhooks tell them
    emails = list(session.scalars(select(User.email).where(
        User.workspace_id == endpoint.workspace_id, User.role == "master", User.is_active.is_(True),
        User.is_staff.is_(True), User.email.is_not(None)).order_by(User.id)))
    text = (f"creditdesk disabled the webhook endpoint {endpoint.url} ({endpoint.id}).\n\n"
            f"{endpoint.disabled_reason}\n\nFix the receiver, then enable the endpoint again in Settings > "
            "Webhooks (or PATCH /v1/webhook-endpoints/{id} with enabled true) and replay what it missed.\n")
    after_commit(session, lambda: _tell(emails, f"Webhook endpoint disabled: {endpoint.url}"[:200], text))


def _tell(emails: list[str], subject: str, text: str) -> None:
    from creditdesk.notify import smtp

    for to in emails:
        try:
            smtp.send(smtp.Outgoing(to=to, subject=subject, text_body=text, html_body=None,
                                    message_id=make_msgid(domain="creditdesk")))
        except Exception:  # the audit event and the banner remain
            log.exception("telling %s that a webhook endpoint was disabled failed", to)


# --- after the commit: a few threads of this process ---------------------------------------------------

class _Dispatcher:
    """Deliveries handed over after their commit, made by a few threads so that no request waits on a
    receiver. `wait_idle` lets a job (or a test) wait until every handed-over delivery was made."""

    WORKERS = 4

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        self._busy = 0
        self._cond = threading.Condition()

    def submit(self, db: Database, delivery_id: str) -> None:
        with self._cond:
            if self._executor is None or self._pid != os.getpid():  # a forked child has no threads
                self._executor = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="creditdesk-webhooks")
                self._pid = os.getpid()
            self._busy += 1
        self._executor.submit(self._run, db, delivery_id)

    def _run(self, db: Database, delivery_id: str) -> None:
        try:
            deliver(db, delivery_id)
        except Exception:  # still due: the recovery job makes it once the lease ends
            log.exception("webhook delivery %s failed; the recovery job retries it", delivery_id)
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


_dispatcher = _Dispatcher()
wait_idle = _dispatcher.wait_idle


def dispatch(db: Database, delivery_id: str) -> None:
    """Hand a committed delivery to the threads (a module global: tests replace it to play a crash)."""
    _dispatcher.submit(db, delivery_id)


def deliver_due(db: Database, *, workspace_id: str | None = None, batch_size: int = 100) -> int:
    """The recovery job and the retries: claim the deliveries whose lease or backoff has ended (a new
    lease each, so several nodes never send the same attempt at once) and make them. Returns how many
    attempts were made. (A one-shot process, `creditdesk jobs run`, still makes the deliveries it handed to
    its threads before it exits: the pool's threads are joined at exit, their queue drained first.)"""
    done = 0
    while True:
        claimed = db.write(lambda session: external_calls.claim_due(
            session, WebhookDelivery, WebhookDelivery.next_attempt_at, WebhookDelivery.attempts,
            workspace_id=workspace_id, limit=batch_size))
        for delivery_id in claimed:
            try:
                deliver(db, delivery_id)
                done += 1
            except Exception:  # the lease ends and a later run tries again
                log.exception("webhook delivery %s failed", delivery_id)
        if len(claimed) < batch_size:
            break
    return done
