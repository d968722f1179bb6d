"""The Content-Security-Policy in a real browser (F2, F13): Chromium against `creditdesk serve --demo`.

(a) A consumption whose stored reference URL is `javascript:...` (written straight into its rows, as one
stored before URL validation would be) is shown in the pack history and in the report's history dialog.
A master clicks every link built from stored data: no script runs (the workspace keeps its name, no
dialog opens, no marker is set), and the CSP reports what it blocked.
(b) Every main back-office page, the API docs included, loads with no CSP violation and no script error,
and what the JavaScript does (history dialog, print, filters, menus) still works.
On main (no CSP) the stored link ran and renamed the workspace: test (a) fails there.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from tests.web.test_browser import CHROMIUM, LAUNCH_ARGS, MASTER, _free_port, log_in, sync_api
from tests.web.test_security_headers import store_consumption_with_reference

expect = sync_api.expect

WORKSPACE_NAME = "Demo Services Ltd"
# What an attacker stores: rename the workspace with the master's CSRF token, and leave markers.
PAYLOAD = ("javascript:document.documentElement.dataset.xss='ran';window.name='xss';"
           "fetch('/settings').then(r=>r.text()).then(t=>{let k=t.match(/csrf_token\" value=\"([^\"]+)/)[1];"
           "let f=new URLSearchParams();f.append('csrf_token',k);f.append('name','Renamed by XSS');"
           "return fetch('/settings/workspace',{method:'POST',body:f})});alert('xss')")

# A listener installed before any page script (init scripts come from the browser's debugging
# protocol, which the page's CSP does not govern): it records what the policy blocked.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__violations.push({directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample || ''});
});
"""


@dataclass
class Served:
    base: str
    database_url: str


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`creditdesk serve --demo` on a SQLite file this test can also write to."""
    folder = tmp_path_factory.mktemp("csp")
    port = _free_port()
    url = f"sqlite:///{folder / 'csp.db'}"
    env = {**os.environ, "CREDITDESK_SECRET_KEY": secrets.token_hex(32), "CREDITDESK_JOBS_INTERVAL_SECONDS": "0"}
    env.pop("CREDITDESK_DATABASE_URL", None)
    # The server runs in a temporary folder: this checkout's code must come first on its path, whatever
    # PYTHONPATH says relative to where the tests were started.
    source = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([source] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    with open(folder / "serve.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "creditdesk.cli", "serve", "--demo", "--host", "127.0.0.1", "--port", str(port),
             "--database-url", url, "--no-access-log"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=folder)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"creditdesk serve exited: {(folder / 'serve.log').read_text()[-3000:]}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("creditdesk serve did not become ready in 60 s")
                time.sleep(0.2)
            yield Served(base, url)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def demo_db(served):
    from creditdesk.db import Database

    database = Database(served.database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Watched:
    page: object
    dialogs: list
    errors: list  # console errors and uncaught exceptions

    def violations(self) -> list[dict]:
        return self.page.evaluate("window.__violations || []")


@pytest.fixture
def watched(browser, served):
    context = browser.new_context(base_url=served.base, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_VIOLATIONS)
    # Print buttons call window.print(): replaced by a recorder (a headless print dialog never returns).
    context.add_init_script("window.__printed = 0; window.print = function () { window.__printed += 1; };")
    page = context.new_page()
    seen = Watched(page, [], [])

    def on_dialog(dialog):
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    # A page answering 404 on purpose logs "Failed to load resource" too: failed loads are judged by
    # their resource type instead (any script, style, image or fetch that fails is an error).
    page.on("console", lambda message: seen.errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    page.on("response", lambda response: seen.errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and response.request.resource_type != "document" else None)
    page.on("pageerror", lambda error: seen.errors.append(f"uncaught: {error}"))
    yield seen
    context.close()


def ids(demo_db) -> dict[str, str]:
    from creditdesk.credits.models import Pack
    from creditdesk.parties.models import Customer, Office, User, Workspace

    with demo_db.read() as session:
        ws = session.scalar(select(Workspace.id).where(Workspace.name == WORKSPACE_NAME))
        office = session.scalar(select(Office.id).where(Office.workspace_id == ws, Office.name == "Acme London"))
        return {
            "workspace": ws, "office": office,
            "customer": session.scalar(select(Customer.id).where(Customer.workspace_id == ws,
                                                                 Customer.name == "Acme Widgets")),
            "user": session.scalar(select(User.id).where(User.workspace_id == ws, User.email == MASTER)),
            "pack": session.scalar(select(Pack.id).where(Pack.workspace_id == ws,
                                                         Pack.name == "Acme 40h content pack")),
        }


def workspace_name(demo_db, workspace_id: str) -> str:
    from creditdesk.parties.models import Workspace

    with demo_db.read() as session:
        return session.get(Workspace, workspace_id).name


def no_script_ran(watched: Watched, demo_db, workspace_id: str) -> None:
    page = watched.page
    page.wait_for_timeout(300)  # a fetch started by a payload would have landed by now
    assert page.evaluate("document.documentElement.dataset.xss") is None
    assert page.evaluate("window.name") != "xss"
    assert watched.dialogs == []
    assert workspace_name(demo_db, workspace_id) == WORKSPACE_NAME


def stored_links(container) -> list:
    """Links in the history's "For" column: the ones built from stored reference data."""
    return container.locator("table.history-table tbody tr td:last-child a").all()


