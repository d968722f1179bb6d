"""Communicate a bill in the back office (seed 002 "Communicate Bill"): from a posted or settled invoice, a
form with the template chosen, its subject and body rendered for the invoice (editable), the address
(the customer's known ones, or another), and Send (once: a double submit sends one email). The customer
page's Communications section, and Settings > Bill templates with a preview. Every form calls the
notify.communications services the API calls; members see the pages, the services refuse their writes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk.billing import invoices
from creditdesk.billing.invoice_models import Invoice
from creditdesk.errors import CreditdeskError, InvalidInput, NotFound, NotPermitted
from creditdesk.notify import communication_schemas as cs
from creditdesk.notify import communications, smtp
from creditdesk.parties.models import Customer
from creditdesk.web import forms, once
from creditdesk.web.catalog import errors_of, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

OTHER = "other"


def may_send(user: WebUser) -> bool:
    try:
        communications.require_sender(user.actor, "communicate bills")
    except NotPermitted:
        return False
    return True


# --- communicate a bill ------------------------------------------------------------------------------

def _form(request: Request, user: WebUser, invoice_id: str, *, values: dict | None = None,
          errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        invoice = invoices.get_invoice(session, user.workspace_id, invoice_id)
        customer = session.get(Customer, invoice.customer_id)
        choices = communications.list_templates(session, actor=user.actor)
        known = communications.recipients(session, user.workspace_id, invoice.customer_id)
        sent = communications.list_communications(session, actor=user.actor, invoice_id=invoice.id, limit=20).items
        if values is None:
            wanted = (request.query_params.get("template_id") or "")[:40]
            template = next((t for t in choices if t.id == wanted), choices[0] if choices else None)
            values = {"template_id": template.id if template else "", "subject": "", "body": "",
                      "recipient": known[0][1] if known else OTHER, "other": ""}
            if template is not None:
                try:
                    values["subject"], values["body"] = communications.render(
                        template.subject, template.body, communications.invoice_context(session, invoice))
                except CreditdeskError as exc:
                    errors = errors_of(exc)
    return render(request, "communicate.html", nav="finance", invoice=invoice, customer=customer, templates=choices,
                  known=known, values=values, errors=errors or {}, sent=sent,
                  billed=invoice.status in communications.BILLED, may_send=may_send(user),
                  smtp_configured=smtp.is_configured(),
                  attachment=communications.attachment_name(invoice), status_code=status_code)


@router.get("/invoices/{invoice_id}/communicate", response_class=HTMLResponse)
def communicate_form(invoice_id: str, request: Request, user: WebUser = Depends(current_user)):
    return _form(request, user, invoice_id)


@router.post("/invoices/{invoice_id}/communicate", response_class=HTMLResponse)
def communicate(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    values = {"template_id": forms.text(form, "template_id", limit=40),
              "subject": forms.text(form, "subject", limit=600), "body": forms.text(form, "body", limit=60_000),
              "recipient": forms.text(form, "recipient", limit=400), "other": forms.text(form, "other", limit=400)}
    communications.require_sender(user.actor, "communicate bills")  # before the key: a member gets 403
    try:
        to = values["other"] if values["recipient"] == OTHER else values["recipient"]
        if not to:
            raise InvalidInput("Choose an address, or type another one.", field="other")
        if values["recipient"] != OTHER and values["other"] and values["other"].lower() != to.lower():
            # Sending to the ticked address while another one is typed would surprise the person: ask.
            raise InvalidInput(f"You typed {values['other']} but {to} is chosen: choose \"Another address\" to "
                               "send to what you typed, or clear it.", field="other")
        try:
            data = validated(cs.CommunicateIn, {"to": to, "template_id": values["template_id"] or None,
                                                "subject": values["subject"], "body": values["body"]})
        except CreditdeskError as exc:
            # The address is typed in "other" (or chosen): say it next to the field the person used.
            errors = errors_of(exc)
            if "to" in errors:
                errors["other" if values["recipient"] == OTHER else "recipient"] = errors.pop("to")
            return _form(request, user, invoice_id, values=values, errors=errors, status_code=422)

        def act(session) -> once.Done:
            row = communications.communicate(session, invoice_id, data, actor=user.actor, rendered=True)
            if not smtp.is_configured():
                return once.Done(f"/invoices/{invoice_id}/communicate", level="error", flash=(
                    f"Not sent to {row.recipient}: no mail server is configured for this installation. The "
                    "attempt is recorded below."))
            return once.Done(f"/invoices/{invoice_id}/communicate",
                             flash=f"Sending the bill to {row.recipient}: its status shows below.")
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404 and not exc.details.get("field"):
            raise
        return _form(request, user, invoice_id, values=values, errors=errors_of(exc),
                     status_code=exc.http_status if exc.http_status in (409, 422) else 422)


# --- the customer page's section --------------------------------------------------------------------

def customer_section(session, user: WebUser, customer_id: str) -> dict:
    rows = communications.list_communications(session, actor=user.actor, customer_id=customer_id, limit=50).items
    numbers = dict(session.execute(select(Invoice.id, Invoice.number).where(
        Invoice.workspace_id == user.workspace_id, Invoice.id.in_({r.invoice_id for r in rows}))).all()) if rows else {}
    return {"communications": rows, "communication_invoices": numbers}


# --- Settings > Bill templates ----------------------------------------------------------------------

def _preview_context(session, user: WebUser) -> tuple[dict, str]:
    """The workspace's latest bill, else a sample invoice."""
    latest = session.scalar(select(Invoice).where(Invoice.workspace_id == user.workspace_id,
                                                  Invoice.status.in_(communications.BILLED))
                            .order_by(Invoice.id.desc()).limit(1))
    if latest is None:
        return communications.sample_context(), "a sample invoice"
    return communications.invoice_context(session, latest), f"invoice {latest.number}"


