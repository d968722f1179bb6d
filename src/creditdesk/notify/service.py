"""Expiry email settings and templates (masters change them; every staff user reads them), the preview
and the send log. The sending itself is expiry_emails.py."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.errors import InvalidInput, NotPermitted
from creditdesk.ids import new_id
from creditdesk.notify import schemas, smtp, templates
from creditdesk.notify.models import EVENTS, SEND_STATES, EmailSend, EmailSettings, EmailTemplate
from creditdesk.pagination import Page, paginate

DEFAULT_WARNING_DAYS = 14


def require_master(actor: Actor, what: str) -> None:
    if not actor.is_master:
        raise NotPermitted(f"Only master users may {what}.")


def settings_for(session: Session, workspace_id: str, *, for_update: bool = False) -> EmailSettings:
    """The workspace's settings; an unsaved row with the defaults when it has none."""
    stmt = select(EmailSettings).where(EmailSettings.workspace_id == workspace_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None:
        row = EmailSettings(workspace_id=workspace_id, enabled=True, send_warning=True,
                            warning_days=DEFAULT_WARNING_DAYS, send_expired=True, send_balance_low=True,
                            default_language=templates.DEFAULT_LANGUAGE, updated_at=clock.now())
    return row


def settings_out(row: EmailSettings) -> schemas.EmailSettingsOut:
    return schemas.EmailSettingsOut(enabled=row.enabled, send_warning=row.send_warning,
                                    warning_days=row.warning_days, send_expired=row.send_expired,
                                    send_balance_low=row.send_balance_low is not False,
                                    default_language=row.default_language, smtp_configured=smtp.is_configured())


def update_settings(session: Session, data: schemas.EmailSettingsUpdate, *, actor: Actor) -> schemas.EmailSettingsOut:
    require_master(actor, "change the email settings")
    row = settings_for(session, actor.workspace_id, for_update=True)
    before = snapshot(row) if row in session else None
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is None:
            raise InvalidInput(f"{name} cannot be null.", code="field_not_nullable", field=name)
        setattr(row, name, value.lower() if name == "default_language" else value)
    row.updated_at = clock.now()
    if row not in session:
        session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="email_settings.update", object_type="email_settings",
                 object_id=actor.workspace_id, before=before, after=snapshot(row))
    return settings_out(row)


# --- templates ---------------------------------------------------------------------------------

def _check_event(event: str) -> None:
    if event not in EVENTS:
        raise InvalidInput(f"Unknown email event {event!r}; use one of {', '.join(EVENTS)}.",
                           code="unknown_email_event", field="event")


