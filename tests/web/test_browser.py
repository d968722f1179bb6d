"""The seed 000 tasks end to end in a real browser: Debian's Chromium driven by Playwright, against a real
`creditdesk serve --demo` on a free port and a throwaway SQLite database.

Screenshots of the main pages go to artifacts/screenshots/ (not committed) for a person to look at.
Without /usr/bin/chromium (or without the playwright package) these tests skip and say why.
"""

from __future__ import annotations

import contextlib

import csv
import io
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run installs "
                "it when missing)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package "
                                                              "(pip install -e '.[dev]')")
expect = sync_api.expect

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
MASTER, MANAGER, MEMBER, PASSWORD = ("master@demo.example.com", "manager@demo.example.com",
                                     "alice@demo.example.com", "demo-password")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_demo(folder, *, env: dict | None = None):
    """`creditdesk serve --demo` in `folder`: the real command, its real jobs loop (every 2 s unless `env`
    says otherwise), the demo data; yields its base URL once /healthz answers."""
    port = _free_port()
    full_env = {**os.environ, "CREDITDESK_SECRET_KEY": secrets.token_hex(32), "CREDITDESK_JOBS_INTERVAL_SECONDS": "2",
                **(env or {})}
    full_env.pop("CREDITDESK_DATABASE_URL", None)
    log = open(folder / "serve.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "creditdesk.cli", "serve", "--demo", "--host", "127.0.0.1", "--port", str(port),
         "--database-url", f"sqlite:///{folder / 'browser.db'}", "--no-access-log"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env, cwd=folder)
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
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser")) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server, viewport={"width": 1440, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def log_in(page, email: str = MASTER, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    # Logging in lands on the home page (what needs attention); the tasks here start from the credits report.
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    page.goto("/credits")
    expect(page.get_by_role("heading", name="Active credit packs")).to_be_visible()


def nav(page, name: str):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def report_row(page, pack_name: str):
    return page.locator("table#packs tbody tr", has=page.get_by_role("link", name=pack_name, exact=True))


# --- the tasks ---------------------------------------------------------------------------------------

def test_log_in_and_out(page):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    shot(page, "01-login")
    page.get_by_label("Email").fill(MASTER)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    log_in(page)
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Activity log")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto("/credits")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fcredits"))


def test_filter_and_sort_the_report(page):
    log_in(page)
    expect(report_row(page, "Acme 40h content pack")).to_be_visible()
    expect(report_row(page, "SMS pool")).to_be_visible()
    shot(page, "02-credits-report")
    filters = page.locator("#report-filters")
    filters.get_by_label("Credit type").select_option("hours")
    filters.get_by_label("Remaining from").fill("10")
    filters.get_by_label("Status label").select_option("Renewal due")
    filters.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"status_label=Renewal"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["credit_type"] == ["hours"] and query["remaining_min"] == ["10"]
    assert "q" not in query and "office_id" not in query  # empty filters stay out of the URL
    rows = page.locator("table#packs tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Acme 40h content pack")
    expect(rows.first).to_contain_text("27.50 / 40.00")  # 1250 of 4000 hundredths consumed on the project
    expect(rows.first.get_by_role("link", name="Acme website refresh")).to_be_visible()
    shot(page, "03-credits-filtered")
    # The filters are in the URL: a bookmark brings the same view back.
    page.goto(page.url)
    expect(page.locator("table#packs tbody tr")).to_have_count(1)
    # Search, then sort by remaining, largest first.
    page.goto("/credits?credit_type=hours")
    page.locator("#report-filters").get_by_label("Search").fill("globex")
    page.locator("#report-filters").get_by_role("button", name="Apply").click()
    expect(page.locator("table#packs tbody tr")).to_have_count(1)
    page.goto("/credits?credit_type=hours&sort=remaining&order=desc")
    first = page.locator("table#packs tbody tr").first
    expect(first).to_contain_text("Globex annual retainer")  # 100.00 hours: the largest
    page.locator("table#packs thead").get_by_role("link", name=re.compile("Remaining")).click()
    expect(page).to_have_url(re.compile(r"sort=remaining.*order=asc"))
    # Expiry range: only packs expiring in the next 30 days.
    today = time.strftime("%Y-%m-%d", time.gmtime())
    soon = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
    page.goto(f"/credits?expires_from={today}&expires_to={soon}&credit_type=hours")
    names = page.locator("table#packs tbody tr td:nth-child(2) > a").all_inner_texts()
    assert "Leeds starter pack" in names and "Peter's old pack" in names
    assert "Acme 40h content pack" not in names


