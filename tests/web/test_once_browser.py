"""F9 in a real browser: clicking a money form's submit button twice acts once (Chromium via Playwright,
against `creditdesk serve --demo`, as tests/web/test_browser.py)."""

from __future__ import annotations

import time

from tests.web.test_browser import browser, log_in, nav, page, server, sync_api  # noqa: F401  (fixtures)

expect = sync_api.expect


def consumptions_shown(tab) -> int:
    return tab.locator("#consumptions tbody tr", has_text="hours").count()


def wait_for(tab, condition, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        tab.wait_for_timeout(20)  # lets Playwright run the route handler meanwhile


def test_double_clicking_consume_on_a_slow_link_consumes_once(page):  # noqa: F811
    """The double click of a slow link: the second click lands while the first one's answer is still on
    its way, so both submissions of the same rendered form reach the server. (A double click on a fast
    link is often merged by Chromium into one submission, which would prove nothing.)"""
    log_in(page)
    nav(page, "Projects").click()
    page.get_by_role("link", name="Acme website refresh").click()
    project = page.url
    before = consumptions_shown(page)
    page.get_by_label("Amount (hours)").fill("0.25")
    button = page.locator("#consume-form").get_by_role("button", name="Consume")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    held = []  # the form submissions, whose answers the "slow link" has not delivered yet
    page.route("**/consume", lambda route: held.append(route))
    page.mouse.click(x, y)  # the mouse itself: a locator would wait for the pending navigation first
    wait_for(page, lambda: len(held) == 1, "the first submission")
    first = held[0].fetch(max_redirects=0)  # the server has it and answered; the browser is still waiting
    page.mouse.click(x, y)  # the same rendered form, clicked again
    wait_for(page, lambda: len(held) == 2, "the second submission")
    second = held[1].fetch(max_redirects=0)
    assert first.status == second.status == 303
    held[1].fulfill(response=second)
    try:
        held[0].fulfill(response=first)  # its navigation was replaced by the second's
    except sync_api.Error:
        pass
    page.unroute("**/consume")
    expect(page.locator(".flash.success")).to_contain_text("Consumed 0.25 hours")
    page.goto(project)
    assert consumptions_shown(page) == before + 1


def test_back_after_consuming_does_not_bring_the_typed_amount_back(page):  # noqa: F811
    """Back to the project after a consumption: the page has a new one-time key, so a form the browser filled
    in again would consume a second time on one more click. The money form comes back empty."""
    log_in(page)
    nav(page, "Projects").click()
    page.get_by_role("link", name="Acme website refresh").click()
    before = consumptions_shown(page)
    page.get_by_label("Amount (hours)").fill("0.5")
    page.locator("#consume-form").get_by_role("button", name="Consume").click()
    expect(page.locator(".flash.success")).to_contain_text("Consumed 0.50 hours")
    page.go_back()
    page.wait_for_load_state()
    amount = page.get_by_label("Amount (hours)")
    expect(amount).to_have_value("")
    page.locator("#consume-form").get_by_role("button", name="Consume").click()  # empty: the browser refuses
    page.goto(page.url)
    assert consumptions_shown(page) == before + 1