def _normal_language(language: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?", language or ""):
        raise InvalidInput("A language is a code such as en, de or fr-CA.", code="invalid_language",
                           field="language")
    return language.lower()


def stored_template(session: Session, workspace_id: str, event: str, language: str) -> EmailTemplate | None:
    return session.scalar(select(EmailTemplate).where(EmailTemplate.workspace_id == workspace_id,
                                                      EmailTemplate.event == event,
                                                      EmailTemplate.language == language))


def template_out(event: str, language: str, row: EmailTemplate | None) -> schemas.EmailTemplateOut:
    if row is None:
        default = templates.DEFAULTS[event]
        return schemas.EmailTemplateOut(event=event, language=language, subject=default.subject,
                                        text_body=default.text_body, html_body=default.html_body, is_default=True)
    return schemas.EmailTemplateOut(event=event, language=language, subject=row.subject, text_body=row.text_body,
                                    html_body=row.html_body, is_default=False)


def get_template(session: Session, workspace_id: str, event: str, language: str) -> schemas.EmailTemplateOut:
    """The workspace's template for this event and language, or the shipped default when it has none."""
    _check_event(event)
    language = _normal_language(language)
    return template_out(event, language, stored_template(session, workspace_id, event, language))


def list_templates(session: Session, workspace_id: str) -> list[schemas.EmailTemplateOut]:
    """Every stored template, and the default language's for each event (stored or shipped)."""
    default_language = settings_for(session, workspace_id).default_language
    rows = list(session.scalars(select(EmailTemplate).where(EmailTemplate.workspace_id == workspace_id)
                                .order_by(EmailTemplate.event, EmailTemplate.language)))
    out = [template_out(r.event, r.language, r) for r in rows]
    for event in EVENTS:
        if not any(r.event == event and r.language == default_language for r in rows):
            out.append(template_out(event, default_language, None))
    return sorted(out, key=lambda t: (EVENTS.index(t.event), t.language))


def put_template(session: Session, event: str, language: str, data: schemas.EmailTemplateIn, *,
                 actor: Actor) -> schemas.EmailTemplateOut:
    require_master(actor, "change email templates")
    _check_event(event)
    language = _normal_language(language)
    text = templates.TemplateText(subject=data.subject, text_body=data.text_body, html_body=data.html_body or None)
    templates.check(text, event)
    row = stored_template(session, actor.workspace_id, event, language)
    before = snapshot(row) if row else None
    now = clock.now()
    if row is None:
        row = EmailTemplate(id=new_id("etpl"), workspace_id=actor.workspace_id, event=event, language=language,
                            created_at=now)
        session.add(row)
    row.subject, row.text_body, row.html_body = text.subject, text.text_body, text.html_body
    row.updated_at = now
    session.flush()
    audit.record(session, actor=actor, action="email_template.update", object_type="email_template",
                 object_id=row.id, before=before, after=snapshot(row))
    return template_out(event, language, row)


def preview(session: Session, data: schemas.PreviewIn, *, actor: Actor) -> schemas.PreviewOut:
    """The template rendered with a sample pack, as the customer would get it (nothing is stored)."""
    from creditdesk.parties.models import Workspace

    workspace = session.get(Workspace, actor.workspace_id)
    text = templates.TemplateText(subject=data.subject, text_body=data.text_body, html_body=data.html_body or None)
    rendered = templates.render(text, templates.sample_context(data.event, workspace_name=workspace.name))
    return schemas.PreviewOut(subject=rendered.subject, text_body=rendered.text_body, html_body=rendered.html_body)


def template_for(session: Session, workspace_id: str, event: str, language: str | None,
                 default_language: str) -> tuple[str, templates.TemplateText]:
    """The template an email uses: the customer's language (fr-ca, then fr), then the workspace's default
    language, then the shipped default. Returns the language chosen and the template."""
    wanted = []
    if language:
        language = language.lower()
        wanted.append(language)
        if "-" in language:
            wanted.append(language.split("-")[0])
    wanted.append(default_language)
    rows = {r.language: r for r in session.scalars(select(EmailTemplate).where(
        EmailTemplate.workspace_id == workspace_id, EmailTemplate.event == event,
        EmailTemplate.language.in_(wanted)))}
    for code in wanted:
        if code in rows:
            r = rows[code]
            return code, templates.TemplateText(subject=r.subject, text_body=r.text_body, html_body=r.html_body)
    return default_language, templates.DEFAULTS[event]


# --- the send log ------------------------------------------------------------------------------

def list_sends(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
               state: str | None = None, pack_id: str | None = None) -> Page[EmailSend]:
    """Newest first. Every staff user of the workspace may read it."""
    stmt = select(EmailSend).where(EmailSend.workspace_id == actor.workspace_id)
    if state:
        if state not in SEND_STATES:
            raise InvalidInput(f"Unknown state {state!r}; use one of {', '.join(SEND_STATES)}.",
                               code="unknown_email_state", field="state")
        stmt = stmt.where(EmailSend.state == state)
    if pack_id:
        stmt = stmt.where(EmailSend.pack_id == pack_id)
    return paginate(session, stmt, id_column=EmailSend.id, limit=limit, cursor=cursor, descending=True)


def get_send(session: Session, workspace_id: str, send_id: str) -> EmailSend:
    from creditdesk.repository import get_in_workspace

    return get_in_workspace(session, EmailSend, workspace_id, send_id, label="email")
