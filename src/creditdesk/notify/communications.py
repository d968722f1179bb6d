"""Communicate a bill (seed 002): from a posted or settled invoice, render a communication template for it
(Jinja2 in the sandbox of notify.templates), edit the content if needed, choose the address, and send it
with the invoice PDF attached through SMTP (notify.smtp, the expiry emails' sender and settings).

Who may: masters and managers send and manage templates (as they raise invoices); every staff user reads
templates, previews and the communications.

Sent after the commit, once (creditdesk.external_calls): `communicate` records the communication
`queued` with its SMTP conversation due, audited, in the caller's transaction; after the commit
`complete_communication` sends it outside any transaction and records the outcome in a short one. A
retry of the request with the same idempotency key replays its answer and sends nothing. A request that
died after its commit leaves the communication queued and due: once its lease ends, the recovery job
(`complete_due`, run by jobs.runner) claims and sends it. SMTP has no idempotency key: if a process dies
after the server accepted the message and before the outcome was committed, the recovery sends it again
with the same Message-ID (the one window where a duplicate can happen; as for the expiry emails).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies, external_calls
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import invoices
from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.models import BillingAccount
from creditdesk.config import get_settings
from creditdesk.db import Database
from creditdesk.errors import Conflict, InvalidInput
from creditdesk.ids import new_id
from creditdesk.notify import communication_schemas as cs
from creditdesk.notify import smtp, templates
from creditdesk.notify.communication_models import COMMUNICATION_STATUSES, Communication, CommunicationTemplate
from creditdesk.pagination import Page, paginate
from creditdesk.parties.models import Customer, Office, User, Workspace
from creditdesk.repository import get_in_workspace

log = logging.getLogger("creditdesk.notify")

BILLED = ("posted", "settled")
DEFAULT_TEMPLATE_NAME = "Bill"
DEFAULT_SUBJECT = "Your invoice {{ invoice.number }}"
DEFAULT_BODY = ("Hello {{ customer.name }},\n\n"
                "please find attached invoice {{ invoice.number }} of {{ invoice.issue_date }} for "
                "{{ invoice.total }}. {{ invoice.amount_due }} is due by {{ invoice.due_date }}.\n\n"
                "{{ workspace.name }}\n")
VARIABLES = ("invoice.number", "invoice.status", "invoice.issue_date", "invoice.due_date", "invoice.currency",
             "invoice.subtotal", "invoice.tax_total", "invoice.total", "invoice.amount_paid", "invoice.amount_due",
             "invoice.notes", "account.number", "account.name", "customer.name", "customer.email", "workspace.name")

_after_commit = external_calls.run_after_commit  # a module global: tests replace it to play a crash


class InvoiceNotBilled(Conflict):
    code = "invoice_not_billed"


def require_sender(actor: Actor, what: str) -> None:
    """Masters and managers (the invoices' writers)."""
    invoices.require_billing_writer(actor, what)


# --- rendering --------------------------------------------------------------------------------------

def context_for(*, invoice: dict, account: dict, customer: dict, workspace_name: str) -> dict:
    return {"invoice": invoice, "account": account, "customer": customer, "workspace": {"name": workspace_name}}


def invoice_context(session: Session, invoice: Invoice) -> dict:
    """What a template sees of an invoice: amounts as people read them ("$1,650.00"), dates as ISO text."""
    account = session.get(BillingAccount, invoice.account_id)
    customer = session.get(Customer, invoice.customer_id)
    workspace = session.get(Workspace, invoice.workspace_id)

    def money(amount: int) -> str:
        return currencies.format_money(amount, invoice.currency)

    return context_for(
        invoice={"id": invoice.id, "number": invoice.number or "", "status": invoice.status,
                 "issue_date": invoice.issue_date.isoformat(), "due_date": invoice.due_date.isoformat(),
                 "currency": invoice.currency, "subtotal": money(invoice.subtotal),
                 "tax_total": money(invoice.tax_total), "total": money(invoice.total),
                 "amount_paid": money(invoice.amount_paid), "amount_due": money(invoice.amount_due),
                 "notes": invoice.notes or ""},
        account={"number": account.number if account else "", "name": account.name if account else ""},
        customer={"name": customer.name if customer else "", "email": (customer.email or "") if customer else ""},
        workspace_name=workspace.name if workspace else "")


def sample_context() -> dict:
    """The invoice a template is checked on before it is stored."""
    return context_for(
        invoice={"id": "inv_sample", "number": "INV-000042", "status": "posted", "issue_date": "2026-12-01",
                 "due_date": "2026-12-31", "currency": "AUD", "subtotal": "$150.00", "tax_total": "$15.00",
                 "total": "$165.00", "amount_paid": "$0.00", "amount_due": "$165.00", "notes": ""},
        account={"number": "ACC-000001", "name": "Main account"},
        customer={"name": "Ada Example", "email": "ada@example.com"}, workspace_name="Your business")


def render(subject: str, body: str, context: dict) -> tuple[str, str]:
    """(subject, body) rendered in the sandbox; InvalidInput template_invalid / template_unsafe otherwise."""
    rendered_subject = templates.render_one(subject, context, html=False, field="subject")
    # A header cannot hold line breaks.
    rendered_subject = " ".join(rendered_subject.split())
    if not rendered_subject:
        raise InvalidInput("The subject renders empty.", code="template_invalid", field="subject")
    return rendered_subject, templates.render_one(body, context, html=False, field="body")


def check(subject: str, body: str) -> None:
    render(subject, body, sample_context())


def attachment_name(invoice: Invoice) -> str:
    return f"{invoice.number or 'draft-' + invoice.id}.pdf"


# --- templates --------------------------------------------------------------------------------------

def _name_taken(session: Session, workspace_id: str, name: str, except_id: str | None = None) -> None:
    stmt = select(CommunicationTemplate.id).where(CommunicationTemplate.workspace_id == workspace_id,
                                                  CommunicationTemplate.name == name)
    if except_id:
        stmt = stmt.where(CommunicationTemplate.id != except_id)
    if session.scalar(stmt) is not None:
        raise Conflict(f"A communication template is already named {name!r}.", code="template_name_taken",
                       field="name")


def get_template(session: Session, workspace_id: str, template_id: str, *,
                 for_update: bool = False) -> CommunicationTemplate:
    return get_in_workspace(session, CommunicationTemplate, workspace_id, template_id,
                            label="communication template", for_update=for_update)


def list_templates(session: Session, *, actor: Actor, include_archived: bool = False) -> list[CommunicationTemplate]:
    stmt = select(CommunicationTemplate).where(CommunicationTemplate.workspace_id == actor.workspace_id)
    if not include_archived:
        stmt = stmt.where(CommunicationTemplate.archived.is_(False))
    return list(session.scalars(stmt.order_by(CommunicationTemplate.name, CommunicationTemplate.id).limit(500)))


def create_template(session: Session, data: cs.TemplateCreate, *, actor: Actor) -> CommunicationTemplate:
    require_sender(actor, "manage communication templates")
    check(data.subject, data.body)
    _name_taken(session, actor.workspace_id, data.name)
    now = clock.now()
    row = CommunicationTemplate(id=new_id("ctpl"), workspace_id=actor.workspace_id, name=data.name,
                                subject=data.subject, body=data.body, archived=False, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="communication_template.create", object_type="communication_template",
                 object_id=row.id, after=snapshot(row))
    return row


def update_template(session: Session, template_id: str, data: cs.TemplateUpdate, *,
                    actor: Actor) -> CommunicationTemplate:
    require_sender(actor, "manage communication templates")
    row = get_template(session, actor.workspace_id, template_id, for_update=True)
    for name in data.model_fields_set:
        if getattr(data, name) is None:
            raise InvalidInput(f"{name} cannot be null.", code="field_not_nullable", field=name)
    subject = data.subject if "subject" in data.model_fields_set else row.subject
    body = data.body if "body" in data.model_fields_set else row.body
    check(subject, body)
    if "name" in data.model_fields_set and data.name != row.name:
        _name_taken(session, actor.workspace_id, data.name, except_id=row.id)
    before = snapshot(row)
    row.name = data.name if "name" in data.model_fields_set else row.name
    row.subject, row.body, row.updated_at = subject, body, clock.now()
    session.flush()
    audit.record(session, actor=actor, action="communication_template.update", object_type="communication_template",
                 object_id=row.id, before=before, after=snapshot(row))
    return row


def delete_template(session: Session, template_id: str, *, actor: Actor) -> CommunicationTemplate:
    """Archived, not removed: the communications sent with it still name it. Its name is freed."""
    require_sender(actor, "manage communication templates")
    row = get_template(session, actor.workspace_id, template_id, for_update=True)
    if row.archived:
        return row
    before = snapshot(row)
    row.archived = True
    row.name = f"{row.name[:170]} (archived {row.id[-8:]})"
    row.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="communication_template.delete", object_type="communication_template",
                 object_id=row.id, before=before, after=snapshot(row))
    return row