def open_history_dialog(page, pack: str):
    page.goto("/credits")
    page.locator(f'a[data-history="/packs/{pack}/history?fragment=1"]').click()
    dialog = page.locator("dialog#history-dialog")
    expect(dialog.locator("table.history-table")).to_be_visible()
    return dialog


# --- (a) a stored javascript: URL cannot run ---------------------------------------------------------

def test_a_stored_javascript_link_runs_nothing_in_the_history_page_or_dialog(watched, served, demo_db):
    known = ids(demo_db)
    packs = store_consumption_with_reference(demo_db, known["workspace"], known["office"], PAYLOAD,
                                             kind="Invoice", ref_id="INV-2026-0043")
    page = watched.page
    log_in(page)

    clicked_script_links = 0
    for pack in packs:
        # The pack page and the history page render the history on the server.
        for path in (f"/packs/{pack}", f"/packs/{pack}/history"):
            page.goto(path)
            expect(page.locator("main table.history-table")).to_contain_text("Invoice INV-2026-0043")
            for index in range(len(stored_links(page.locator("main")))):
                page.goto(path)
                link = stored_links(page.locator("main"))[index]
                href = link.get_attribute("href") or ""
                assert link.get_attribute("rel") == "noopener noreferrer"
                before = len(watched.violations())
                link.click()
                page.wait_for_load_state()
                if href.lower().startswith("javascript:"):
                    clicked_script_links += 1
                    # The violation event is queued as a task: wait for it rather than race it.
                    page.wait_for_function("n => window.__violations.length > n", arg=before, timeout=5_000)
                    blocked = watched.violations()[before:]
                    assert blocked, f"{path}: a javascript: link was followed without the CSP stopping it"
                    assert all(v["directive"].startswith("script-src") for v in blocked), blocked
                no_script_ran(watched, demo_db, known["workspace"])

        # The report's eye icon: the same history in the dialog, inserted by app.js.
        dialog = open_history_dialog(page, pack)
        expect(dialog.locator("table.history-table")).to_contain_text("INV-2026-0043")
        assert dialog.locator('a[href^="javascript:" i]').count() == 0  # app.js keeps only http(s) links
        for index in range(len(stored_links(dialog))):
            link = stored_links(open_history_dialog(page, pack))[index]
            assert link.get_attribute("rel") == "noopener noreferrer"
            link.click()
            page.wait_for_load_state()
            no_script_ran(watched, demo_db, known["workspace"])
        no_script_ran(watched, demo_db, known["workspace"])
    # If the server ever stops rendering such a link (render-time URL check), there is nothing left to
    # click; the policy itself is still proven by the next test.
    assert clicked_script_links in (0, 2 * len(packs))


def test_the_policy_blocks_javascript_urls_and_inline_handlers_on_a_real_page(watched, served, demo_db):
    """Independent of what the server renders: markup an attacker might get into a page does nothing."""
    known = ids(demo_db)
    page = watched.page
    log_in(page)
    page.goto("/credits")
    page.evaluate("""() => {
        const a = document.createElement('a');
        a.id = 'planted'; a.textContent = 'Invoice';
        a.href = "javascript:document.documentElement.dataset.xss='ran'";
        document.querySelector('main').appendChild(a);
        document.querySelector('main').insertAdjacentHTML('beforeend',
            '<img id="planted-img" src="/nothing.png" onerror="document.documentElement.dataset.xss=\\'ran\\'">' +
            '<div id="planted-div" onclick="window.name=\\'xss\\'">x</div>');
    }""")
    page.locator("#planted").click()
    page.locator("#planted-div").click()
    page.wait_for_function("window.__violations.length >= 3", timeout=5_000)
    blocked = [v["directive"] for v in watched.violations()]
    assert any(d.startswith("script-src") for d in blocked), blocked
    assert len(blocked) >= 3, blocked  # the link, the onerror and the onclick
    no_script_ran(watched, demo_db, known["workspace"])


