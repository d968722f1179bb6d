"""What every back-office page needs: the signed session cookie, CSRF, the logged-in user, flash
messages, rendering, and turning domain errors into HTML pages or form messages.

The session is a cookie signed with `settings.secret_key` (itsdangerous). It carries the user id, the
workspace id, a CSRF token, the user's session version, a fingerprint of the password hash, the login
time and the time of the last request. Each request re-reads the user and refuses the session when the
version moved on (logout, which logs out everywhere; password, email, role, permission or active-status
changes), when the user has no password, after `session_idle_minutes` without a request, or 12 h after
login. Only that one integer per user is kept server side.
"""

from __future__ import annotations

import re

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from creditdesk import amounts, clock, timezones
from creditdesk.audit import Actor
from creditdesk.config import get_settings
from creditdesk.credits import governance
from creditdesk.db import Database
from creditdesk.errors import CreditdeskError, InvalidInput, NotPermitted
from creditdesk.parties import service as parties
from creditdesk.parties.models import User, Workspace
from creditdesk.web.forms import currency_exponent

SESSION_COOKIE = "creditdesk_session"
FLASH_COOKIE = "creditdesk_flash"
SESSION_MAX_AGE = 12 * 3600
# The last-request time in the cookie is refreshed at most this often (each refresh is a new cookie).
SESSION_REFRESH_SECONDS = 60

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


# --- errors ---------------------------------------------------------------------------------------

class LoginRequired(Exception):
    """Not logged in (or the session ended): send the browser to the login page."""


class CsrfRefused(CreditdeskError):
    code = "csrf_failed"
    http_status = 403
    title = "Form refused"


def csrf_refused() -> CsrfRefused:
    return CsrfRefused("This form has expired or did not come from this page. Reload the page and try again.")


# --- amounts and dates ------------------------------------------------------------------------------

def fmt_amount(value: int | None, scale: int = 0, *, grouping: bool = True) -> str:
    """An integer amount at the credit type's scale, as people read it (hours, scale 2: 150 -> 1.50)."""
    return amounts.format_amount(value, scale, grouping=grouping)


def parse_amount(text: str, scale: int, *, label: str = "Amount", allow_zero: bool = False) -> int:
    """'1.5' at scale 2 -> 150, by the one amount parser (creditdesk.amounts): no exponents, a comma only
    between groups of three digits, more decimals than the credit type has is an error, never rounded."""
    return amounts.parse_amount(text, scale, label=label, allow_zero=allow_zero)


def fmt_date(value: datetime | date | None, where: tzinfo = UTC) -> str:
    """A date, or the day of a moment where the business is (`where`, the workspace's time zone)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(where)
    return value.strftime("%Y-%m-%d")


def fmt_datetime(value: datetime | None, where: tzinfo = UTC) -> str:
    """A moment in the workspace's time zone, with the zone's abbreviation (AEDT)."""
    if value is None:
        return ""
    local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(where)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "UTC")


def _zone_in(context) -> tzinfo:
    user = context.get("user")
    return timezones.zone(getattr(user, "time_zone", None))


@pass_context
def _fmt_date_here(context, value) -> str:
    return fmt_date(value, _zone_in(context))


@pass_context
def _days_until_here(context, value) -> int | None:
    """Whole days from today to the day of `value`, both where the business is (0: today)."""
    if value is None:
        return None
    where = _zone_in(context)
    return (timezones.local_day(value, where) - timezones.local_day(clock.now(), where)).days


@pass_context
def _fmt_datetime_here(context, value) -> Markup | str:
    """In a page: the moment in the workspace's zone, the UTC moment in the tooltip and the machine attribute."""
    if value is None:
        return ""
    where = _zone_in(context)
    text = fmt_datetime(value, where)
    if where is UTC:
        return text
    moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat().replace("+00:00", "Z"), moment.strftime("%Y-%m-%d %H:%M UTC"), text)


def parse_date(text: str | None, *, label: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{label}: {text!r} is not a date (YYYY-MM-DD).", code="invalid_date") from None


def start_of(day: date | None, where: tzinfo = UTC) -> datetime | None:
    """The first moment of a day where the business is (`where`: the workspace's time zone), in UTC."""
    return timezones.start_of_day(day, where) if day else None


def end_of(day: date | None, where: tzinfo = UTC) -> datetime | None:
    """The last moment of a day where the business is: a pack "expiring on the 31st" can be used all of the 31st."""
    return timezones.end_of_day(day, where) if day else None


def next_day(day: date | None, where: tzinfo = UTC) -> datetime | None:
    return start_of(day + timedelta(days=1), where) if day else None


# --- signed cookies ---------------------------------------------------------------------------------

def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt=f"creditdesk-web-{purpose}")


