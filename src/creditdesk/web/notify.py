"""Settings > Emails in the back office: the expiry email settings, the templates (per event and language)
with a preview on a sample pack, and the send log with each message as sent. Every form calls the
notify services the API calls (masters change settings and templates; every staff user reads), once
(web/once.py), errors next to their field."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from creditdesk.errors import CreditdeskError, NotPermitted
from creditdesk.notify import schemas as ns
from creditdesk.notify import service, templates
from creditdesk.notify.models import EVENTS, SEND_STATES
from creditdesk.web import forms, once
from creditdesk.web.catalog import errors_of, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

# The send log's states as people say them ("claimed": about to be sent, reserved so it goes once).
STATE_WORDS = {"claimed": "about to send", "sending": "sending", "sent": "sent", "retrying": "will retry",
               "failed": "failed", "skipped": "skipped"}
EVENT_LABELS = {"warning": "Expiry warning (before the expiry)", "expired": "Expired notice",
                "balance_low": "Low balance (fell below its threshold)"}


def _page(request: Request, user: WebUser, *, values: dict | None = None, errors: dict | None = None,
          status_code: int = 200) -> HTMLResponse:
    state = request.query_params.get("state") or None
    if state not in SEND_STATES:
        state = None
    with reading(db_of(request)) as session:
        current = service.settings_out(service.settings_for(session, user.workspace_id))
        listed = service.list_templates(session, user.workspace_id)
        log = service.list_sends(session, actor=user.actor, limit=100, state=state).items
        pack_names = _pack_names(session, user.workspace_id, {e.pack_id for e in log if e.pack_id})
        crossing_names = _crossing_names(session, user.workspace_id, {e.crossing_id for e in log if e.crossing_id})
    return render(request, "emails.html", nav="settings", settings=current, templates=listed, log=log,
                  pack_names=pack_names, crossing_names=crossing_names,
                  state=state, states=SEND_STATES, state_words=STATE_WORDS, event_labels=EVENT_LABELS, values=values or current.model_dump(),
                  errors=errors or {}, can_write=user.actor.is_master, status_code=status_code)


def _pack_names(session, workspace_id: str, pack_ids: set[str]) -> dict[str, str]:
    """Packages by name in the log, not by id."""
    if not pack_ids:
        return {}
    from sqlalchemy import select

    from creditdesk.credits.models import Pack

    return dict(session.execute(select(Pack.id, Pack.name).where(Pack.workspace_id == workspace_id,
                                                                 Pack.id.in_(pack_ids))).all())


def _crossing_names(session, workspace_id: str, crossing_ids: set[str]) -> dict[str, str]:
    """A low-balance email's line names whose balance fell, in which credit type."""
    if not crossing_ids:
        return {}
    from sqlalchemy import select

    from creditdesk.credits.low_balance_models import BalanceCrossing
    from creditdesk.credits.models import CreditType
    from creditdesk.notify.low_balance_emails import recipient_of

    rows = session.execute(select(BalanceCrossing, CreditType.name).join(
        CreditType, CreditType.id == BalanceCrossing.credit_type_id).where(
        BalanceCrossing.workspace_id == workspace_id, BalanceCrossing.id.in_(crossing_ids))).all()
    return {c.id: f"{recipient_of(session, c).holder_name}: {name}" for c, name in rows}


@router.get("/settings/emails", response_class=HTMLResponse)
def emails_page(request: Request, user: WebUser = Depends(current_user)):
    return _page(request, user)


