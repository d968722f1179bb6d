"""Login and logout for staff users.

A login attempt is the one thing anyone on the network can make the server do, and each costs an
argon2 hash (unknown emails too, so that the answer time does not tell which emails have accounts).
So, in order, before any hashing:

1. the throttle (creditdesk.parties.throttle, counted in the database for every worker): too many
   failures for this email, from this address, or in the whole installation -> 429 with Retry-After;
2. a slot among `login_hash_concurrency` hashing slots of this process, waited for at most
   `login_hash_wait_seconds` -> else 503 with Retry-After (memory stays bounded whatever the load).

The client address is the connecting one. `creditdesk serve` lets uvicorn replace it from
X-Forwarded-For only for the proxies named in CREDITDESK_TRUSTED_PROXIES.
"""

from __future__ import annotations

import asyncio
import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from creditdesk.config import get_settings
from creditdesk.parties import service as parties
from creditdesk.parties import throttle
from creditdesk.parties.passwords import hash_password, needs_rehash, verify_password
from creditdesk.web import repository
from creditdesk.web.core import (
    WebRoute,
    _load_user,
    clear_session,
    csrf_matches,
    db_of,
    new_csrf_token,
    read_session,
    redirect,
    render,
    safe_next,
    session_for,
    set_session,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)

# Verified against when the email is unknown, so an unknown email costs as long as a wrong password
# (the answer time must not tell which emails have accounts).
_DUMMY_HASH = hash_password("creditdesk-no-such-user")

_slots_guard = threading.Lock()


def hash_slots(request: Request) -> threading.BoundedSemaphore:
    """This app's password-hashing slots (a thread semaphore: released by the thread that hashed)."""
    slots = getattr(request.app.state, "login_hash_slots", None)
    if slots is None:
        with _slots_guard:
            slots = getattr(request.app.state, "login_hash_slots", None)
            if slots is None:
                slots = request.app.state.login_hash_slots = threading.BoundedSemaphore(
                    max(1, get_settings().login_hash_concurrency))
    return slots


async def _take_slot(slots: threading.BoundedSemaphore, wait_seconds: float) -> bool:
    deadline = time.monotonic() + max(0.0, wait_seconds)
    while not slots.acquire(blocking=False):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(request: Request, *, status_code: int = 200, error: str | None = None, email: str = "",
                next_url: str = "", workspaces: list | None = None, retry_after: int | None = None) -> Response:
    session = read_session(request)
    token = session.get("csrf") if session and not session.get("uid") else None
    token = token or new_csrf_token()
    response = render(request, "login.html", status_code=status_code, csrf=token, error=error, email=email,
                      next_url=next_url, workspaces=workspaces or [])
    set_session(response, request, {"csrf": token})
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


_THROTTLED = {
    "account": "Too many failed logins for {email}.",
    "address": "Too many failed logins from your address.",
    "global": "Too many failed logins on this server right now.",
}


@router.get("/login")
def login_form(request: Request, next: str = ""):
    return _login_page(request, next_url=safe_next(next))