def test_credit_history_dialog(page):
    log_in(page)
    report_row(page, "Acme 40h content pack").get_by_role("link", name=re.compile("Credit history")).click()
    dialog = page.locator("dialog#history-dialog")
    expect(dialog).to_be_visible()
    history = dialog.locator("table.history-table")
    expect(history).to_contain_text("Granted")
    expect(history).to_contain_text("+40.00")
    expect(history).to_contain_text("Consumed")
    expect(history).to_contain_text("-12.50")
    expect(history).to_contain_text("27.50")  # running balance
    expect(history).to_contain_text("Morgan Master")  # the actor
    expect(history.get_by_role("link", name="Project: Acme website refresh")).to_be_visible()
    shot(page, "04-credit-history-dialog")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_edit_status_label_and_notes(page):
    log_in(page)
    row = report_row(page, "Leeds starter pack")
    row.locator("summary[title='Edit the status label']").click()
    row.get_by_label("Status label of Leeds starter pack").fill("Call before expiry")
    row.get_by_role("button", name="Save").first.click()
    expect(page.locator(".flash.success")).to_contain_text("Saved the status label of Leeds starter pack")
    expect(report_row(page, "Leeds starter pack")).to_contain_text("Call before expiry")
    row = report_row(page, "Leeds starter pack")
    row.locator("summary[title='Edit the special notes']").click()
    row.get_by_label("Special notes of Leeds starter pack").fill("Wendy asked for an extension")
    row.locator("form:has(textarea) button").click()
    expect(report_row(page, "Leeds starter pack")).to_contain_text("Wendy asked for an extension")
    # Audited: the pack's history and the activity log show the change.
    report_row(page, "Leeds starter pack").get_by_role("link", name="Leeds starter pack", exact=True).click()
    expect(page.locator("#history")).to_contain_text("status label: Expiring soon → Call before expiry")
    page.goto("/activity?action=pack.update")
    expect(page.locator("table#events")).to_contain_text("Call before expiry")


def test_change_holder_with_confirmation(page, browser, server):
    log_in(page, MANAGER)
    page.goto("/credits?q=Hank")
    original_url = report_row(page, "Hank bonus hours").get_by_role("link", name="Change holder") \
        .get_attribute("href").removesuffix("/change-holder")
    report_row(page, "Hank bonus hours").get_by_role("link", name="Change holder").click()
    page.get_by_label("New holder").select_option(label="Globex HQ (Globex Corporation)")
    page.get_by_label("Reason").fill("Bonus belongs to the office")
    page.get_by_role("button", name="Continue").click()
    confirm = page.locator("#confirm-change")
    expect(confirm).to_contain_text("moves from Hank Scorpio (user) to Globex HQ (office)")
    expect(confirm).to_contain_text("5.00 hours go to a new pack of Globex HQ")
    shot(page, "05-change-holder-confirm")
    page.get_by_role("button", name="Yes, move the credits").click()
    expect(page.locator(".flash.success")).to_contain_text("Moved 5.00 hours of Hank bonus hours from Hank Scorpio "
                                                           "to Globex HQ")
    # The credits are in a new pack of the office, whose history starts with the move in ...
    new_pack_url = page.url.split("?")[0]
    expect(page.locator("#history")).to_contain_text("Transferred in")
    expect(page.locator("#history")).to_contain_text("+5.00")
    # ... and the original keeps its history with Hank, ending with the move out and its reason.
    page.goto(original_url)
    history = page.locator("#history")
    expect(history).to_contain_text("Holder changed")
    expect(history).to_contain_text("From Hank Scorpio to Globex HQ")
    expect(history).to_contain_text("Reason: Bonus belongs to the office")
    assert page.url.split("?")[0] != new_pack_url
    page.goto(new_pack_url)
    # A member sees no "Change holder" anywhere, and the form itself answers 403.
    member = browser.new_context(base_url=server)
    member_page = member.new_page()
    log_in(member_page, MEMBER)
    expect(member_page.get_by_role("link", name="Change holder")).to_have_count(0)
    pack_url = page.url.split("?")[0]
    response = member_page.goto(pack_url + "/change-holder")
    assert response.status == 403
    expect(member_page.get_by_role("heading", name="Not permitted")).to_be_visible()
    member.close()


