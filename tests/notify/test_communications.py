"""Communicating a bill through a real SMTP server on loopback: the email arrives once with the invoice PDF,
a crash after the commit is recovered by the job exactly once, a temporary refusal is retried, a draft is
not a bill, the sandbox refuses unsafe templates, a member changes nothing."""

from __future__ import annotations

import io
import os

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from creditdesk.audit import AuditEvent
from creditdesk.errors import InvalidInput, NotPermitted
from creditdesk.jobs import runner
from creditdesk.notify import communication_schemas as cs
from creditdesk.notify import communications
from creditdesk.notify.communication_models import Communication, CommunicationTemplate
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from tests.billing.factories import Shop
from tests.parties.factories import actor_of, make_user


class Bills(Shop):
    """A shop whose customer has an email address, a posted invoice and the default bill template."""

    def __init__(self, db):
        super().__init__(db, name="Bills")
        self.email = f"accounts-{os.urandom(3).hex()}@acme.example.com"
        db.write(lambda s: parties.update_customer(s, self.customer_id, ps.CustomerUpdate(email=self.email),
                                                   actor=self.actor))
        self.acc = self.account()
        self.bill = self.posted(self.acc)
        self.template = db.write(lambda s: communications.ensure_default_template(s, actor=self.actor).id)

    def send(self, *, actor=None, **body):
        data = cs.CommunicateIn.model_validate({"to": self.email, "template_id": self.template, **body})
        return self.db.write(lambda s: communications.communicate(s, self.bill.id, data,
                                                                  actor=actor or self.actor).id)

    def row(self, comm_id: str) -> Communication:
        with self.db.read() as s:
            row = s.get(Communication, comm_id)
            s.expunge(row)
            return row


@pytest.fixture
def bills(db):
    return Bills(db)


def _pdf_of(message) -> tuple[str, bytes]:
    [part] = [p for p in message.iter_attachments()]
    assert part.get_content_type() == "application/pdf"
    return part.get_filename(), part.get_content()


def test_the_bill_arrives_once_with_its_pdf(db, bills, smtp_server):
    comm_id = bills.send()
    [message] = smtp_server.to(bills.email)
    number = bills.get(bills.bill).number
    assert message["Subject"] == f"Your invoice {number}"
    assert "Acme" in message.get_body(("plain",)).get_content()
    filename, content = _pdf_of(message)
    assert filename == f"{number}.pdf" and content.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    assert number in text
    row = bills.row(comm_id)
    assert (row.status, row.recipient, row.attachments, row.send_due_at) == ("sent", bills.email, [f"{number}.pdf"],
                                                                            None)
    assert row.message_id == message["Message-ID"] and row.sent_at is not None and row.customer_id == bills.customer_id
    # The recovery job finds nothing left to do: nothing more arrives.
    assert communications.complete_due(db, workspace_id=bills.ws.id) == 0
    assert len(smtp_server.to(bills.email)) == 1
    with db.read() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.object_id == comm_id)
                                 .order_by(AuditEvent.id)))
    assert actions == ["communication.create", "communication.send"]


def test_edited_content_and_another_address(db, bills, smtp_server):
    comm_id = bills.send(to="boss@elsewhere.example.com", subject="Bill {{ invoice.number }} (corrected)",
                         body="Total {{ invoice.total }}")
    [message] = smtp_server.to("boss@elsewhere.example.com")
    number = bills.get(bills.bill).number
    assert message["Subject"] == f"Bill {number} (corrected)"
    assert message.get_body(("plain",)).get_content().strip() == "Total $330.00"
    assert bills.row(comm_id).template_id == bills.template
    assert smtp_server.to(bills.email) == []


def test_a_crash_after_the_commit_is_sent_once_by_the_recovery_job(db, bills, smtp_server, frozen_clock,
                                                                    monkeypatch):
    monkeypatch.setattr(communications, "_after_commit", lambda *a, **k: None)  # the process dies here
    comm_id = bills.send()
    assert smtp_server.messages == [] and bills.row(comm_id).status == "queued"
    assert runner.send_due_communications(db) == 0  # its lease is not over: the request may still be sending
    assert smtp_server.messages == []
    frozen_clock.advance(seconds=61)
    assert communications.complete_due(db, workspace_id=bills.ws.id) == 1
    assert communications.complete_due(db, workspace_id=bills.ws.id) == 0
    frozen_clock.advance(hours=2)
    runner.run_all(db)
    [message] = smtp_server.to(bills.email)
    row = bills.row(comm_id)
    assert (row.status, row.send_attempts) == ("sent", 2) and row.message_id == message["Message-ID"]
    with db.read() as s:
        kind = s.scalar(select(AuditEvent.actor_kind).where(AuditEvent.object_id == comm_id,
                                                            AuditEvent.action == "communication.send"))
    assert kind == "system"


