"""The expiry email job: a warning N days before a pack expires, a notice once it has expired.

What "exactly once per pack and event" means here (SMTP cannot take part in a database transaction):

1. Claim. In one transaction, a send-log row is inserted for each (pack, event) that is due, UNIQUE on
   (pack_id, event) with INSERT ... ON CONFLICT DO NOTHING: of several jobs running at once, exactly one
   gets the row; the others insert nothing and send nothing. The message is rendered and stored here.
   The row is `claimed` with a lease (next_attempt_at = now + email_lease_seconds). COMMIT.
2. Mark `sending` (a second short commit, fenced by the attempt number), then talk SMTP, outside any
   transaction.
3. Record the outcome (fenced again: a row taken over by another job is not overwritten): `sent` with
   the message as sent, or `retrying` with the error and the next attempt after an exponential backoff,
   or `failed` once email_max_attempts attempts failed.

A job that dies leaves its row `claimed` or `sending`; once the lease has passed, the next run takes it
over and sends it (one send after the lease). A `claimed` row certainly never reached the server. A
`sending` row may have: the process can die after the server said 250 and before the outcome was
committed. Such a row is sent again with the SAME Message-ID header, and the log says so: the email goes
out at most twice in that window (never more, the lease fences it) and the duplicate is recognisable by
its Message-ID. Any other failure (refused, connection lost before the server accepted) is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditdesk import clock, timezones
from creditdesk.config import Settings, get_settings
from creditdesk.amounts import format_amount
from creditdesk.credits.low_balance_models import BalanceCrossing
from creditdesk.credits.models import CreditType, Pack
from creditdesk.db import Database
from creditdesk.errors import CreditdeskError
from creditdesk.ids import new_id
from creditdesk.ledger.models import LedgerAccount
from creditdesk.notify import low_balance_emails, service, smtp, templates
from creditdesk.notify.models import EmailSend, EmailSettings
from creditdesk.parties.models import Customer, Workspace

log = logging.getLogger("creditdesk.notify")

# An expired notice is sent only this long after the expiry: switching the emails on (or setting an SMTP
# host) must not mail every customer whose pack expired years ago.
EXPIRED_NOTICE_WINDOW = timedelta(days=30)
INTERRUPTED = ("The previous attempt was interrupted during the SMTP conversation; if the server had "
               "accepted it, this resend is a duplicate with the same Message-ID.")


@dataclass(frozen=True)
class Claim:
    send_id: str
    attempt: int
    outgoing: smtp.Outgoing


@dataclass
class RunResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0

    def as_dict(self) -> dict:
        return {"sent": self.sent, "failed": self.failed, "skipped": self.skipped}


# --- 1. claim --------------------------------------------------------------------------------------

def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.email_lease_seconds)


def _enabled_settings(session: Session, workspace_id: str | None) -> list[EmailSettings]:
    """The settings of every workspace with expiry emails on (a workspace without a row has the defaults,
    which are on)."""
    stmt = select(Workspace.id)
    if workspace_id:
        stmt = stmt.where(Workspace.id == workspace_id)
    rows = {s.workspace_id: s for s in session.scalars(select(EmailSettings).where(
        EmailSettings.workspace_id == workspace_id) if workspace_id else select(EmailSettings))}
    out = []
    for ws in session.scalars(stmt.order_by(Workspace.id)):
        row = rows.get(ws) or service.settings_for(session, ws)
        if row.enabled:
            out.append(row)
    return out


def _no_log_row(event: str):
    return ~exists().where(EmailSend.pack_id == Pack.id, EmailSend.event == event)


def _due_packs(session: Session, ws: EmailSettings, now: datetime, limit: int) -> list[tuple[str, Pack]]:
    due: list[tuple[str, Pack]] = []
    if ws.send_warning:
        stmt = select(Pack).where(Pack.workspace_id == ws.workspace_id, Pack.status == "active",
                                  Pack.expires_at.is_not(None), Pack.expires_at > now,
                                  Pack.expires_at <= now + timedelta(days=ws.warning_days), _no_log_row("warning"))
        due += [("warning", p) for p in session.scalars(stmt.order_by(Pack.expires_at, Pack.id).limit(limit))]
    if ws.send_expired and len(due) < limit:
        stmt = select(Pack).where(Pack.workspace_id == ws.workspace_id, Pack.status.in_(("active", "expired")),
                                  Pack.expires_at.is_not(None), Pack.expires_at <= now,
                                  Pack.expires_at > now - EXPIRED_NOTICE_WINDOW, _no_log_row("expired"))
        due += [("expired", p) for p in session.scalars(stmt.order_by(Pack.expires_at, Pack.id)
                                                         .limit(limit - len(due)))]
    return due


def _insert_claim(session: Session, values: dict, key: str = "pack_id") -> bool:
    """Insert the send-log row unless (pack, event) has one (or (crossing, event), key="crossing_id"); True
    when this transaction got it."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (insert(EmailSend).values(**values)
            .on_conflict_do_nothing(index_elements=[key, "event"]).returning(EmailSend.id))
    return session.execute(stmt).scalar() is not None