@router.post("/login")
async def login(request: Request):
    form = await request.form()
    email = str(form.get("email") or "").strip().lower()[:320]
    password = str(form.get("password") or "")[:1000]
    workspace_id = str(form.get("workspace_id") or "")
    next_url = safe_next(str(form.get("next") or ""))
    if not csrf_matches(request, form.get("csrf_token")):
        return _login_page(request, status_code=403, email=email, next_url=next_url,
                           error="The login form expired. Please try again.")
    settings = get_settings()
    db = db_of(request)
    limits = throttle.login_limits(settings, email=email, address=client_address(request))
    wait, scope = await run_in_threadpool(_retry_after, db, limits)
    if wait:
        return _login_page(request, status_code=429, email=email, next_url=next_url, retry_after=wait,
                           error=f"{_THROTTLED[scope].format(email=email)} Try again in {_wait_text(wait)}.")
    slots = hash_slots(request)
    if not await _take_slot(slots, settings.login_hash_wait_seconds):
        return _login_page(request, status_code=503, email=email, next_url=next_url, retry_after=2,
                           error="The server is busy with other logins. Try again in a few seconds.")
    matches, rehash = await _hash_in_slot(slots, db, email, password)
    if workspace_id:
        matches = [m for m in matches if m[1].id == workspace_id]
    if not matches:
        await run_in_threadpool(db.write, lambda session: throttle.record_failure(session, limits))
        return _login_page(request, status_code=401, email=email, next_url=next_url,
                           error="Wrong email or password.")
    if len(matches) > 1:
        return _login_page(request, email=email, next_url=next_url,
                           workspaces=[(w.id, w.name) for _, w in matches],
                           error="This login works in several workspaces: choose one.")
    user, workspace = matches[0]
    account = next(lim for lim in limits if lim.scope == "account")
    user = await run_in_threadpool(_logged_in, db, account, user, rehash.get(user.id))
    response = redirect(request, next_url, flash=f"Welcome, {user.name}.")
    # A fresh session (and CSRF token) at login: a token planted before login is worthless after.
    set_session(response, request, session_for(user, csrf=new_csrf_token()))
    return response


def _retry_after(db, limits) -> tuple[int, str | None]:
    with db.read() as session:
        return throttle.retry_after(session, limits)


async def _hash_in_slot(slots: threading.BoundedSemaphore, db, email: str, password: str) -> tuple[list, dict]:
    """Check the password in a worker thread (argon2 is slow on purpose) holding a slot taken by the caller.
    The thread frees the slot when it is done hashing; if the request is cancelled before the thread
    started, the slot is freed here."""
    started = threading.Event()

    def work():
        started.set()
        try:
            return _check_password(db, email, password)
        finally:
            slots.release()

    try:
        return await run_in_threadpool(work)
    except BaseException:
        if not started.is_set():
            slots.release()
        raise


def _check_password(db, email: str, password: str) -> tuple[list, dict]:
    """(user, workspace) pairs whose password matches, and new hashes for those hashed with old parameters."""
    with db.read() as session:
        candidates = repository.staff_logins(session, email) if email else []
        session.expunge_all()
    if not candidates:
        verify_password(_DUMMY_HASH, password)
        return [], {}
    matches = [(u, w) for u, w in candidates if verify_password(u.password_hash, password)]
    rehash = {u.id: (u.password_hash, hash_password(password)) for u, _ in matches if needs_rehash(u.password_hash)}
    return matches, rehash


def _logged_in(db, account_limit, user, rehash: tuple[str, str] | None):
    """Forget the account's failures and store a hash with today's parameters; the user as now stored."""
    from creditdesk.parties.models import User

    def fn(session):
        throttle.forget(session, account_limit)
        if rehash:
            parties.store_rehashed_password(session, user.id, old_hash=rehash[0], new_hash=rehash[1])
        session.flush()
        row = session.get(User, user.id)
        session.expunge(row)
        return row

    return db.write(fn)


@router.post("/logout")
async def logout(request: Request):
    form = await request.form()
    # Logging out needs the token too: another site must not be able to log people out.
    if not csrf_matches(request, form.get("csrf_token")):
        return redirect(request, "/credits", flash="That logout link expired; use the Log out button.",
                        level="error")
    db = db_of(request)
    user = await run_in_threadpool(_load_user, db, read_session(request))
    if user is not None:
        # The cookie is only signed, not stored: ending the session means moving the user's session
        # version on, which ends every session of theirs (a copy of this cookie included).
        await run_in_threadpool(db.write, lambda session: parties.end_sessions(session, actor=user.actor))
    response = redirect(request, "/login", flash="You are logged out, here and in every other browser or "
                                                 "device where you were logged in.")
    clear_session(response)
    return response