def template_out(row: CommunicationTemplate) -> cs.TemplateOut:
    return cs.TemplateOut.model_validate(row)


def ensure_default_template(session: Session, *, actor: Actor) -> CommunicationTemplate:
    """The shipped bill template ("Your invoice {{ invoice.number }}"), made once per workspace (demo data)."""
    existing = session.scalar(select(CommunicationTemplate).where(
        CommunicationTemplate.workspace_id == actor.workspace_id, CommunicationTemplate.name == DEFAULT_TEMPLATE_NAME))
    if existing is not None:
        return existing
    return create_template(session, cs.TemplateCreate(name=DEFAULT_TEMPLATE_NAME, subject=DEFAULT_SUBJECT,
                                                      body=DEFAULT_BODY), actor=actor)


# --- what is sent -----------------------------------------------------------------------------------

def _content(session: Session, workspace_id: str, template_id: str | None, subject: str | None,
             body: str | None) -> tuple[CommunicationTemplate | None, str, str]:
    """The template (if any) and the subject and body sources: the ones given replace the template's."""
    template = None
    if template_id:
        template = get_template(session, workspace_id, template_id)
        if template.archived:
            raise InvalidInput("This communication template is archived.", code="template_archived",
                               field="template_id")
    subject = subject if subject is not None else (template.subject if template else None)
    body = body if body is not None else (template.body if template else None)
    if subject is None or body is None:
        raise InvalidInput("Choose a template, or give the subject and the body.", code="content_required",
                           field="template_id")
    return template, subject, body


