"""Request and response shapes of bill communications (bodies refuse unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from creditdesk.parties.schemas import Input, Output

Subject = Field(min_length=1, max_length=500)
Body = Field(min_length=1, max_length=50_000)


class TemplateCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    subject: str = Subject
    body: str = Body


class TemplateUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    subject: str | None = Field(default=None, min_length=1, max_length=500)
    body: str | None = Field(default=None, min_length=1, max_length=50_000)


class TemplateOut(Output):
    id: str
    object: Literal["communication_template"] = "communication_template"
    name: str
    subject: str
    body: str
    archived: bool
    created_at: datetime
    updated_at: datetime


class PreviewIn(Input):
    invoice_id: str = Field(max_length=40, description="The invoice the template is rendered for.")
    template_id: str | None = Field(default=None, max_length=40,
                                    description="A stored template; `subject` and `body` given here replace its own.")
    subject: str | None = Field(default=None, min_length=1, max_length=500)
    body: str | None = Field(default=None, min_length=1, max_length=50_000)


class PreviewOut(Output):
    object: Literal["communication_preview"] = "communication_preview"
    subject: str
    body: str
    attachments: list[str]


class CommunicateIn(Input):
    to: EmailStr = Field(description="The address the email goes to: the customer's, a contact's, or any other.")
    template_id: str | None = Field(default=None, max_length=40,
                                    description="A template rendered for the invoice; `subject` and `body` given "
                                                "here replace its own (the content edited before sending).")
    subject: str | None = Field(default=None, min_length=1, max_length=500,
                                description="Jinja2, rendered for the invoice like a template's.")
    body: str | None = Field(default=None, min_length=1, max_length=50_000,
                             description="Jinja2, rendered for the invoice like a template's.")


class CommunicationOut(Output):
    id: str
    object: Literal["communication"] = "communication"
    customer_id: str
    invoice_id: str
    template_id: str | None
    to: str = Field(validation_alias="recipient")
    subject: str
    body: str
    attachments: list[str]
    status: Literal["queued", "sent", "failed"]
    message_id: str
    error: str | None
    attempts: int = Field(validation_alias="send_attempts")
    created_by: str | None
    created_at: datetime
    sent_at: datetime | None