def _templates_page(request: Request, user: WebUser, *, template_id: str | None = None, values: dict | None = None,
                    errors: dict | None = None, preview: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        rows = communications.list_templates(session, actor=user.actor)
        current = communications.get_template(session, user.workspace_id, template_id) if template_id else None
        if current is not None and current.archived:
            raise NotFound("No such communication template.")
    if values is None:
        values = ({"name": current.name, "subject": current.subject, "body": current.body} if current
                  else {"name": "", "subject": communications.DEFAULT_SUBJECT, "body": communications.DEFAULT_BODY})
    return render(request, "communication_templates.html", nav="settings", rows=rows, current=current,
                  values=values, errors=errors or {}, preview=preview, variables=communications.VARIABLES,
                  can_write=may_send(user), status_code=status_code)


@router.get("/settings/bill-templates", response_class=HTMLResponse)
def templates_page(request: Request, user: WebUser = Depends(current_user)):
    return _templates_page(request, user)


@router.get("/settings/bill-templates/{template_id}", response_class=HTMLResponse)
def template_page(template_id: str, request: Request, user: WebUser = Depends(current_user)):
    return _templates_page(request, user, template_id=template_id)


def _save(request: Request, user: WebUser, form: FormData, template_id: str | None) -> HTMLResponse:
    """`action=preview` renders the form's template for the latest bill (nothing stored); `action=save`
    creates or changes it, `action=delete` archives it."""
    values = {"name": forms.text(form, "name", limit=300), "subject": forms.text(form, "subject", limit=600),
              "body": forms.text(form, "body", limit=60_000)}
    action = form.get("action")
    if action == "preview":
        try:
            with reading(db_of(request)) as session:
                context, label = _preview_context(session, user)
                subject, body = communications.render(values["subject"], values["body"], context)
        except CreditdeskError as exc:
            return _templates_page(request, user, template_id=template_id, values=values, errors=errors_of(exc),
                                   status_code=422)
        return _templates_page(request, user, template_id=template_id, values=values,
                               preview={"subject": subject, "body": body, "label": label})

    def act(session) -> once.Done:
        if action == "delete" and template_id:
            communications.delete_template(session, template_id, actor=user.actor)
            return once.Done("/settings/bill-templates", flash="Template deleted.")
        if template_id:
            row = communications.update_template(session, template_id, validated(cs.TemplateUpdate, values),
                                                 actor=user.actor)
        else:
            row = communications.create_template(session, validated(cs.TemplateCreate, values), actor=user.actor)
        return once.Done(f"/settings/bill-templates/{row.id}", flash=f"Saved the template {row.name!r}.")

    communications.require_sender(user.actor, "manage communication templates")
    try:
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return _templates_page(request, user, template_id=template_id, values=values, errors=errors_of(exc),
                               status_code=422)


@router.post("/settings/bill-templates", response_class=HTMLResponse)
def create_template(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    return _save(request, user, form, None)


@router.post("/settings/bill-templates/{template_id}", response_class=HTMLResponse)
def save_template(template_id: str, request: Request, user: WebUser = Depends(current_user),
                  form: FormData = Depends(csrf_form)):
    return _save(request, user, form, template_id)
