"""Back-office sessions and login (issue 10): forged sessions (F4), logout and other session-ending changes
(F6), one's own login needs the current password (F7), and the login throttle and hashing slots (F10, F12)."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import delete, select

from creditdesk import clock
from creditdesk.config import DEFAULT_SECRET_KEY, get_settings
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import LoginThrottle, User
from creditdesk.parties.passwords import needs_rehash, verify_password
from creditdesk.web import auth
from creditdesk.web.core import SESSION_COOKIE
from tests.api.helpers import workspace_row
from tests.parties.factories import make_user, master_actor
from tests.web.conftest import PASSWORD, csrf_of, logged_in, login, post_form


@pytest.fixture(autouse=True)
def fresh_throttle(db):
    """Counters are shared by the whole test database (one client address, one global budget)."""
    db.write(lambda s: s.execute(delete(LoginThrottle)))
    yield
    db.write(lambda s: s.execute(delete(LoginThrottle)))


@pytest.fixture
def browser(app):
    """Another browser (its own cookies), e.g. the attacker's with a copied cookie."""
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def client_at(app, address: str) -> TestClient:
    """A browser connecting from `address` (as uvicorn reports it once trusted proxies are applied)."""
    return TestClient(app, base_url="http://testserver", client=(address, 40000))


def user_row(db, user_id: str) -> User:
    with db.read() as session:
        user = session.get(User, user_id)
        session.expunge(user)
        return user


def user_by_email(db, email: str) -> User:
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == email))
        session.expunge(user)
        return user