@router.post("/settings/emails", response_class=HTMLResponse)
def save_settings(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {"enabled": form.get("enabled") == "on", "send_warning": form.get("send_warning") == "on",
              "send_expired": form.get("send_expired") == "on",
              "send_balance_low": form.get("send_balance_low") == "on",
              "warning_days": forms.text(form, "warning_days", limit=10),
              "default_language": forms.text(form, "default_language", limit=20)}

    def act(session) -> once.Done:
        service.update_settings(session, validated(ns.EmailSettingsUpdate, values), actor=user.actor)
        return once.Done("/settings/emails", flash="Email settings saved.")

    try:
        service.require_master(user.actor, "change the email settings")
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _page(request, user, values=values, errors=errors_of(exc), status_code=422)


def _template_page(request: Request, user: WebUser, event: str, language: str, *, values: dict | None = None,
                   errors: dict | None = None, preview: ns.PreviewOut | None = None,
                   status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        current = service.get_template(session, user.workspace_id, event, language)
    return render(request, "email_template.html", nav="settings", tpl=current, event_label=EVENT_LABELS[event],
                  values=values or current.model_dump(), errors=errors or {}, preview=preview,
                  variables=templates.variables_for(event), can_write=user.actor.is_master, status_code=status_code)


def _checked(event: str, language: str) -> None:
    """An unknown event is a page that does not exist; the language is checked by the service."""
    if event not in EVENTS:
        from creditdesk.errors import NotFound

        raise NotFound("No such email.")


@router.get("/settings/emails/template")
def open_template(request: Request, user: WebUser = Depends(current_user)):
    """The "another language" picker: to that template's page (a GET form cannot build the path itself)."""
    from urllib.parse import quote

    from fastapi.responses import RedirectResponse

    event = request.query_params.get("event") or "warning"
    language = (request.query_params.get("language") or "en").strip()[:16]
    _checked(event, language)
    return RedirectResponse(f"/settings/emails/templates/{event}/{quote(language, safe='')}", status_code=303)


@router.get("/settings/emails/templates/{event}/{language}", response_class=HTMLResponse)
def template_page(event: str, language: str, request: Request, user: WebUser = Depends(current_user)):
    _checked(event, language)
    return _template_page(request, user, event, language)


@router.post("/settings/emails/templates/{event}/{language}", response_class=HTMLResponse)
def save_template(event: str, language: str, request: Request, user: WebUser = Depends(current_user),
                  form: FormData = Depends(csrf_form)):
    """`action=preview` renders the form's template on a sample pack (nothing stored); `action=save` stores it."""
    _checked(event, language)
    values = {"subject": forms.text(form, "subject", limit=600), "text_body": forms.text(form, "text_body", limit=60_000),
              "html_body": forms.text(form, "html_body", limit=110_000) or None}
    if form.get("action") == "preview":
        try:
            with reading(db_of(request)) as session:
                out = service.preview(session, validated(ns.PreviewIn, {"event": event, **values}), actor=user.actor)
        except CreditdeskError as exc:
            return _template_page(request, user, event, language, values=values, errors=errors_of(exc),
                                  status_code=422)
        return _template_page(request, user, event, language, values=values, preview=out)

    def act(session) -> once.Done:
        out = service.put_template(session, event, language, validated(ns.EmailTemplateIn, values), actor=user.actor)
        return once.Done(f"/settings/emails/templates/{event}/{out.language}",
                         flash=f"Saved the {EVENT_LABELS[event].lower()} template ({out.language}).")

    try:
        service.require_master(user.actor, "change email templates")
        return once.run(request, user, form, act)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return _template_page(request, user, event, language, values=values, errors=errors_of(exc),
                              status_code=422)


@router.get("/settings/emails/log/{send_id}", response_class=HTMLResponse)
def log_entry(send_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        entry = service.get_send(session, user.workspace_id, send_id)
        # What the email was about, by name (the id stays in the link's title).
        about = (_pack_names(session, user.workspace_id, {entry.pack_id}).get(entry.pack_id) if entry.pack_id
                 else _crossing_names(session, user.workspace_id, {entry.crossing_id}).get(entry.crossing_id))
    return render(request, "email_send.html", nav="settings", entry=entry, event_labels=EVENT_LABELS,
                  state_words=STATE_WORDS, about=about)
