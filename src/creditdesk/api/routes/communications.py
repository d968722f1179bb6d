"""Communicate a bill (seed 002): communication templates with a preview for an invoice, sending a posted
or settled invoice by email with its PDF attached, and the communications recorded on customers. Masters
and managers send and change templates; every staff user reads and previews."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from creditdesk.api.deps import (Cursor, InvoiceId, Limit, WriteContext, get_actor, read_session, status_query,
                                 statuses, write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.errors import CreditdeskError
from creditdesk.notify import communication_schemas as cs
from creditdesk.notify import communications
from creditdesk.notify.communication_models import COMMUNICATION_STATUSES

router = APIRouter()

TemplateId = Annotated[str, Path(description="The id of the communication template, as its `id` field gives it.")]
CommunicationId = Annotated[str, Path(description="The id of the communication, as its `id` field gives it.")]
TAGS = ["communications"]


@router.get("/communication-templates", response_model=ListOf[cs.TemplateOut], tags=TAGS)
def list_templates(include_archived: bool = Query(default=False, description=(
                       "Also list deleted templates (they are archived, not removed); `false` by default.")),
                   actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    rows = communications.list_templates(session, actor=actor, include_archived=include_archived)
    return {"object": "list", "data": [communications.template_out(r) for r in rows], "next_cursor": None}


@router.post("/communication-templates", status_code=201, response_model=cs.TemplateOut, tags=TAGS)
def create_template(body: cs.TemplateCreate, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Jinja2 in a sandbox: a template that does not render on a sample invoice (bad
    syntax, unknown variable, unsafe access) is refused (422 template_invalid, template_unsafe)."""
    return ctx.run(lambda db, actor: communications.template_out(communications.create_template(db, body, actor=actor)),
                   status_code=201)


@router.post("/communication-templates/preview", response_model=cs.PreviewOut, tags=TAGS)
def preview_template(body: cs.PreviewIn, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """A stored template (`template_id`) or the `subject` and `body` given, rendered for the invoice; nothing
    is stored."""
    return communications.preview(session, body, actor=actor)


@router.get("/communication-templates/{template_id}", response_model=cs.TemplateOut, tags=TAGS)
def get_template(template_id: TemplateId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return communications.template_out(communications.get_template(session, actor.workspace_id, template_id))


@router.patch("/communication-templates/{template_id}", response_model=cs.TemplateOut, tags=TAGS)
def update_template(template_id: TemplateId, body: cs.TemplateUpdate, ctx: WriteContext = Depends(write_context)):
    """Masters and managers."""
    return ctx.run(lambda db, actor: communications.template_out(
        communications.update_template(db, template_id, body, actor=actor)))


@router.delete("/communication-templates/{template_id}", response_model=cs.TemplateOut, tags=TAGS)
def delete_template(template_id: TemplateId, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. The template is archived (communications sent with it keep naming it)."""
    return ctx.run(lambda db, actor: communications.template_out(
        communications.delete_template(db, template_id, actor=actor)))


@router.post("/invoices/{invoice_id}/communicate", status_code=202, response_model=cs.CommunicationOut, tags=TAGS)
def communicate(invoice_id: InvoiceId, body: cs.CommunicateIn, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Email a bill (a posted or settled invoice; 409 invoice_not_billed otherwise) with
    its PDF attached, to any address (`to`). The content is a template (`template_id`) rendered for the
    invoice, or `subject` and `body` given here (Jinja2 as well), which replace the template's when both
    come. Accepted: the communication is recorded `queued` and sent after the commit; the answer shows it as
    it is once that attempt is over (`sent`, `failed`, or still `queued` for a retry). A replay with the same
    Idempotency-Key sends nothing more."""
    response = ctx.run(lambda db, actor: communications.communication_out(
        communications.communicate(db, invoice_id, body, actor=actor)), status_code=202)
    if response.status_code != 202:
        return response
    object_id = json.loads(response.body)["id"]
    try:
        with ctx.db.read() as session:
            now = communications.communication_out(communications.get_communication(
                session, ctx.actor.workspace_id, object_id)).model_dump(mode="json")
    except CreditdeskError:
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() == "idempotent-replayed"}
    return Response(json.dumps(now, separators=(",", ":")), status_code=202, media_type="application/json",
                    headers=headers)


@router.get("/communications", response_model=ListOf[cs.CommunicationOut], tags=TAGS)
def list_communications(limit: int | None = Limit, cursor: str | None = Cursor,
                        customer_id: str | None = Query(default=None, max_length=40, description=(
                            "Only the communications recorded on this customer (its id).")),
                        invoice_id: str | None = Query(default=None, max_length=40, description=(
                            "Only the communications of this invoice (its id).")),
                        status: list[str] | None = status_query(COMMUNICATION_STATUSES, what="communications"),
                        actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Newest first."""
    page = communications.list_communications(session, actor=actor, limit=limit, cursor=cursor,
                                              customer_id=customer_id, invoice_id=invoice_id,
                                              status=statuses(status, COMMUNICATION_STATUSES))
    return list_of(page.items, page.next_cursor, communications.communication_out)


@router.get("/communications/{communication_id}", response_model=cs.CommunicationOut, tags=TAGS)
def get_communication(communication_id: CommunicationId, actor: Actor = Depends(get_actor),
                      session: Session = Depends(read_session)):
    return communications.communication_out(communications.get_communication(session, actor.workspace_id,
                                                                              communication_id))
