"""Expiry email settings, templates and the send log.

The send log is what makes an email go out once per pack and event: its row is claimed (inserted,
UNIQUE per pack and event) in a transaction that commits BEFORE the SMTP conversation, and its outcome
is recorded in another one after it. README "Expiry emails" says exactly what "once" means.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, UTCDateTime

EVENTS = ("warning", "expired", "balance_low")
PACK_EVENTS = ("warning", "expired")  # about one pack; balance_low is about a holder's balance (a crossing)
# claimed: the row is ours, nothing went out yet; sending: the SMTP conversation may have started;
# sent: the server accepted it; retrying: failed, tried again at next_attempt_at; failed: gave up;
# skipped: never sent, on purpose (no recipient, nothing left...): `error` says why.
SEND_STATES = ("claimed", "sending", "sent", "retrying", "failed", "skipped")


class EmailSettings(Base):
    """One row per workspace (absent: the defaults). SMTP settings are NOT here: they come from the
    environment (config.Settings.smtp_*), so no password is ever stored in the database."""

    __tablename__ = "email_settings"
    __table_args__ = (CheckConstraint("warning_days >= 1 AND warning_days <= 365", name="warning_days_range"),)

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    send_warning: Mapped[bool] = mapped_column(Boolean, default=True)
    warning_days: Mapped[int] = mapped_column(Integer, default=14)
    send_expired: Mapped[bool] = mapped_column(Boolean, default=True)
    send_balance_low: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    default_language: Mapped[str] = mapped_column(String(16), default="en")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EmailTemplate(Base):
    """A workspace's own template for an event in a language; without one the shipped default is used."""

    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "event", "language"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    event: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EmailSend(Base):
    """The send log: one row per pack and event, or per balance crossing and event, ever."""

    __tablename__ = "email_sends"
    __table_args__ = (UniqueConstraint("pack_id", "event"), UniqueConstraint("crossing_id", "event"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    pack_id: Mapped[str | None] = mapped_column(ForeignKey("packs.id"))  # warning, expired
    crossing_id: Mapped[str | None] = mapped_column(ForeignKey("balance_crossings.id"))  # balance_low
    event: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(12))
    recipient: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str | None] = mapped_column(String(16))
    # Fixed at the first claim and sent with every attempt: a resend after an interrupted send carries
    # the same Message-ID, so a duplicate can be recognised (and dropped) downstream.
    message_id: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(Text)
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    # The whole message (headers and body) as handed to the SMTP server by the last attempt.
    message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # claimed/sending: when another job may take the row over (its claimer died);
    # retrying: when the next attempt is due.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


Index("ix_email_sends_ws_id", EmailSend.workspace_id, EmailSend.id)
Index("ix_email_sends_due", EmailSend.state, EmailSend.next_attempt_at)
