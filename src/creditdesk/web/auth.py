"""Login and logout for staff users, with a login rate limit."""

from __future__ import annotations

import threading
import time
from collections import deque

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditdesk.parties.passwords import hash_password, verify_password
from creditdesk.web import repository
from creditdesk.web.core import (
    WebRoute,
    clear_session,
    csrf_matches,
    db_of,
    new_csrf_token,
    password_fingerprint,
    read_session,
    redirect,
    render,
    safe_next,
    set_session,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)

MAX_FAILURES = 5
WINDOW_SECONDS = 300

# Verified against when the email is unknown, so an unknown email costs as long as a wrong password
# (the answer time must not tell which emails have accounts).
_DUMMY_HASH = hash_password("creditdesk-no-such-user")


class LoginLimiter:
    """Failed logins per (email, client address): after MAX_FAILURES within WINDOW_SECONDS, refuse
    (even the right password) until the oldest failure leaves the window. In memory, per process:
    enough to stop guessing through the form; a proxy in front should limit per address as well."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS, now=time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self.now = now
        self._failures: dict[tuple[str, str], deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key) -> deque:
        failures = self._failures.get(key, deque())
        cutoff = self.now() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def retry_after(self, key) -> int:
        """Seconds until another try is allowed; 0 when allowed now."""
        with self._lock:
            failures = self._recent(key)
            if len(failures) < self.max_failures:
                return 0
            return max(1, int(failures[0] + self.window - self.now()) + 1)

    def failed(self, key) -> None:
        with self._lock:
            failures = self._recent(key)
            failures.append(self.now())
            self._failures[key] = failures
            if len(self._failures) > 100_000:  # bound the memory an attacker can make us use
                self._failures.clear()

    def succeeded(self, key) -> None:
        with self._lock:
            self._failures.pop(key, None)


def limiter_of(request: Request) -> LoginLimiter:
    limiter = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        limiter = request.app.state.login_limiter = LoginLimiter()
    return limiter


def _login_page(request: Request, *, status_code: int = 200, error: str | None = None, email: str = "",
                next_url: str = "", workspaces: list | None = None) -> Response:
    session = read_session(request)
    token = session.get("csrf") if session and not session.get("uid") else None
    token = token or new_csrf_token()
    response = render(request, "login.html", status_code=status_code, csrf=token, error=error, email=email,
                      next_url=next_url, workspaces=workspaces or [])
    set_session(response, request, {"csrf": token})
    return response


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
    client = request.client.host if request.client else "unknown"
    key = (email, client)
    limiter = limiter_of(request)
    wait = limiter.retry_after(key)
    if wait:
        minutes = (wait + 59) // 60
        return _login_page(request, status_code=429, email=email, next_url=next_url,
                           error=f"Too many failed logins for {email} from your address. "
                                 f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.")
    # argon2 verification is slow on purpose: keep it off the event loop.
    from starlette.concurrency import run_in_threadpool

    matches = await run_in_threadpool(_check_password, db_of(request), email, password)
    if workspace_id:
        matches = [m for m in matches if m[1].id == workspace_id]
    if not matches:
        limiter.failed(key)
        return _login_page(request, status_code=401, email=email, next_url=next_url,
                           error="Wrong email or password.")
    if len(matches) > 1:
        return _login_page(request, email=email, next_url=next_url,
                           workspaces=[(w.id, w.name) for _, w in matches],
                           error="This login works in several workspaces: choose one.")
    limiter.succeeded(key)
    user, workspace = matches[0]
    response = redirect(request, next_url, flash=f"Welcome, {user.name}.")
    # A fresh session (and CSRF token) at login: a token planted before login is worthless after.
    set_session(response, request, {"uid": user.id, "wid": workspace.id, "csrf": new_csrf_token(),
                                    "pw": password_fingerprint(user.password_hash)})
    return response


def _check_password(db, email: str, password: str) -> list:
    with db.read() as session:
        candidates = repository.staff_logins(session, email) if email else []
        if not candidates:
            verify_password(_DUMMY_HASH, password)
            return []
        matches = [(u, w) for u, w in candidates if verify_password(u.password_hash, password)]
        session.expunge_all()
        return matches


@router.post("/logout")
async def logout(request: Request):
    form = await request.form()
    # Logging out needs the token too: another site must not be able to log people out.
    if not csrf_matches(request, form.get("csrf_token")):
        return redirect(request, "/credits", flash="That logout link expired; use the Log out button.",
                        level="error")
    response = redirect(request, "/login", flash="You are logged out.")
    clear_session(response)
    return response