def test_office_credit_information_tab(page):
    log_in(page)
    nav(page, "Clients").click()
    page.get_by_role("link", name="Acme Widgets").click()
    page.get_by_role("link", name="Credit information of Acme London").click()
    expect(page.get_by_role("link", name="Credit information")).to_have_attribute("aria-current", "page")
    table = page.locator("table#office-packs")
    expired = table.locator("tr", has_text="Acme 2025 hours")
    expect(expired).to_contain_text("expired")
    expect(expired).to_contain_text("0.00 / 20.00")
    expect(table).to_contain_text("Wendy's translation hours")  # a user of the office
    expect(page.locator("tr.total-line[data-credit-type='hours']")).to_contain_text("1 expired")
    shot(page, "06-office-credit-information")
    page.goto(page.url.replace("?tab=credits", ""))
    nav(page, "Clients").click()
    page.get_by_role("link", name="Acme Widgets").click()
    page.get_by_role("link", name="Credit information of Acme Leeds").click()
    expect(page.locator("table#office-packs tr", has_text="Liam's pilot hours")).to_contain_text("depleted")


def test_project_why_not_and_consume(page):
    log_in(page)
    nav(page, "Projects").click()
    page.get_by_role("link", name="Acme website refresh").click()
    eligible = page.locator("#eligible")
    expect(eligible).to_contain_text("Acme 40h content pack")
    why_not = page.locator("#why-not")
    expect(why_not.locator("tr", has_text="Acme 2025 hours")).to_contain_text("Expired on")
    expect(why_not.locator("tr", has_text="Wendy's translation hours")).to_contain_text("Only pays for translation")
    expect(why_not.locator("tr", has_text="Leeds starter pack")).to_contain_text(
        "neither the project's office nor one of its contacts")
    shot(page, "07-project-why-not")
    before = page.locator("#eligible tr", has_text="Acme 40h content pack").locator("td.num").nth(1).inner_text()
    page.get_by_label("Amount (hours)").fill("1.5")
    page.get_by_role("button", name="Consume").click()
    expect(page.locator(".flash.success")).to_contain_text("Consumed 1.50 hours")
    expect(page.locator("#consumptions")).to_contain_text("1.50 hours")
    after = page.locator("#eligible tr", has_text="Acme 40h content pack").locator("td.num").nth(1).inner_text()
    assert float(before) - float(after) == pytest.approx(1.5)
    # Too much: nothing is consumed and the form says why.
    page.get_by_label("Amount (hours)").fill("5000")
    page.get_by_role("button", name="Consume").click()
    expect(page.locator("#consume .flash.error")).to_contain_text("Nothing was consumed")
    expect(page.locator("#consume #err-amount")).to_contain_text("Not enough hours")
    expect(page.get_by_label("Amount (hours)")).to_have_attribute("aria-invalid", "true")


def test_grant_a_pack(page):
    log_in(page)
    page.get_by_role("link", name="Grant a pack").click()
    form = page.locator("#grant-form")
    form.get_by_label("Holder").select_option(label="Initech Austin (Initech)")
    form.get_by_label("Name").fill("Initech emergency hours")
    form.get_by_label("Credit type").select_option("hours")
    form.get_by_label("Quantity").fill("12.5")
    form.get_by_label("Price paid").fill("750.00")
    form.get_by_label("Currency").fill("GBP")
    form.get_by_label("Source").select_option("purchase")
    form.get_by_label("External reference").fill("PO-7731")
    form.get_by_label("Expires on").fill("2031-06-30")
    form.get_by_label("Relationship manager").select_option(label="Maya Manager")
    form.get_by_label("Priority").fill("20")
    form.get_by_label("Status label").fill("New")
    form.get_by_label("Special notes").fill("Granted from the back office test")
    shot(page, "08-grant-form")
    form.get_by_role("button", name="Grant the pack").click()
    expect(page.locator(".flash.success")).to_contain_text("Granted Initech emergency hours: 12.50 hours")
    expect(page.get_by_role("heading", name=re.compile("Initech emergency hours"))).to_be_visible()
    facts = page.locator("dl.facts").first
    expect(facts).to_contain_text("750.00 GBP")
    expect(facts).to_contain_text("2031-06-30")
    expect(facts).to_contain_text("Maya Manager")
    expect(page.locator("p.big")).to_contain_text("12.50 of 12.50")
    # A wrong quantity is a form message, not a crash.
    page.goto("/packs/new")
    form = page.locator("#grant-form")
    form.get_by_label("Holder").select_option(label="Initech Austin (Initech)")
    form.get_by_label("Name").fill("Too precise")
    form.get_by_label("Credit type").select_option("hours")
    form.get_by_label("Quantity").fill("1.555")
    form.get_by_role("button", name="Grant the pack").click()
    expect(page.locator("#err-quantity")).to_contain_text("more decimal places than this credit type allows (2)")
    expect(page.get_by_label("Quantity")).to_have_attribute("aria-invalid", "true")