def preview(session: Session, data: cs.PreviewIn, *, actor: Actor) -> cs.PreviewOut:
    """The template rendered for the invoice, as the customer would get it (nothing is stored)."""
    invoice = invoices.get_invoice(session, actor.workspace_id, data.invoice_id)
    _, subject, body = _content(session, actor.workspace_id, data.template_id, data.subject, data.body)
    subject, body = render(subject, body, invoice_context(session, invoice))
    return cs.PreviewOut(subject=subject, body=body, attachments=[attachment_name(invoice)])


def recipients(session: Session, workspace_id: str, customer_id: str) -> list[tuple[str, str]]:
    """The customer's known addresses as (label, email): its own, its offices', its contacts' (people of its
    offices without a login). Any other address may be typed as well."""
    customer = get_in_workspace(session, Customer, workspace_id, customer_id)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(label: str, email: str | None) -> None:
        if email and email.lower() not in seen:
            seen.add(email.lower())
            out.append((label, email))

    add(f"{customer.name} (customer)", customer.email)
    offices = list(session.scalars(select(Office).where(Office.workspace_id == workspace_id,
                                                        Office.customer_id == customer.id).order_by(Office.name)))
    for office in offices:
        add(f"{office.name} (office)", office.email)
    if offices:
        contacts = session.scalars(select(User).where(
            User.workspace_id == workspace_id, User.is_staff.is_(False), User.is_active.is_(True),
            User.primary_office_id.in_([o.id for o in offices])).order_by(User.name, User.id))
        for person in contacts:
            add(f"{person.name} (contact)", person.email)
    return out


