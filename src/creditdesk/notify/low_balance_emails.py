"""Low-balance emails (issue 16): one email per balance crossing, to the holder's contacts.

A crossing (credits.low_balance: a consumption took a holder's balance of a credit type below its threshold) is
recorded in the consumption's transaction. The email is sent by the expiry email job (expiry_emails.send_due,
inside `serve` and `creditdesk jobs run`), through the same send log and so with the same guarantees: a row
claimed before sending, UNIQUE per (crossing, event), its outcome recorded, retries with backoff, the message as
sent kept; SMTP after the claim's commit.

Who receives it (the holder's contacts): a user holder's own address, an office's own address, otherwise the
customer's (for a customer holder, its address); the workspace pool has nobody to email. The language is the
customer's. Only crossings of the last CROSSING_WINDOW are mailed: switching the emails on (or setting an SMTP
host) must not mail every crossing of the past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from creditdesk.amounts import format_amount
from creditdesk.credits.low_balance_models import BalanceCrossing
from creditdesk.credits.models import CreditType
from creditdesk.notify import service, templates
from creditdesk.notify.models import EmailSend, EmailSettings
from creditdesk.parties.models import Customer, Office, User, Workspace

EVENT = "balance_low"
CROSSING_WINDOW = timedelta(days=3)


@dataclass(frozen=True)
class Recipient:
    holder_name: str
    email: str | None
    customer: Customer | None


def recipient_of(session: Session, crossing: BalanceCrossing) -> Recipient:
    """The holder's name, the address to write to (the holder's own, else its customer's), and the customer."""
    kind, holder_id = crossing.holder_kind, crossing.holder_id
    if kind == "user":
        user = session.get(User, holder_id)
        office = session.get(Office, user.primary_office_id) if user and user.primary_office_id else None
        customer = session.get(Customer, office.customer_id) if office and office.customer_id else None
        return Recipient(user.name if user else holder_id, (user.email if user else None)
                         or (customer.email if customer else None), customer)
    if kind == "office":
        office = session.get(Office, holder_id)
        customer = session.get(Customer, office.customer_id) if office and office.customer_id else None
        return Recipient(office.name if office else holder_id, (office.email if office else None)
                         or (customer.email if customer else None), customer)
    if kind == "customer":
        customer = session.get(Customer, holder_id)
        return Recipient(customer.name if customer else holder_id, customer.email if customer else None, customer)
    return Recipient("the workspace pool", None, None)


def skip_reason(recipient: Recipient, crossing: BalanceCrossing) -> str | None:
    if crossing.holder_kind == "workspace":
        return "The workspace's own pool fell low: there is no customer contact to email."
    if not recipient.email:
        return f"Neither {recipient.holder_name!r} nor its customer has an email address."
    return None


def render(session: Session, crossing: BalanceCrossing, recipient: Recipient, ws: EmailSettings
           ) -> tuple[str, templates.TemplateText]:
    ct = session.get(CreditType, crossing.credit_type_id)
    workspace = session.get(Workspace, crossing.workspace_id)
    customer = recipient.customer
    language, template = service.template_for(session, crossing.workspace_id, EVENT,
                                              customer.language if customer else None, ws.default_language)
    context = templates.balance_context(
        customer_name=customer.name if customer else recipient.holder_name,
        customer_email=customer.email if customer else recipient.email, holder_name=recipient.holder_name,
        credit_type=ct.name, unit=ct.code, remaining=format_amount(max(0, crossing.balance_after), ct.scale),
        threshold=format_amount(crossing.threshold, ct.scale), workspace_name=workspace.name)
    return language, templates.render(template, context)


def due_crossings(session: Session, ws: EmailSettings, now: datetime, limit: int) -> list[BalanceCrossing]:
    """Crossings of this workspace, recent enough, without a send-log row yet (oldest first)."""
    if not ws.send_balance_low or limit <= 0:
        return []
    no_row = ~exists().where(EmailSend.crossing_id == BalanceCrossing.id, EmailSend.event == EVENT)
    return list(session.scalars(select(BalanceCrossing).where(
        BalanceCrossing.workspace_id == ws.workspace_id, BalanceCrossing.created_at > now - CROSSING_WINDOW,
        no_row).order_by(BalanceCrossing.created_at, BalanceCrossing.id).limit(limit)))