def _message_id(send_id: str, settings: Settings) -> str:
    return smtp.message_id_for(send_id, settings)


def _render(session: Session, pack: Pack, event: str, customer: Customer | None, ws: EmailSettings,
            now: datetime) -> tuple[str, templates.TemplateText]:
    account = session.get(LedgerAccount, pack.ledger_account_id)
    workspace = session.get(Workspace, pack.workspace_id)
    language, template = service.template_for(session, pack.workspace_id, event,
                                              customer.language if customer else None, ws.default_language)
    scale = session.get(CreditType, pack.credit_type_id).scale
    # Amounts as people read them ("20.00" hours, not 2000 hundredths).
    context = templates.context_for(event=event, customer_name=customer.name if customer else "",
                                    customer_email=customer.email if customer else None, pack_id=pack.id,
                                    pack_name=pack.name, quantity=format_amount(pack.quantity, scale),
                                    remaining=format_amount(max(0, account.available) if account else 0, scale),
                                    unit=pack.unit,
                                    expires_at=clock.aware(pack.expires_at), now=now, workspace_name=workspace.name,
                                    where=timezones.zone(workspace.time_zone))
    return language, templates.render(template, context)


def _skip_reason(pack: Pack, event: str, customer: Customer | None, session: Session) -> str | None:
    if customer is None:
        return "The pack belongs to no customer (the workspace's own office, staff or pool): nobody to email."
    if not customer.email:
        return f"The customer {customer.name!r} has no email address."
    if event == "warning":
        account = session.get(LedgerAccount, pack.ledger_account_id)
        if account is not None and account.available <= 0:
            return "Nothing is left on the pack: no warning needed."
    return None