def communicate(session: Session, invoice_id: str, data: cs.CommunicateIn, *, actor: Actor,
                rendered: bool = False) -> Communication:
    """Record the communication of a bill, queued; the email (with the invoice PDF) goes out after the
    commit. 409 invoice_not_billed for a draft or a voided invoice.

    `rendered`: the subject and body given are the final text (the back office's form shows the template
    already rendered for the invoice, edited by hand), sent as they are rather than rendered again."""
    require_sender(actor, "communicate bills")
    invoice = invoices.get_invoice(session, actor.workspace_id, invoice_id)
    template, subject, body = _content(session, actor.workspace_id, data.template_id, data.subject, data.body)
    if invoice.status not in BILLED:
        raise InvoiceNotBilled(f"Only a posted or settled invoice is a bill; this one is {invoice.status}.",
                               invoice_status=invoice.status)
    if rendered and data.subject is not None and data.body is not None:
        subject = " ".join(subject.split())
    else:
        subject, body = render(subject, body, invoice_context(session, invoice))
    now = clock.now()
    comm_id = new_id("comm")
    row = Communication(id=comm_id, workspace_id=actor.workspace_id, customer_id=invoice.customer_id,
                        invoice_id=invoice.id, template_id=template.id if template else None, recipient=str(data.to),
                        subject=subject, body=body, attachments=[attachment_name(invoice)], status="queued",
                        message_id=smtp.message_id_for(comm_id), error=None, created_by=actor.user_id,
                        created_at=now, updated_at=now, sent_at=None,
                        send_due_at=now + external_calls.call_lease(1), send_attempts=1)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="communication.create", object_type="communication",
                 object_id=row.id, after=snapshot(row))
    _after_commit(session, row, lambda db, object_id: complete_communication(db, object_id, actor=actor))
    return row


# --- after the commit: send, record ------------------------------------------------------------------

def _outgoing(db: Database, row: Communication) -> smtp.Outgoing:
    """The email with the invoice as it stands now, as a PDF."""
    from creditdesk.billing import pdf

    with db.read() as session:
        invoice = session.get(Invoice, row.invoice_id)
        content = pdf.render_invoice(session, invoice)
        name = attachment_name(invoice)
    return smtp.Outgoing(to=row.recipient, subject=row.subject, text_body=row.body, html_body=None,
                         message_id=row.message_id,
                         attachments=(smtp.Attachment(name, content, "application/pdf"),))


def _transient(exc: Exception) -> bool:
    """Worth another attempt: the server said 4xx, or the connection failed. Not: 5xx, no SMTP host."""
    if isinstance(exc, (smtp.SmtpNotConfigured, smtplib.SMTPNotSupportedError, UnicodeError)):
        return False  # no host; an address the server cannot take (non-ASCII without SMTPUTF8)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, OSError)


