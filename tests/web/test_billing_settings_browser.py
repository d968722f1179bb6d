"""Settings > Billing in Chromium against the demo, at 1366 px and 390 px: reached from Settings, the settings
shown (accounting periods read-only once set, with why), a conversion rate with two wrong fields gets both
messages next to their fields (focusable, described by them), then is added; no page wider than the screen.
Screenshots also go to /tmp/shots/ for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    MASTER,
    PASSWORD,
    browser,
    expect,
    server,
    shot,
)

TMP_SHOTS = Path("/tmp/shots")


def _no_overflow(page, width: int, what: str) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert wide <= inner, f"{what} is {wide} px wide on a {inner} px screen ({width})"


@pytest.mark.parametrize("width", [1366, 390])
def test_billing_settings_page(browser, server, width):
    context = browser.new_context(base_url=server, viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(MASTER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    page.goto("/settings")
    page.locator("#billing-settings-link").click()
    expect(page.get_by_role("heading", name="Billing settings", exact=True)).to_be_visible()
    expect(page.get_by_label("Default currency")).to_have_value("AUD")
    _no_overflow(page, width, "the billing settings page")
    # Two wrong fields of the rate form at once: both messages, each next to its field.
    valid_from = "2031-01-01" if width == 1366 else "2031-02-01"
    form = page.locator("#rate-form")
    form.get_by_label("From (currency)").fill("EUR")
    form.get_by_label("To (currency)").fill("EUR")
    form.get_by_label("Rate").fill("1.6x")
    form.get_by_label("Valid from").fill(valid_from)
    form.get_by_role("button", name="Add rate").click()
    form = page.locator("#rate-form")
    to = form.get_by_label("To (currency)")
    expect(to).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-to_currency")).to_have_text("Choose two different currencies.")
    expect(form.get_by_label("Rate")).to_have_attribute("aria-describedby", "err-rate")
    expect(page.locator("#err-rate")).to_contain_text("number")
    expect(form.get_by_label("Rate")).to_have_value("1.6x")
    expect(form.get_by_label("Valid from")).to_have_value(valid_from)
    expect(form.get_by_label("From (currency)")).not_to_have_attribute("aria-invalid", "true")
    # The message sits by its field: directly under it, not in a box at the top of the page.
    field_box, message_box = form.get_by_label("Rate").bounding_box(), page.locator("#err-rate").bounding_box()
    assert 0 <= message_box["y"] - (field_box["y"] + field_box["height"]) < 40
    _no_overflow(page, width, "the page with its messages")
    page.locator("#rate-form").scroll_into_view_if_needed()
    TMP_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(TMP_SHOTS / f"billing-settings-errors-{width}.png"), full_page=True)
    shot(page, f"billing-settings-errors-{width}")
    to.fill("AUD")
    form.get_by_label("Rate").fill("1.6")
    form.get_by_role("button", name="Add rate").click()
    expect(page.locator(".flash").first).to_contain_text("Added the rate 1 EUR = 1.6 AUD")
    expect(page.locator("#rate-list")).to_contain_text(valid_from)
    _no_overflow(page, width, "the page after adding a rate")
    page.screenshot(path=str(TMP_SHOTS / f"billing-settings-{width}.png"), full_page=True)
    context.close()
