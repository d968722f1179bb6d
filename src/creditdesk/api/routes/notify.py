"""Expiry emails (README "Expiry emails"): the workspace's settings, the templates with a preview, and the
send log. Masters change settings and templates; every staff user reads them and the log."""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from creditdesk.api.deps import Cursor, Limit, WriteContext, get_actor, read_session, write_context
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.notify import schemas as ns
from creditdesk.notify import service
from creditdesk.notify.models import SEND_STATES

router = APIRouter()

EVENTS = ", ".join(f"`{event}`" for event in get_args(ns.Event))


@router.get("/email-settings", response_model=ns.EmailSettingsOut, tags=["emails"])
def get_email_settings(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return service.settings_out(service.settings_for(session, actor.workspace_id))


@router.patch("/email-settings", response_model=ns.EmailSettingsOut, tags=["emails"])
def update_email_settings(body: ns.EmailSettingsUpdate, ctx: WriteContext = Depends(write_context)):
    """Masters only. SMTP is configured in the environment (CREDITDESK_SMTP_*), never here."""
    return ctx.run(lambda session, actor: service.update_settings(session, body, actor=actor))


@router.get("/email-templates", response_model=ListOf[ns.EmailTemplateOut], tags=["emails"])
def list_email_templates(event: ns.Event | None = Query(default=None, description=(
                             f"Only the templates of this event: {EVENTS}.")),
                         language: str | None = Query(default=None, max_length=16, pattern=ns.LANGUAGE_PATTERN,
                                                      description=(
                             "Only the templates in this language, a code such as `en`, `de` or `fr-CA` (any "
                             "case). With `event` too: that one template, the shipped default when the "
                             "workspace has none.")),
                         actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Every template the workspace stored, and the default language's for each event (the shipped default
    when the workspace has not changed it). With `event` and `language`: that one template as it stands
    (the shipped default when the workspace has none for that language)."""
    if event and language:
        data = [service.get_template(session, actor.workspace_id, event, language)]
    else:
        data = [t for t in service.list_templates(session, actor.workspace_id)
                if (event is None or t.event == event) and (language is None or t.language == language.lower())]
    return {"object": "list", "data": data, "next_cursor": None}


@router.put("/email-templates", response_model=ns.EmailTemplateOut, tags=["emails"])
def put_email_template(body: ns.EmailTemplatePut, ctx: WriteContext = Depends(write_context)):
    """Masters only: the workspace's template for `event` in `language` (created or replaced). Jinja2 in a
    sandbox: a template that does not render on the sample pack (bad syntax, unknown variable, unsafe
    access) is refused (template_invalid, template_unsafe)."""
    return ctx.run(lambda session, actor: service.put_template(session, body.event, body.language, body,
                                                               actor=actor))


@router.post("/email-templates/preview", response_model=ns.PreviewOut, tags=["emails"])
def preview_email_template(body: ns.PreviewIn, actor: Actor = Depends(get_actor),
                           session: Session = Depends(read_session)):
    """Render a template with a sample pack; nothing is stored."""
    return service.preview(session, body, actor=actor)


@router.get("/email-log", response_model=ListOf[ns.EmailSendOut], tags=["emails"])
def list_email_log(limit: int | None = Limit, cursor: str | None = Cursor,
                   state: str | None = Query(default=None, max_length=12, description=(
                       "Only the emails in this state: " + ", ".join(f"`{state}`" for state in SEND_STATES)
                       + " (422 unknown_email_state for another).")),
                   pack_id: str | None = Query(default=None, max_length=40, description=(
                       "Only the emails about this pack (its id).")),
                   actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """The send log, newest first, with each message as sent."""
    page = service.list_sends(session, actor=actor, limit=limit, cursor=cursor, state=state, pack_id=pack_id)
    return list_of(page.items, page.next_cursor, ns.EmailSendOut.model_validate)