def is_login_redirect(response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/login")


def copy_session(source: TestClient, target: TestClient) -> str:
    cookie = source.cookies.get(SESSION_COOKIE)
    assert cookie
    target.cookies.set(SESSION_COOKIE, cookie)
    return cookie


def rename_workspace(client: TestClient, token: str, name: str):
    return client.post("/settings/workspace", data={"name": name, "csrf_token": token}, follow_redirects=False)


# --- F4: forged sessions ------------------------------------------------------------------------------

def test_a_session_forged_with_the_default_key_is_refused_for_a_user_without_password(web, db, world, monkeypatch):
    """The probe signed a cookie with the shipped key for a password-less master (pw = sha256("")) and used
    /settings and renamed the workspace. Whatever the key (here the placeholder, as the probe had it), a
    user without a password has no session."""
    monkeypatch.setattr(get_settings(), "secret_key", DEFAULT_SECRET_KEY)
    master = master_actor(db, world.workspace_id)
    integration = make_user(db, actor=master, name="Billing Integration", role="master")  # API-only, no password
    now = clock.now().timestamp()
    forged = URLSafeTimedSerializer(DEFAULT_SECRET_KEY, salt="creditdesk-web-session").dumps(
        {"uid": integration, "wid": world.workspace_id, "csrf": "x", "pw": hashlib.sha256(b"").hexdigest()[:16],
         "sv": 0, "at": now, "seen": now})
    web.cookies.set(SESSION_COOKIE, forged)
    assert is_login_redirect(web.get("/settings", follow_redirects=False))
    web.cookies.set(SESSION_COOKIE, forged)
    assert is_login_redirect(rename_workspace(web, "x", "Forged"))
    assert workspace_row(db, world.workspace_id).name == "Web workspace"


# --- F6: logout and other changes end sessions -----------------------------------------------------------

def test_logout_ends_the_session_for_a_copied_cookie_too(web, browser, db, world):
    logged_in(web, world.master_email)
    token = csrf_of(web.get("/settings").text)
    copy_session(web, browser)
    assert browser.get("/settings").status_code == 200  # the copy works while the session lives

    response = web.post("/logout", data={"csrf_token": token}, follow_redirects=True)
    assert "every other browser or device" in response.text

    assert is_login_redirect(browser.get("/settings", follow_redirects=False))
    assert is_login_redirect(browser.get("/credits", follow_redirects=False))
    # Writes too, with the page's own CSRF token.
    assert is_login_redirect(rename_workspace(browser, token, "Taken over"))
    assert workspace_row(db, world.workspace_id).name == "Web workspace"


def test_logout_logs_out_every_browser_of_the_user(web, browser, db, world):
    logged_in(web, world.manager_email)
    logged_in(browser, world.manager_email)
    post_form(web, "/logout", {})
    assert is_login_redirect(browser.get("/credits", follow_redirects=False))
    logged_in(browser, world.manager_email)  # and a new login works
    assert browser.get("/credits").status_code == 200


@pytest.mark.parametrize("change", [{"is_active": False}, {"password": "set by the master"},
                                    {"role": "member"}, {"permissions": ["consume_credits"]},
                                    {"email": "moved-away@example.com"}],
                         ids=lambda c: next(iter(c)))
def test_changes_of_access_end_the_users_sessions(web, db, world, change):
    manager = user_by_email(db, world.manager_email)
    logged_in(web, world.manager_email)
    assert web.get("/credits").status_code == 200
    master = master_actor(db, world.workspace_id)
    db.write(lambda s: parties.update_user(s, manager.id, ps.UserUpdate(**change), actor=master))
    assert is_login_redirect(web.get("/credits", follow_redirects=False))


def test_reactivation_does_not_revive_a_copied_cookie(web, browser, db, world):
    manager = user_by_email(db, world.manager_email)
    logged_in(web, world.manager_email)
    copy_session(web, browser)
    master = master_actor(db, world.workspace_id)
    db.write(lambda s: parties.update_user(s, manager.id, ps.UserUpdate(is_active=False), actor=master))
    db.write(lambda s: parties.update_user(s, manager.id, ps.UserUpdate(is_active=True), actor=master))
    assert is_login_redirect(browser.get("/credits", follow_redirects=False))


def test_a_name_change_keeps_the_session(web, db, world):
    manager = user_by_email(db, world.manager_email)
    logged_in(web, world.manager_email)
    master = master_actor(db, world.workspace_id)
    db.write(lambda s: parties.update_user(s, manager.id, ps.UserUpdate(name="Max Renamed"), actor=master))
    assert "Max Renamed" in web.get("/credits").text


def test_idle_sessions_end_and_active_ones_last_at_most_12_hours(web, db, world, frozen_clock):
    logged_in(web, world.member_email)
    frozen_clock.advance(minutes=30)
    response = web.get("/credits")
    assert response.status_code == 200 and SESSION_COOKIE in response.headers.get("set-cookie", "")
    frozen_clock.advance(seconds=30)  # refreshed at most once a minute
    response = web.get("/credits")
    assert response.status_code == 200 and SESSION_COOKIE not in response.headers.get("set-cookie", "")
    frozen_clock.advance(minutes=119)
    assert web.get("/credits").status_code == 200  # 119 min after the last refresh: still alive
    frozen_clock.advance(minutes=121)
    assert is_login_redirect(web.get("/credits", follow_redirects=False))

    logged_in(web, world.member_email)
    for _ in range(11):
        frozen_clock.advance(minutes=60)
        assert web.get("/credits").status_code == 200
    frozen_clock.advance(minutes=61)  # active all along, but 12 h after login
    assert is_login_redirect(web.get("/credits", follow_redirects=False))


# --- F7: one's own login needs the current password, in the back office too ----------------------------

def test_changing_ones_own_password_needs_the_current_one_and_ends_the_other_sessions(web, browser, db, world):
    logged_in(web, world.member_email)
    logged_in(browser, world.member_email)
    before = user_by_email(db, world.member_email).password_hash
    for current in ("", "not my password"):
        response = post_form(web, "/settings/password", {"current": current, "new": "a brand new password",
                                                          "again": "a brand new password"})
        assert response.status_code == 422
        assert "current password" in response.text
    assert user_by_email(db, world.member_email).password_hash == before

    response = post_form(web, "/settings/password", {"current": PASSWORD, "new": "a brand new password",
                                                      "again": "a brand new password"})
    assert response.status_code == 303
    assert verify_password(user_by_email(db, world.member_email).password_hash, "a brand new password")
    assert web.get("/settings").status_code == 200  # this session carries on
    assert is_login_redirect(browser.get("/settings", follow_redirects=False))  # the other one ended


def test_changing_ones_own_email_needs_the_current_password(web, browser, db, world):
    logged_in(web, world.member_email)
    logged_in(browser, world.member_email)
    user = user_by_email(db, world.member_email)
    new_email = f"member-moved-{os.urandom(3).hex()}@example.com"
    for current in ("", "not my password"):
        response = post_form(web, "/settings/email", {"email": new_email, "current": current})
        assert response.status_code == 422
        assert "current password" in response.text.lower()
    assert user_row(db, user.id).email == world.member_email

    response = post_form(web, "/settings/email", {"email": new_email, "current": PASSWORD})
    assert response.status_code == 303
    assert user_row(db, user.id).email == new_email
    assert new_email in web.get("/settings").text
    assert is_login_redirect(browser.get("/settings", follow_redirects=False))
    assert login(browser, new_email).status_code == 303


# --- F10/F12: login throttle and hashing slots --------------------------------------------------------------

def failed_login(app, email: str, address: str, *, password: str = "wrong password", headers=None):
    with client_at(app, address) as client:
        token = csrf_of(client.get("/login").text)
        return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                           headers=headers or {}, follow_redirects=False)


