"""The report at a glance in Chromium against the demo, at 1366 px and 390 px: a preset from the home page's
report, the count and totals, the pills, the position; no page wider than the screen."""

from __future__ import annotations

import re

import pytest

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    MASTER,
    PASSWORD,
    browser,
    expect,
    server,
    shot,
)


@pytest.mark.parametrize("width", [1366, 390])
def test_presets_count_and_position(browser, server, width):
    context = browser.new_context(base_url=server, viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(MASTER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    page.goto("/credits")
    everything = int(re.search(r"\d[\d,]*", page.locator("#result-count").inner_text()).group(0).replace(",", ""))
    expect(page.locator("#report-summary ul.type-totals li").first).to_contain_text("remaining of")
    expect(page.locator("#page-position")).to_contain_text(f"of {everything:,}")
    page.locator("#preset-expiring-30").click()
    expect(page.locator("#preset-expiring-30")).to_have_attribute("aria-current", "true")
    expiring = int(re.search(r"\d+", page.locator("#result-count").inner_text()).group(0))
    assert 0 < expiring < everything  # the demo has packs expiring this month, and others
    expect(page.locator("table#packs tbody tr")).to_have_count(expiring)
    expect(page.locator("table#packs .pill").first).to_contain_text(re.compile(r"in \d+ days|expires today|expires tomorrow"))
    assert "expires_to=" in page.url  # the view is in the URL: bookmark it, share it
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"the report is {wide} px wide on a {width} px screen"
    shot(page, f"report-glance-{width}")
    context.close()
