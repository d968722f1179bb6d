"""The home page in a real browser against the demo, at 1366 px and 390 px: what needs attention, the link to
everything expiring this month, and no page wider than the screen."""

from __future__ import annotations

import pytest

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    PASSWORD,
    MASTER,
    browser,
    expect,
    server,
    shot,
)


@pytest.mark.parametrize("width", [1366, 390])
def test_home_shows_what_needs_attention(browser, server, width):
    context = browser.new_context(base_url=server, viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(MASTER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    expect(page.locator("#home-expiring")).to_be_visible()
    expect(page.locator("#home-overdue")).to_contain_text("still due")  # the demo has an overdue invoice
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"the page is {wide} px wide on a {width} px screen"
    shot(page, f"home-{width}")
    page.locator("#expiring-link").click()
    expect(page.get_by_role("heading", name="Active credit packs")).to_be_visible()
    context.close()