def test_one_account_is_throttled_whatever_the_address(app, db, world, frozen_clock):
    """F12: rotating X-Forwarded-For (or real addresses) gave 8 more guesses and then a login."""
    limit = get_settings().login_failures_per_account
    for i in range(limit):
        response = failed_login(app, world.member_email, f"10.0.0.{i}",
                                headers={"X-Forwarded-For": f"192.0.2.{i}"})
        assert response.status_code == 401
    response = failed_login(app, world.member_email, "10.0.1.1", password=PASSWORD,
                            headers={"X-Forwarded-For": "192.0.2.200"})
    assert response.status_code == 429
    assert f"Too many failed logins for {world.member_email}" in response.text
    assert 0 < int(response.headers["Retry-After"]) <= get_settings().login_failure_window_seconds + 1
    # Other accounts are not affected, and the window ends.
    assert failed_login(app, world.manager_email, "10.0.1.1", password=PASSWORD).status_code == 303
    frozen_clock.advance(seconds=get_settings().login_failure_window_seconds)
    assert failed_login(app, world.member_email, "10.0.1.1", password=PASSWORD).status_code == 303


def test_one_address_is_throttled_whatever_the_emails(app, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_failures_per_address", 3)
    for i in range(3):
        assert failed_login(app, f"nobody-{i}-{os.urandom(3).hex()}@example.com", "198.51.100.7").status_code == 401
    response = failed_login(app, f"someone-else-{os.urandom(3).hex()}@example.com", "198.51.100.7")
    assert response.status_code == 429 and "from your address" in response.text
    assert failed_login(app, f"x-{os.urandom(3).hex()}@example.com", "198.51.100.8").status_code == 401


def test_spraying_many_emails_from_many_addresses_hits_the_global_budget(app, world, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_failures_per_minute", 4)
    for i in range(4):
        email = f"spray-{i}-{os.urandom(3).hex()}@example.com"
        assert failed_login(app, email, f"203.0.113.{i}").status_code == 401
    response = failed_login(app, world.member_email, "203.0.113.99", password=PASSWORD)
    assert response.status_code == 429 and "on this server" in response.text
    assert 0 < int(response.headers["Retry-After"]) <= 61


def test_a_throttled_login_hashes_nothing(app, world, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_failures_per_minute", 1)
    assert failed_login(app, world.member_email, "203.0.113.1").status_code == 401
    calls = []
    monkeypatch.setattr(auth, "verify_password", lambda *a: calls.append(a) or False)
    assert failed_login(app, world.member_email, "203.0.113.2").status_code == 429
    assert calls == []


def test_logins_beyond_the_hashing_slots_get_503_at_once(app, world, monkeypatch):
    """F10: 30 concurrent logins ran 30 argon2 hashes at once (1.74 GB). Two slots; the third waits at most
    login_hash_wait_seconds and is told to come back."""
    slots = get_settings().login_hash_concurrency
    inside, release = threading.Semaphore(0), threading.Event()

    def slow_verify(password_hash, password):
        inside.release()
        release.wait(10)
        return False

    monkeypatch.setattr(auth, "verify_password", slow_verify)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        failed_login(app, f"slow-{i}-{os.urandom(3).hex()}@example.com", f"192.0.2.{i}").status_code))
        for i in range(slots)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(slots):
            assert inside.acquire(timeout=10), "the slow logins did not start hashing"
        started = time.monotonic()
        response = failed_login(app, world.member_email, "192.0.2.50", password=PASSWORD)
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()
        assert elapsed < get_settings().login_hash_wait_seconds + 2
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
    assert results == [401] * slots
    monkeypatch.undo()
    assert failed_login(app, world.member_email, "192.0.2.50", password=PASSWORD).status_code == 303


def test_a_login_replaces_a_hash_made_with_older_parameters(web, db, world):
    member = user_by_email(db, world.member_email)
    old_hash = PasswordHasher().hash(PASSWORD)  # argon2-cffi's defaults (64 MiB), as before issue 10

    def put_old(session):
        session.get(User, member.id).password_hash = old_hash
    db.write(put_old)
    assert needs_rehash(old_hash)
    logged_in(web, world.member_email)
    stored = user_row(db, member.id).password_hash
    assert stored != old_hash and not needs_rehash(stored) and verify_password(stored, PASSWORD)
    assert web.get("/credits").status_code == 200  # the new session carries the new fingerprint

