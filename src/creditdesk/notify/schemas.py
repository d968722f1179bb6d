"""Request and response shapes of the expiry email API (bodies refuse unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from creditdesk.parties.schemas import Input, Output

Event = Literal["warning", "expired", "balance_low"]
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$"


class EmailSettingsOut(Output):
    object: Literal["email_settings"] = "email_settings"
    enabled: bool
    send_warning: bool
    warning_days: int
    send_expired: bool
    send_balance_low: bool = Field(description="Email the holder's contacts when a balance falls below its "
                                               "low-balance threshold (one email per crossing).")
    default_language: str
    smtp_configured: bool = Field(description="Whether CREDITDESK_SMTP_HOST is set (SMTP settings come from "
                                              "the environment, never from the database).")


class EmailSettingsUpdate(Input):
    enabled: bool | None = None
    send_warning: bool | None = None
    warning_days: int | None = Field(default=None, ge=1, le=365)
    send_expired: bool | None = None
    send_balance_low: bool | None = None
    default_language: str | None = Field(default=None, max_length=16, pattern=LANGUAGE_PATTERN)


class EmailTemplateIn(Input):
    subject: str = Field(min_length=1, max_length=500)
    text_body: str = Field(min_length=1, max_length=50_000)
    html_body: str | None = Field(default=None, max_length=100_000)


class EmailTemplatePut(EmailTemplateIn):
    event: Event
    language: str = Field(max_length=16, pattern=LANGUAGE_PATTERN, description="en, de, fr-CA...")


class EmailTemplateOut(Output):
    object: Literal["email_template"] = "email_template"
    event: Event
    language: str
    subject: str
    text_body: str
    html_body: str | None
    is_default: bool = Field(description="True: the shipped default (the workspace has not changed it).")


class PreviewIn(Input):
    event: Event
    subject: str = Field(min_length=1, max_length=500)
    text_body: str = Field(min_length=1, max_length=50_000)
    html_body: str | None = Field(default=None, max_length=100_000)


class PreviewOut(Output):
    object: Literal["email_preview"] = "email_preview"
    subject: str
    text_body: str
    html_body: str | None


class EmailSendOut(Output):
    id: str
    object: Literal["email_send"] = "email_send"
    pack_id: str | None = Field(description="The pack of an expiry warning or notice.")
    crossing_id: str | None = Field(default=None, description="The balance crossing of a balance_low email.")
    event: str
    state: str
    recipient: str | None
    language: str | None
    message_id: str
    subject: str | None
    text_body: str | None
    html_body: str | None
    message: str | None
    attempts: int
    error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