def password_fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def read_session(request: Request) -> dict:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer("session").loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def set_session(response: Response, request: Request, data: dict) -> None:
    response.set_cookie(SESSION_COOKIE, _serializer("session").dumps(data), max_age=SESSION_MAX_AGE,
                        httponly=True, samesite="lax",
                        secure=get_settings().secure_cookies or request.url.scheme == "https", path="/")


def session_for(user: User, *, csrf: str, started: float | None = None) -> dict:
    """The session of a logged-in user (at login, or re-issued after they changed their own password or
    email: that change ended their other sessions, this one carries on from its login time)."""
    now = clock.now().timestamp()
    return {"uid": user.id, "wid": user.workspace_id, "csrf": csrf, "pw": password_fingerprint(user.password_hash),
            "sv": user.session_version or 0, "at": started or now, "seen": now}


def _session_expired(data: dict, now: float) -> bool:
    started, seen = data.get("at"), data.get("seen")
    if not isinstance(started, (int, float)) or not isinstance(seen, (int, float)):
        return True
    idle = get_settings().session_idle_minutes * 60
    return now >= started + SESSION_MAX_AGE or now >= seen + idle


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(request: Request, token: str | None) -> bool:
    expected = read_session(request).get("csrf")
    return bool(expected and token) and hmac.compare_digest(str(expected), str(token))


async def csrf_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's; otherwise 403 and nothing done."""
    form = await request.form()
    if not csrf_matches(request, form.get("csrf_token")):
        raise csrf_refused()
    return form


# --- the logged-in user -------------------------------------------------------------------------------

def _can(check: Callable[[Actor], None], actor: Actor) -> bool:
    """Whether the service's own permission check lets this actor through (used to hide buttons)."""
    try:
        check(actor)
    except NotPermitted:
        return False
    return True


@dataclass
class WebUser:
    id: str
    name: str
    email: str
    role: str
    permissions: list[str]
    workspace_id: str
    workspace_name: str
    actor: Actor
    csrf: str
    can: dict[str, bool] = field(default_factory=dict)
    time_zone: str = "UTC"  # the workspace's (IANA name)

    @property
    def zone(self) -> tzinfo:
        return timezones.zone(self.time_zone)


def _load_user(db: Database, data: dict) -> WebUser | None:
    user_id, workspace_id = data.get("uid"), data.get("wid")
    if not user_id or not workspace_id or _session_expired(data, clock.now().timestamp()):
        return None
    with db.read() as session:
        user = session.get(User, user_id)
        # No password, no session: whatever signed the cookie, a user who cannot log in has no session.
        if (user is None or user.workspace_id != workspace_id or not user.is_staff or not user.is_active
                or not user.password_hash or data.get("sv") != (user.session_version or 0)
                or data.get("pw") != password_fingerprint(user.password_hash)):
            return None
        actor = parties.actor_for_user(session, user)
        workspace = session.get(Workspace, workspace_id)
        can = {
            "manage_packs": governance.can_manage_packs(actor),
            "grant": _can(governance.require_grant, actor),
            "consume": _can(governance.require_consume, actor),
            "read_log": _can(lambda a: parties.require_manager(a, "read the activity log"), actor),
            "master": actor.is_master,
            "manage_parties": _can(lambda a: parties.require_manager(a, "change customers"), actor),
            "manage_users": _can(parties.require_user_manager, actor),
        }
        return WebUser(id=user.id, name=user.name, email=user.email or "", role=user.role,
                       permissions=list(user.permissions or []), workspace_id=workspace_id,
                       workspace_name=workspace.name if workspace else "", actor=actor, csrf=data.get("csrf", ""),
                       can=can, time_zone=(workspace.time_zone if workspace else None) or "UTC")


def current_user(request: Request) -> WebUser:
    """Dependency of every page behind the login."""
    user = getattr(request.state, "web_user", None)
    if user is not None:
        return user
    data = read_session(request)
    user = _load_user(request.app.state.db, data)
    if user is None:
        raise LoginRequired()
    request.state.web_user = user
    now = clock.now().timestamp()
    if now - data["seen"] >= SESSION_REFRESH_SECONDS:
        # Activity keeps the session alive (idle timeout); WebRoute sets the refreshed cookie.
        request.state.session_refresh = {**data, "seen": now}
    return user


def refresh_session(request: Request, response: Response) -> None:
    """Send the refreshed session cookie, unless the page set or cleared the session itself."""
    data = getattr(request.state, "session_refresh", None)
    if data is None:
        return
    if any(value.startswith(f"{SESSION_COOKIE}=") for value in response.headers.getlist("set-cookie")):
        return
    set_session(response, request, data)


