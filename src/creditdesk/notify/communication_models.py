"""Communicating a bill (seed 002 "Communicate Bill"): the workspace's communication templates and the
communications sent to customers, each with its invoice as a PDF attachment.

A communication is recorded `queued` with its SMTP conversation *due* (`send_due_at`, as in
creditdesk.external_calls) in the transaction that decides it; the email goes out after the commit and
its outcome (`sent` or `failed`) is recorded in a second, short transaction that clears the due column.
A communication whose outcome was never recorded (the process died) is sent by the recovery job.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

COMMUNICATION_STATUSES = ("queued", "sent", "failed")


class CommunicationTemplate(Base):
    """A bill template: a subject and a plain-text body in Jinja2 (rendered in the sandbox of
    notify.templates). Deleting one archives it: communications sent with it keep pointing at it."""

    __tablename__ = "communication_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_communication_templates_ws_id", CommunicationTemplate.workspace_id, CommunicationTemplate.id)


class Communication(Base):
    """One email about one invoice to one address, as it was sent (subject and body rendered, edited
    or not). Recorded on the customer."""

    __tablename__ = "communications"
    __table_args__ = (CheckConstraint("status IN ('queued', 'sent', 'failed')", name="status_known"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"))
    template_id: Mapped[str | None] = mapped_column(ForeignKey("communication_templates.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list] = mapped_column(JSONType, default=list)  # file names, e.g. ["INV-000001.pdf"]
    status: Mapped[str] = mapped_column(String(10), default="queued")
    # Fixed when the row is made and sent with every attempt: a resend after an interrupted conversation
    # carries the same Message-ID, so a duplicate can be recognised downstream.
    message_id: Mapped[str] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The SMTP conversation is due (creditdesk.external_calls): set while queued, cleared with the outcome.
    send_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


Index("ix_communications_ws_id", Communication.workspace_id, Communication.id)
Index("ix_communications_customer", Communication.workspace_id, Communication.customer_id, Communication.id)
Index("ix_communications_invoice", Communication.workspace_id, Communication.invoice_id, Communication.id)
Index("ix_communications_send_due", Communication.send_due_at)