def test_a_temporary_refusal_is_retried_later_and_sent_once(db, bills, smtp_server, frozen_clock):
    smtp_server.refuse_next = 1
    comm_id = bills.send()
    row = bills.row(comm_id)
    assert row.status == "queued" and "451" in row.error and smtp_server.messages == []
    frozen_clock.advance(seconds=30)
    assert communications.complete_due(db, workspace_id=bills.ws.id) == 0  # not due before the backoff
    frozen_clock.advance(minutes=2)
    assert communications.complete_due(db, workspace_id=bills.ws.id) == 1
    assert len(smtp_server.to(bills.email)) == 1
    assert bills.row(comm_id).status == "sent" and bills.row(comm_id).error is None


def test_without_smtp_the_communication_fails_and_says_why(db, bills, settings_env):
    settings_env(smtp_host="")
    comm_id = bills.send()
    row = bills.row(comm_id)
    assert row.status == "failed" and "SMTP_HOST" in row.error and row.send_due_at is None


def test_a_draft_or_void_invoice_is_not_a_bill(db, bills, smtp_server):
    draft = bills.invoice(bills.acc)
    data = cs.CommunicateIn(to=bills.email, template_id=bills.template)
    with pytest.raises(communications.InvoiceNotBilled) as refused:
        db.write(lambda s: communications.communicate(s, draft.id, data, actor=bills.actor))
    assert refused.value.code == "invoice_not_billed" and refused.value.http_status == 409
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Communication).where(
            Communication.workspace_id == bills.ws.id)) == 0
    assert smtp_server.messages == []


@pytest.mark.parametrize("subject,body,code", [
    ("{{ ''.__class__.__mro__ }}", "x", "template_unsafe"),
    ("Hi", "{{ invoice.__class__ }}", "template_unsafe"),
    ("Hi", "{{ cycler.__init__.__globals__ }}", "template_unsafe"),
    ("Hi", "{{ 'x' * 100000 }}", "template_unsafe"),
    ("Hi", "{{ nobody.name }}", "template_invalid"),
    ("Hi {% if %}", "x", "template_invalid"),
])
def test_the_sandbox_refuses_unsafe_or_broken_templates(db, bills, subject, body, code):
    data = cs.TemplateCreate(name="Hostile", subject=subject, body=body)
    with pytest.raises(InvalidInput) as refused:
        db.write(lambda s: communications.create_template(s, data, actor=bills.actor))
    assert refused.value.code == code
    # Inline content is rendered in the same sandbox when sending.
    with pytest.raises(InvalidInput):
        bills.send(template_id=None, subject=subject, body=body)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CommunicationTemplate).where(
            CommunicationTemplate.workspace_id == bills.ws.id, CommunicationTemplate.name == "Hostile")) == 0
        assert s.scalar(select(func.count()).select_from(Communication).where(
            Communication.workspace_id == bills.ws.id)) == 0


def test_a_member_is_refused_and_nothing_changes(db, bills, smtp_server):
    member = actor_of(db, make_user(db, actor=bills.actor, name="Mel Member", role="member",
                                    permissions=["consume_credits", "manage_packs"]))
    with pytest.raises(NotPermitted):
        bills.send(actor=member)
    with pytest.raises(NotPermitted):
        db.write(lambda s: communications.update_template(s, bills.template, cs.TemplateUpdate(subject="Mine"),
                                                          actor=member))
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Communication).where(
            Communication.workspace_id == bills.ws.id)) == 0
        assert s.get(CommunicationTemplate, bills.template).subject == communications.DEFAULT_SUBJECT
    assert smtp_server.messages == []
    # Members read and preview.
    with db.read() as s:
        out = communications.preview(s, cs.PreviewIn(invoice_id=bills.bill.id, template_id=bills.template),
                                     actor=member)
    assert out.subject == f"Your invoice {bills.get(bills.bill).number}"


def test_recipients_are_the_customers_offices_and_contacts(db, bills):
    office = db.write(lambda s: parties.create_office(s, ps.OfficeCreate(
        name="Acme Leeds", customer_id=bills.customer_id, email="leeds@acme.example.com"), actor=bills.actor).id)
    db.write(lambda s: parties.create_user(s, ps.UserCreate(name="Wendy Widget", email="wendy@acme.example.com",
                                                            is_staff=False, primary_office_id=office),
                                           actor=bills.actor))
    with db.read() as s:
        found = communications.recipients(s, bills.ws.id, bills.customer_id)
    assert [email for _, email in found] == [bills.email, "leeds@acme.example.com", "wendy@acme.example.com"]
