"""Browser hardening headers on every kind of answer, no inline script in the back office, and the
`Secure` cookie setting (F13, F2's CSP half).

Each test fails on a main without the SecurityHeaders middleware, the cleaned templates, or
CREDITDESK_SECURE_COOKIES.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from creditdesk.api.security import CONTENT_SECURITY_POLICY
from creditdesk.web.core import TEMPLATES_DIR
from tests.web.conftest import PASSWORD, csrf_of, logged_in, login, post_form


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


def assert_hardened(response, what: str) -> None:
    headers = response.headers
    assert headers.get("x-frame-options") == "DENY", what
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("referrer-policy") == "same-origin", what
    policy = directives(headers.get("content-security-policy", ""))
    assert policy.get("script-src") == ["'self'"], what  # no 'unsafe-inline': javascript: URLs and handlers die
    assert policy.get("frame-ancestors") == ["'none'"], what
    assert policy.get("object-src") == ["'none'"] and policy.get("base-uri") == ["'none'"], what
    assert policy.get("default-src") == ["'self'"], what


def test_the_policy_forbids_inline_script_and_framing():
    policy = directives(CONTENT_SECURITY_POLICY)
    assert "'unsafe-inline'" not in " ".join(policy["script-src"] + policy["style-src"])
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY
    assert policy["form-action"] == ["'self'"]


def test_html_pages_and_their_redirects_carry_the_headers(web, world):
    assert_hardened(web.get("/login"), "login page")
    answer = web.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert_hardened(answer, "redirect to the login")
    answer = web.get("/credits", follow_redirects=False)
    assert answer.status_code == 303
    assert_hardened(answer, "login-required redirect")
    answer = login(web, world.master_email)
    assert answer.status_code == 303
    assert_hardened(answer, "login redirect that sets the session cookie")
    for path in ("/credits", f"/packs/{world.london_pack}", f"/packs/{world.london_pack}/history?fragment=1",
                 "/clients", f"/offices/{world.london_id}?tab=credits", f"/projects/{world.project_id}", "/settings",
                 "/activity", "/sms"):
        answer = web.get(path)
        assert answer.status_code == 200, path
        assert_hardened(answer, path)
    assert_hardened(web.get("/packs/pack_nothing"), "back-office 404 page")
    answer = post_form(web, f"/packs/{world.london_pack}/edit", {"status_label": "Checked", "next": "/credits"})
    assert answer.status_code == 303
    assert_hardened(answer, "redirect after a form (with the flash cookie)")
    export = web.get("/credits/export.csv")
    assert export.status_code == 200
    assert_hardened(export, "CSV export")


def test_json_and_problem_answers_carry_the_headers(client, workspace):
    answer = client.get("/v1/customers", headers=workspace.headers)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert_hardened(answer, "JSON")
    answer = client.get("/v1/customers")
    assert answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"
    assert_hardened(answer, "401 problem+json")
    assert_hardened(client.get("/v1/customers/cus_nothing", headers=workspace.headers), "404 problem+json")
    assert_hardened(client.get("/no/such/path"), "unrouted 404")
    assert_hardened(client.get("/healthz"), "health check")
    assert_hardened(client.get("/openapi.json"), "OpenAPI document")
    # Answers sent by middleware before any route runs.
    too_big = client.post("/v1/customers", content=b"x" * 1_000_001, headers={**workspace.headers,
                                                                              "Content-Type": "application/json"})
    assert too_big.status_code == 413
    assert_hardened(too_big, "413 from the body limit")
    nul = client.post("/v1/customers", json={"name": "a\x00b"}, headers=workspace.headers)
    assert nul.status_code == 422
    assert_hardened(nul, "422 NUL refusal")


def test_static_files_carry_the_headers(client):
    for path, kind in (("/static/app.js", "javascript"), ("/static/app.css", "text/css"),
                       ("/docs/assets/swagger-ui-bundle.js", "javascript")):
        answer = client.get(path)
        assert answer.status_code == 200 and kind in answer.headers["content-type"], path
        assert_hardened(answer, path)
    assert_hardened(client.get("/static/nothing.js"), "static 404")


def test_a_page_may_set_its_own_policy_and_keeps_it(client):
    """ReDoc needs inline style: its page sends its own policy and the middleware must not add a second."""
    answer = client.get("/redoc")
    assert answer.status_code == 200
    assert len(answer.headers.get_list("content-security-policy")) == 1
    policy = directives(answer.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    assert answer.headers["x-frame-options"] == "DENY"


# --- no inline script anywhere in the back office ---------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
STYLE = re.compile(r"<style\b|<[^>]+\sstyle\s*=", re.I)


@pytest.mark.parametrize("template", sorted(p.name for p in Path(TEMPLATES_DIR).glob("*.html")))
def test_templates_have_no_inline_script_handler_or_style(template):
    """The policy allows none of these: one added later would silently not work in the browser."""
    source = (Path(TEMPLATES_DIR) / template).read_text()
    assert not INLINE_SCRIPT.search(source), template
    assert not HANDLER.search(source), template
    assert not STYLE.search(source), template
    assert "javascript:" not in source.lower(), template


def store_consumption_with_reference(db, workspace_id: str, office_id: str, url: str, *, kind: str, ref_id: str,
                                     credit_type: str = "hours", amount: int = 1) -> list[str]:
    """A consumption of an office's credits whose reference URL is stored exactly as given, whatever the
    API accepts today: consumed through the service with a harmless URL, then the URL rewritten in its
    rows, as a row stored before URL validation existed would hold it. Returns the packs it burnt."""
    from sqlalchemy import select, update

    from creditdesk.credits import schemas as cs
    from creditdesk.credits import consumptions
    from creditdesk.credits.models import Consumption, Pack
    from creditdesk.ledger.models import LedgerTransfer
    from creditdesk.parties import service as parties
    from creditdesk.parties.models import User

    def consume(session):
        master = session.scalars(select(User).where(User.workspace_id == workspace_id, User.role == "master")
                                 .order_by(User.id)).first()
        return consumptions.consume(session, cs.ConsumeRequest(
            context=cs.Context(kind="office", id=office_id), credit_type=credit_type, amount=amount,
            reference=cs.ReferenceIn(kind=kind, id=ref_id, url="https://placeholder.example/")),
            actor=parties.actor_for_user(session, master)).id

    consumption_id = db.write(consume)

    def rewrite(session):
        session.execute(update(Consumption).where(Consumption.id == consumption_id).values(reference_url=url))
        session.execute(update(LedgerTransfer).where(LedgerTransfer.operation_id == consumption_id)
                        .values(reference_url=url))
        return list(session.scalars(select(Pack.id).join(
            LedgerTransfer, LedgerTransfer.debit_account_id == Pack.ledger_account_id).where(
            LedgerTransfer.operation_id == consumption_id)))

    return db.write(rewrite)


def test_history_links_from_stored_data_do_not_give_the_target_a_handle_on_the_page(web, db, world):
    [pack] = store_consumption_with_reference(db, world.workspace_id, world.london_id,
                                              "https://billing.example.com/inv/42", kind="Invoice", ref_id="INV-42")
    logged_in(web, world.master_email)
    for path in (f"/packs/{pack}", f"/packs/{pack}/history", f"/packs/{pack}/history?fragment=1"):
        html = web.get(path).text
        link = re.search(r'<a href="https://billing\.example\.com/inv/42"([^>]*)>', html)
        assert link, path
        assert 'rel="noopener noreferrer"' in link.group(1), path


# --- the Secure flag ---------------------------------------------------------------------------------

def cookie_lines(response, name: str) -> list[str]:
    return [value for value in response.headers.get_list("set-cookie") if value.startswith(f"{name}=")]


def test_cookies_are_secure_when_the_setting_says_so(app, world, settings_env):
    """Behind a TLS proxy uvicorn does not trust, the app sees http: the setting forces Secure. (The test
    client, like a browser, would not send a Secure cookie back over http: it is handed back by hand.)"""
    settings_env(secure_cookies="true")
    with TestClient(app, base_url="http://testserver") as web:
        page = web.get("/login")
        [pre_login] = cookie_lines(page, "creditdesk_session")
        assert "secure" in pre_login.lower()
        jar = {"Cookie": pre_login.split(";")[0]}
        answer = web.post("/login", data={"email": world.master_email, "password": PASSWORD,
                                          "csrf_token": csrf_of(page.text)}, headers=jar, follow_redirects=False)
        assert answer.status_code == 303
        [session] = cookie_lines(answer, "creditdesk_session")
        assert "secure" in session.lower() and "httponly" in session.lower()
        jar = {"Cookie": session.split(";")[0]}
        token = csrf_of(web.get("/settings", headers=jar).text)
        answer = web.post(f"/packs/{world.london_pack}/edit", data={"csrf_token": token, "status_label": "S"},
                          headers=jar, follow_redirects=False)
        assert answer.status_code == 303
        [flash] = cookie_lines(answer, "creditdesk_flash")
        assert "secure" in flash.lower()


def test_by_default_the_secure_flag_follows_the_scheme(app, world):
    with TestClient(app, base_url="http://testserver") as web:
        [session] = cookie_lines(login(web, world.master_email), "creditdesk_session")
        assert "secure" not in session.lower()  # plain http (development): a Secure cookie would never come back
    with TestClient(app, base_url="https://testserver") as web:
        page = web.get("/login")
        answer = web.post("/login", data={"email": world.master_email, "password": PASSWORD,
                                          "csrf_token": csrf_of(page.text)}, follow_redirects=False)
        [session] = cookie_lines(answer, "creditdesk_session")
        assert "secure" in session.lower()
