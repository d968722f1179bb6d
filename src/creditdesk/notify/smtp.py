"""Sending one email through SMTP (stdlib smtplib), as configured by CREDITDESK_SMTP_*.

Called outside any database transaction, after the send-log row was claimed and committed.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from creditdesk.config import Settings, get_settings


class SmtpNotConfigured(Exception):
    pass


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Outgoing:
    to: str
    subject: str
    text_body: str
    html_body: str | None
    message_id: str
    attachments: tuple[Attachment, ...] = ()


def message_id_for(object_id: str, settings: Settings | None = None) -> str:
    """The Message-ID of the email a row stands for: fixed by the row, so every attempt carries the same."""
    sender = (settings or get_settings()).smtp_from
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "creditdesk"
    return f"<{object_id}@{domain}>"


def is_configured(settings: Settings | None = None) -> bool:
    return bool((settings or get_settings()).smtp_host)


def build_message(outgoing: Outgoing, *, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = outgoing.to
    message["Subject"] = outgoing.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = outgoing.message_id
    message.set_content(outgoing.text_body)
    if outgoing.html_body:
        message.add_alternative(outgoing.html_body, subtype="html")
    for attachment in outgoing.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=attachment.filename)
    return message


def send(outgoing: Outgoing, settings: Settings | None = None) -> str:
    """Hand the message to the SMTP server; returns the message as sent. Raises on any refusal or
    connection problem (the caller records it as a failure to retry)."""
    settings = settings or get_settings()
    if not settings.smtp_host:
        raise SmtpNotConfigured("No mail server is configured for this installation (CREDITDESK_SMTP_HOST is "
                                "not set): nothing was sent.")
    message = build_message(outgoing, sender=settings.smtp_from)
    if settings.smtp_ssl:
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port,
                                                timeout=settings.smtp_timeout_seconds,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)
    with client:
        if settings.smtp_starttls and not settings.smtp_ssl:
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            client.login(settings.smtp_username, password)
        refused = client.send_message(message)
        if refused:  # some recipients refused (we send to one: it was refused)
            raise smtplib.SMTPRecipientsRefused(refused)
    return message.as_string()