def test_import_packs_from_csv(page, tmp_path):
    log_in(page)
    rows = [["holder_kind", "holder_id", "credit_type", "quantity", "name", "expires_at", "status_label"],
            ["workspace", "", "sms", "1000", "Imported SMS pool A", "2031-01-31T23:59:59Z", "Imported"],
            ["workspace", "", "sms", "2000", "Imported SMS pool B", "", "Imported"],
            ["workspace", "", "minutes", "10", "Unknown type", "", ""],
            ["workspace", "", "sms", "-5", "Negative", "", ""]]
    path = tmp_path / "packs.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    page.goto("/packs/import")
    page.get_by_label(re.compile("CSV file")).set_input_files(str(path))
    page.get_by_role("button", name="Preview").click()
    # The preview: what would be created, refused; nothing written yet.
    preview = page.locator("#import-preview")
    expect(preview).to_contain_text("Nothing has been written yet")
    expect(preview).to_contain_text("grant 2 packs")
    expect(preview).to_contain_text("refuse 2 lines")
    expect(page.locator("table.to-create tbody tr")).to_have_count(2)
    expect(page.locator("table.to-create")).to_contain_text("Imported SMS pool A")
    shot(page, "09-import-preview")
    other = page.context.new_page()
    other.goto("/credits?status_label=Imported")
    expect(other.locator("main")).not_to_contain_text("Imported SMS pool")
    other.close()
    page.get_by_role("button", name="Import 2 packs").click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("2 packs granted")
    expect(report).to_contain_text("2 lines refused")
    errors = report.locator("table.errors tbody tr")
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("4")
    expect(errors.nth(0)).to_contain_text("minutes")
    expect(errors.nth(1)).to_contain_text("5")
    shot(page, "09-import-report")
    # The same file again grants nothing twice: its preview says so and offers nothing to import.
    page.get_by_label(re.compile("CSV file")).set_input_files(str(path))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#import-preview")).to_contain_text("grant 0 packs, skip 2 lines")
    expect(page.locator("#confirm-import")).to_have_count(0)
    expect(page.locator("table.skipped")).to_contain_text("already imported before")
    page.goto("/credits?status_label=Imported")
    expect(page.locator("table#packs tbody tr")).to_have_count(2)


def test_export_the_filtered_report_as_csv(page):
    log_in(page)
    page.goto("/credits?credit_type=hours&sort=name")
    with page.expect_download() as download_info:
        page.locator("#export-csv").click()
    download = download_info.value
    assert download.suggested_filename == "active-credit-packs.csv"
    content = Path(download.path()).read_text(encoding="utf-8")
    table = list(csv.DictReader(io.StringIO(content)))
    assert table, content
    assert {r["credit_type"] for r in table} == {"hours"}
    assert [r["name"] for r in table] == sorted(r["name"] for r in table)
    acme = next(r for r in table if r["name"] == "Acme 40h content pack")
    assert acme["original"] == "40.00" and acme["holder"] == "Acme London"
    assert "Acme website refresh" in acme["projects"]
    assert not any(r["name"] == "Acme 2025 hours" for r in table)  # expired: not in the active report


def test_activity_log_with_filters_and_csv(page):
    log_in(page)
    nav(page, "Activity log").click()
    expect(page.locator("table#events tbody tr").first).to_be_visible()
    page.get_by_label("Object type").select_option("pack")
    page.get_by_label("Action").fill("pack.create")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"action=pack.create"))
    assert parse_qs(urlsplit(page.url).query) == {"action": ["pack.create"], "object_type": ["pack"]}
    actions = page.locator("table#events tbody tr td:nth-child(3)").all_inner_texts()
    assert actions and set(actions) == {"Pack created"}  # the action in words (its code in the title)
    shot(page, "10-activity-log")
    with page.expect_download() as download_info:
        page.locator("#activity-csv").click()
    content = Path(download_info.value.path()).read_text(encoding="utf-8")
    table = list(csv.DictReader(io.StringIO(content)))
    assert table and {r["action"] for r in table} == {"pack.create"}
    # Members do not see the log.
    page.get_by_role("button", name="Log out").click()
    log_in(page, MEMBER)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity log")).to_have_count(0)
    assert page.goto("/activity").status == 403


def test_print_stylesheet_hides_the_chrome(page):
    log_in(page)
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.locator("#report-filters")).to_be_hidden()
    expect(page.locator("table#packs")).to_be_visible()
    page.pdf(path=str(SHOTS / "11-credits-report-print.pdf"))  # what a printout of the report looks like
