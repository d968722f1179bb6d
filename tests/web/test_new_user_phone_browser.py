"""Issue 17's "Done when" on a phone (390 px) in Chromium against the demo: grant a pack in hours, download the
import template, import packs in hours by holder name after a preview, and find everything expiring this month
from the home page; no page wider than the screen at any step."""

from __future__ import annotations

import re

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    MASTER,
    PASSWORD,
    browser,
    expect,
    server,
    shot,
)

WIDTH = 390


def _fits(page, what: str) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= WIDTH, f"{what}: {wide} px wide on a {WIDTH} px screen"


def test_grant_import_and_find_what_expires_on_a_phone(browser, server, tmp_path):
    context = browser.new_context(base_url=server, viewport={"width": WIDTH, "height": 844}, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(MASTER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    _fits(page, "home")

    # Grant 12.5 hours.
    page.goto("/packs/new")
    form = page.locator("#grant-form")
    form.get_by_label("Holder").select_option(label="Initech Austin (Initech)")
    form.get_by_label("Name").fill("Phone hours")
    form.get_by_label("Credit type").select_option("hours")
    form.get_by_label("Quantity").fill("12.5")
    _fits(page, "grant form")
    form.get_by_role("button", name="Grant the pack").click()
    expect(page.locator(".flash.success")).to_contain_text("12.50 hours")
    _fits(page, "pack page")

    # Import: the template, then a file in hours by holder name, previewed, then imported.
    page.goto("/packs/import")
    with page.expect_download() as info:
        page.locator("#import-template").click()
    template = info.value.path().read_text()
    assert template.splitlines()[0].startswith("holder,credit_type,quantity")
    path = tmp_path / "phone.csv"
    path.write_text("holder,credit_type,quantity,name,expiry_months\n"
                    "Initech Austin,hours,7.5,Phone import A,6\n"
                    "Initech Austin,hours,2.25,Phone import B,\n")
    page.get_by_label(re.compile("CSV file")).set_input_files(str(path))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#import-preview")).to_contain_text("grant 2 packs")
    _fits(page, "import preview")
    shot(page, "phone-import-preview")
    page.get_by_role("button", name="Import 2 packs").click()
    expect(page.locator("#import-report")).to_contain_text("2 packs granted")
    _fits(page, "import report")
    page.goto("/credits?q=Phone+import")
    expect(page.locator("table#packs")).to_contain_text("7.50")
    expect(page.locator("table#packs")).to_contain_text("2.25")

    # From home, everything expiring this month.
    page.goto("/home")
    page.locator("#expiring-link").click()
    expect(page.get_by_role("heading", name="Active credit packs")).to_be_visible()
    expect(page.locator("#result-count")).to_contain_text("pack")
    _fits(page, "report from home")
    shot(page, "phone-expiring-this-month")
    context.close()