def complete_communication(db: Database, communication_id: str, *, actor: Actor | None = None) -> Communication | None:
    """Send a communication whose sending is due, outside any transaction, and record the outcome in a
    short transaction of its own. Run after `communicate` committed, and by the recovery job."""
    row = external_calls.detached(db, Communication, communication_id)
    if row is None or row.send_due_at is None:
        return row
    settings = get_settings()
    try:
        smtp.send(_outgoing(db, row), settings)
        error, transient = None, False
    except Exception as exc:  # refused, unreachable, not configured: recorded (and retried when worth it)
        # The person reads this on the bill's page: a missing mail server in words, the rest as the server said.
        said = str(exc) if isinstance(exc, smtp.SmtpNotConfigured) else f"{type(exc).__name__}: {exc}"
        error, transient = said[:2000], _transient(exc)
        log.warning("communication %s not sent: %s", communication_id, error)
    return db.write(lambda session: _record(session, communication_id, error, transient=transient, actor=actor))


def _record(session: Session, communication_id: str, error: str | None, *, transient: bool,
            actor: Actor | None) -> Communication:
    row = session.execute(select(Communication).where(Communication.id == communication_id)
                          .with_for_update()).scalar_one()
    if row.send_due_at is None or row.status != "queued":
        return row  # recorded already, by a concurrent recovery
    settings = get_settings()
    actor = actor or Actor.system(row.workspace_id)
    before = snapshot(row)
    now = clock.now()
    row.updated_at = now
    if error is None:
        row.status, row.sent_at, row.error, row.send_due_at = "sent", now, None, None
        action = "communication.send"
    elif transient and row.send_attempts < settings.email_max_attempts:
        # Stays queued; the recovery job tries again after the backoff.
        row.error = error
        row.send_due_at = now + timedelta(seconds=settings.email_retry_base_seconds * 2 ** (row.send_attempts - 1))
        action = "communication.retry"
    else:
        row.status, row.error, row.send_due_at = "failed", error, None
        action = "communication.fail"
    session.flush()
    audit.record(session, actor=actor, action=action, object_type="communication", object_id=row.id,
                 before=before, after=snapshot(row))
    return row


def complete_due(db: Database, *, workspace_id: str | None = None, batch_size: int = 50) -> int:
    """The recovery job: send the communications still due (a request that died after its commit, a
    retry whose time has come). Each is claimed first (a new, longer lease), so several nodes never send
    the same at once. Returns how many were completed (sent or given up)."""
    done = 0
    while True:
        claimed = db.write(lambda session: external_calls.claim_due(
            session, Communication, Communication.send_due_at, Communication.send_attempts,
            workspace_id=workspace_id, limit=batch_size))
        for object_id in claimed:
            try:
                row = complete_communication(db, object_id)
                done += row is not None and row.status != "queued"
            except Exception:  # the lease ends and a later run tries again
                log.exception("completing communication %s failed", object_id)
        if len(claimed) < batch_size:
            return done


# --- reads ------------------------------------------------------------------------------------------

def list_communications(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
                        customer_id: str | None = None, invoice_id: str | None = None,
                        status: str | Sequence[str] | None = None) -> Page[Communication]:
    """Newest first. Every staff user of the workspace may read them."""
    stmt = select(Communication).where(Communication.workspace_id == actor.workspace_id)
    if customer_id:
        stmt = stmt.where(Communication.customer_id == customer_id)
    if invoice_id:
        stmt = stmt.where(Communication.invoice_id == invoice_id)
    if status:
        wanted = [status] if isinstance(status, str) else list(status)
        unknown = [value for value in wanted if value not in COMMUNICATION_STATUSES]
        if unknown:
            raise InvalidInput(f"Unknown status {', '.join(map(repr, unknown))}; use one of "
                               f"{', '.join(COMMUNICATION_STATUSES)}.", code="unknown_communication_status",
                               field="status")
        stmt = stmt.where(Communication.status.in_(wanted))
    return paginate(session, stmt, id_column=Communication.id, limit=limit, cursor=cursor, descending=True)


def get_communication(session: Session, workspace_id: str, communication_id: str) -> Communication:
    return get_in_workspace(session, Communication, workspace_id, communication_id, label="communication")


def communication_out(row: Communication) -> cs.CommunicationOut:
    return cs.CommunicationOut.model_validate(row)