def db_of(request: Request) -> Database:
    return request.app.state.db


@contextmanager
def reading(db: Database) -> Iterator[Session]:
    """A read transaction whose rows stay usable after it ends (templates render after the session
    closes, and Database.read() rolls back, which would otherwise expire every loaded row)."""
    with db.read() as session:
        yield session
        session.expunge_all()


# --- rendering ----------------------------------------------------------------------------------------

def query_string(params: dict[str, Any], **changes: Any) -> str:
    """Current filters with some changed; empty values are dropped so URLs stay short and readable."""
    merged = {**params, **changes}
    pairs = []
    for key, value in merged.items():
        if value is None or value == "" or value is False:
            continue
        if isinstance(value, (list, tuple)):
            pairs.extend((key, v) for v in value if v not in (None, ""))
        else:
            pairs.append((key, value))
    encoded = urlencode(pairs)
    return f"?{encoded}" if encoded else ""


def period_text(start, end) -> str:
    """A period stored end-exclusive, for people: "2027-01-01 to 2027-01-31" (its last day)."""
    if start is None or end is None:
        return "—"
    return f"{start.isoformat()} to {date.fromordinal(end.toordinal() - 1).isoformat()}"


_env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)
# Where a pack came from, in words (the report, the pack page, the customer's packages).
SOURCE_LABELS = {"purchase": "Purchase", "crm_deal": "CRM deal", "manual": "Granted manually", "transfer": "Transfer",
                 "promotion": "Promotion", "subscription": "Subscription", "import": "CSV import",
                 "wallet": "Wallet top-up"}
_ERROR_CODE = re.compile(r"\s*\(([a-z]+_[a-z_]+)\)$")


def without_code(message: str) -> str:
    """An import line's problem for people: the stable code scripts read ("... (holder_not_found)") left off."""
    return _ERROR_CODE.sub("", message or "")


_env.filters["without_code"] = without_code
_env.globals.update(source_labels=SOURCE_LABELS, fmt_amount=fmt_amount, fmt_date=_fmt_date_here, fmt_datetime=_fmt_datetime_here,
                    days_until=_days_until_here, query_string=query_string,
                    currency_exponent=currency_exponent, period_text=period_text)


def read_flash(request: Request) -> list[dict]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        data = _serializer("flash").loads(raw, max_age=300)
    except BadSignature:
        return []
    return data if isinstance(data, list) else []


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    user = getattr(request.state, "web_user", None)
    flashes = read_flash(request)
    html = _env.get_template(template).render(request=request, user=user, flashes=flashes,
                                              csrf_token=user.csrf if user else context.pop("csrf", ""),
                                              **context)
    response = HTMLResponse(html, status_code=status_code)
    if flashes:
        response.delete_cookie(FLASH_COOKIE, path="/")
    response.headers["Cache-Control"] = "no-store"
    return response


def render_fragment(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)


def redirect(request: Request, url: str, *, flash: str | None = None, level: str = "success",
             links: list | None = None) -> RedirectResponse:
    """`links`: [(label, local path)] shown after the flash's text (what the action made, e.g. the packs an
    invoice's payment granted); anything but a local path is dropped."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        item: dict = {"level": level, "text": flash}
        local = [[str(label), href] for label, href in links or [] if safe_next(href, "") == href and href]
        if local:
            item["links"] = local
        response.set_cookie(FLASH_COOKIE, _serializer("flash").dumps([item]),
                            max_age=300, httponly=True, samesite="lax",
                            secure=get_settings().secure_cookies or request.url.scheme == "https",
                            path="/")
    return response


def safe_next(url: str | None, default: str = "/home") -> str:
    """Only local paths: a login link must not bounce people to another site."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return default


def error_page(request: Request, exc: CreditdeskError) -> HTMLResponse:
    titles = {403: "Not permitted", 404: "Not found", 405: "Not a page"}
    return render(request, "error.html", status_code=exc.http_status,
                  title=titles.get(exc.http_status, exc.title), message=exc.message, code=exc.code)


class WebRoute(APIRoute):
    """Back-office routes answer HTML: a login redirect, or an error page, never problem+json."""

    def get_route_handler(self) -> Callable:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
                refresh_session(request, response)
                return response
            except LoginRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method != "GET":
                    target = "/credits"
                response = RedirectResponse("/login" + query_string({"next": target}), status_code=303)
                if request.cookies.get(SESSION_COOKIE):
                    clear_session(response)
                return response
            except CreditdeskError as exc:
                return error_page(request, exc)
            except RequestValidationError:
                return error_page(request, InvalidInput("The request was not understood (a parameter is "
                                                        "missing or malformed)."))

        return handler