def claim_due(session: Session, *, now: datetime, limit: int, workspace_id: str | None = None,
              settings: Settings | None = None) -> tuple[list[Claim], int]:
    """Claim what is due (new events and retries whose time has come); returns the claims to send and
    how many rows were handled in all (skipped ones included), so that the caller knows when to stop."""
    settings = settings or get_settings()
    claims: list[Claim] = []
    handled = 0
    enabled = _enabled_settings(session, workspace_id)
    by_ws = {s.workspace_id: s for s in enabled}

    # Retries, and rows whose claimer died (lease over).
    retry = select(EmailSend).where(EmailSend.state.in_(("claimed", "sending", "retrying")),
                                    EmailSend.next_attempt_at <= now, EmailSend.workspace_id.in_(list(by_ws)))
    for row in session.scalars(retry.order_by(EmailSend.next_attempt_at, EmailSend.id).limit(limit)):
        previous_state, previous_attempt = row.state, row.attempts
        won = session.execute(
            update(EmailSend).where(EmailSend.id == row.id, EmailSend.state == previous_state,
                                    EmailSend.attempts == previous_attempt, EmailSend.next_attempt_at <= now)
            .values(state="claimed", attempts=previous_attempt + 1, next_attempt_at=now + _lease(settings),
                    updated_at=now, error=INTERRUPTED if previous_state == "sending" else EmailSend.error)
            .execution_options(synchronize_session=False)).rowcount
        if won != 1:
            continue
        handled += 1
        session.refresh(row)
        if row.subject is None:  # the template did not render last time: perhaps it was fixed since
            try:
                if row.crossing_id is not None:
                    crossing = session.get(BalanceCrossing, row.crossing_id)
                    row.language, text = low_balance_emails.render(
                        session, crossing, low_balance_emails.recipient_of(session, crossing), by_ws[row.workspace_id])
                else:
                    pack = session.get(Pack, row.pack_id)
                    customer = session.get(Customer, pack.customer_id) if pack.customer_id else None
                    row.language, text = _render(session, pack, row.event, customer, by_ws[row.workspace_id], now)
            except CreditdeskError as exc:
                _record_failure_in(session, row, row.attempts, str(exc), now, settings)
                continue
            row.subject, row.text_body, row.html_body = text.subject, text.text_body, text.html_body
        claims.append(Claim(row.id, row.attempts, smtp.Outgoing(to=row.recipient, subject=row.subject,
                                                                text_body=row.text_body, html_body=row.html_body,
                                                                message_id=row.message_id)))

    for ws in enabled:
        if handled >= limit:
            break
        for event, pack in _due_packs(session, ws, now, limit - handled):
            customer = session.get(Customer, pack.customer_id) if pack.customer_id else None
            send_id = new_id("email")
            values = dict(id=send_id, workspace_id=pack.workspace_id, pack_id=pack.id, event=event,
                          recipient=customer.email if customer else None,
                          language=None, message_id=_message_id(send_id, settings), attempts=1,
                          created_at=now, updated_at=now)
            claim = _claim_values(values, _skip_reason(pack, event, customer, session),
                                  lambda: _render(session, pack, event, customer, ws, now), now, settings)
            if not _insert_claim(session, values):
                continue  # another job has it
            handled += 1
            if claim is not None:
                claims.append(claim)
        # Low-balance emails (notify.low_balance_emails): one per crossing, the same claim-before-send.
        for crossing in low_balance_emails.due_crossings(session, ws, now, limit - handled):
            recipient = low_balance_emails.recipient_of(session, crossing)
            send_id = new_id("email")
            values = dict(id=send_id, workspace_id=crossing.workspace_id, pack_id=None, crossing_id=crossing.id,
                          event=low_balance_emails.EVENT, recipient=recipient.email, language=None,
                          message_id=_message_id(send_id, settings), attempts=1, created_at=now, updated_at=now)
            claim = _claim_values(values, low_balance_emails.skip_reason(recipient, crossing),
                                  lambda: low_balance_emails.render(session, crossing, recipient, ws), now, settings)
            if not _insert_claim(session, values, key="crossing_id"):
                continue  # another job has it
            handled += 1
            if claim is not None:
                claims.append(claim)
    return claims, handled


def _claim_values(values: dict, reason: str | None, render: Callable[[], tuple[str, templates.TemplateText]],
                  now: datetime, settings: Settings) -> Claim | None:
    """Fill in a new send-log row: skipped with its reason, retrying when the template does not render, or
    claimed with the message rendered (then the claim to send once the row is inserted)."""
    if reason is not None:
        values.update(state="skipped", error=reason)
        log.info("%s email skipped: %s", values["event"], reason)
        return None
    try:
        values["language"], rendered = render()
    except CreditdeskError as exc:
        values.update(state="retrying", error=str(exc), next_attempt_at=_backoff(1, now, settings))
        return None
    values.update(state="claimed", next_attempt_at=now + _lease(settings), subject=rendered.subject,
                  text_body=rendered.text_body, html_body=rendered.html_body)
    return Claim(values["id"], 1, smtp.Outgoing(to=values["recipient"], subject=rendered.subject,
                                               text_body=rendered.text_body, html_body=rendered.html_body,
                                               message_id=values["message_id"]))