# --- (b) every main page under the policy, and the JavaScript still works ----------------------------

def main_pages(known: dict[str, str]) -> list[str]:
    pack = known["pack"]
    return ["/credits", "/credits?credit_type=hours&sort=remaining&order=desc", f"/packs/{pack}",
            f"/packs/{pack}/history", f"/packs/{pack}/change-holder", "/packs/new", "/packs/import", "/clients",
            f"/customers/{known['customer']}", f"/offices/{known['office']}",
            f"/offices/{known['office']}?tab=credits", f"/users/{known['user']}", "/projects", "/projects/new",
            "/activity", "/settings", "/sms", "/sms/messages", "/sms/logs", "/sms/logs?print=1",
            "/packs/pack_does_not_exist"]


def test_every_main_page_loads_without_a_policy_violation_or_script_error(watched, served, demo_db):
    known = ids(demo_db)
    page = watched.page
    page.goto("/login")
    assert watched.violations() == []
    log_in(page)
    pages = main_pages(known)
    page.goto("/projects")
    project_link = page.locator("main table a[href^='/projects/prj_']").first
    pages.append(project_link.get_attribute("href"))
    page.goto("/sms")
    pages += [a for a in page.locator("#sms-accounts a[role=menuitem]").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))") if a][:3]
    for path in pages:
        response = page.goto(path)
        assert response.status < 500, path
        page.wait_for_load_state("load")
        page.wait_for_timeout(50)  # violation events are queued as tasks: let them land
        assert watched.violations() == [], f"{path}: {watched.violations()}"
        assert response.headers.get("content-security-policy"), path
    assert watched.errors == [], watched.errors
    assert watched.dialogs == []


def test_the_pages_javascript_still_works_under_the_policy(watched, served, demo_db):
    page = watched.page
    log_in(page)
    # The history dialog (eye icon), filled by app.js, closed by its form button and by the backdrop.
    page.goto("/credits")
    page.locator("table#packs tbody tr", has=page.get_by_role("link", name="Acme 40h content pack", exact=True)) \
        .get_by_role("link", name=re.compile("Credit history")).click()
    dialog = page.locator("dialog#history-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("table.history-table")).to_contain_text("Granted")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    # Print buttons.
    page.get_by_role("button", name="Print").first.click()
    assert page.evaluate("window.__printed") == 1
    # Filter forms leave empty fields out of the URL.
    filters = page.locator("#report-filters")
    filters.get_by_label("Credit type").select_option("hours")
    filters.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"credit_type=hours"))
    query = parse_qs(urlsplit(page.url).query)
    assert "q" not in query and "remaining_min" not in query  # the empty fields stayed out of the URL
    # Drop-down menus: Escape closes the open one.
    page.locator("#user-menu summary").click()
    expect(page.locator("#user-menu")).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(page.locator("#user-menu")).not_to_have_attribute("open", "")
    # An inline editor of the report (status label) closes with Escape too, focus back on what opened it.
    editor = page.locator("table#packs details.inline-edit").first
    editor.locator("summary").click()
    expect(editor).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(editor).not_to_have_attribute("open", "")
    expect(editor.locator("summary")).to_be_focused()
    assert watched.violations() == []
    assert watched.errors == [], watched.errors


def test_api_docs_render_from_this_server_under_the_policy(watched, served):
    page = watched.page
    outside = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(served.base) and not request.url.startswith(("data:", "blob:")) else None)
    page.goto("/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 20
    assert watched.violations() == []
    assert outside == [], outside
    assert watched.errors == [], watched.errors

    page.goto("/redoc")
    # ReDoc renders the whole spec in the page before the first operation shows: seconds on a busy machine.
    expect(page.locator("[data-section-id^='operation']").first).to_be_attached(timeout=30_000)
    # ReDoc's only outside request is its "API docs by Redocly" logo: the policy blocks it (img-src).
    assert all(v["directive"].startswith("img-src") for v in watched.violations()), watched.violations()
    assert {re.sub(r"^(https?://[^/]+).*", r"\1", u) for u in outside} <= {"https://cdn.redoc.ly"}