# --- 2. send, 3. record ----------------------------------------------------------------------------

def _backoff(attempt: int, now: datetime, settings: Settings) -> datetime:
    return now + timedelta(seconds=settings.email_retry_base_seconds * 2 ** (attempt - 1))


def _record_failure_in(session: Session, row: EmailSend, attempt: int, error: str, now: datetime,
                       settings: Settings) -> None:
    give_up = attempt >= settings.email_max_attempts
    row.state = "failed" if give_up else "retrying"
    row.error = error[:2000]
    row.next_attempt_at = None if give_up else _backoff(attempt, now, settings)
    row.updated_at = now


def _fenced(session: Session, claim: Claim, state: str) -> EmailSend | None:
    """The row if it is still this claim's (same attempt, expected state), locked; None if another job
    took it over after our lease ended."""
    return session.scalar(select(EmailSend).where(EmailSend.id == claim.send_id, EmailSend.attempts == claim.attempt,
                                                  EmailSend.state == state).with_for_update())


def _start_sending(db: Database, claim: Claim, settings: Settings) -> bool:
    def start(session: Session) -> bool:
        row = _fenced(session, claim, "claimed")
        if row is None:
            return False
        now = clock.now()
        row.state, row.next_attempt_at, row.updated_at = "sending", now + _lease(settings), now
        return True
    return db.write(start)


def deliver(db: Database, claim: Claim, *, settings: Settings | None = None,
            send: Callable[[smtp.Outgoing, Settings], str] | None = None) -> str:
    """Send one claimed email (outside any transaction) and record the outcome; returns the state."""
    settings = settings or get_settings()
    send = send or smtp.send
    if not _start_sending(db, claim, settings):
        return "taken_over"
    try:
        raw = send(claim.outgoing, settings)
    except Exception as exc:  # refused, unreachable, timed out: recorded and retried
        error = f"{type(exc).__name__}: {exc}"
        log.warning("expiry email %s failed: %s", claim.send_id, error)

        def failed(session: Session) -> str:
            row = _fenced(session, claim, "sending")
            if row is None:
                return "taken_over"
            _record_failure_in(session, row, claim.attempt, error, clock.now(), settings)
            return row.state
        return db.write(failed)

    def sent(session: Session) -> str:
        row = _fenced(session, claim, "sending")
        if row is None:
            return "taken_over"
        now = clock.now()
        row.state, row.message, row.sent_at, row.updated_at, row.next_attempt_at = "sent", raw, now, now, None
        if row.error != INTERRUPTED:
            row.error = None
        return "sent"
    return db.write(sent)


def send_due(db: Database, *, workspace_id: str | None = None, batch_size: int = 50,
             progress: Callable[[int], None] | None = None, settings: Settings | None = None) -> dict:
    """Claim and send every expiry email that is due, a batch per claim transaction. Safe to run on
    several nodes at once and to re-run. Without an SMTP host nothing is claimed (it would only fail)."""
    settings = settings or get_settings()
    result = RunResult()
    if not smtp.is_configured(settings):
        return result.as_dict()
    while True:
        claims, handled = db.write(lambda session: claim_due(session, now=clock.now(), limit=batch_size,
                                                             workspace_id=workspace_id, settings=settings))
        result.skipped += handled - len(claims)
        for claim in claims:
            state = deliver(db, claim, settings=settings)
            if state == "sent":
                result.sent += 1
            elif state in ("retrying", "failed"):
                result.failed += 1
            if progress:
                progress(1)
        if handled < batch_size:
            return result.as_dict()
