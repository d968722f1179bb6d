"""No layout breaks (issue 17): long content (a 200-character pack name, a 300-character URL in its notes, a long
SMS message) on the credits report, the pack page, the SMS box and outbox, the home page and the activity log, at
1366 px and 390 px in Chromium: no page is wider than the screen (long words wrap, wide tables scroll in their own
box), with a screenshot of each."""

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

LONG_NAME = "Quarterly content plan " + "x" * 177  # 200 characters, one unbroken word at the end
LONG_URL = "https://example.com/" + "a" * 280  # a 300-character URL, no place to break
LONG_SMS = "Reminder:" + "Z" * 300  # one long word over two segments


def _context(browser, server, width):
    context = browser.new_context(base_url=server, viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    return context


def _log_in(page, email=MASTER):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()


def _fits(page, width: int, what: str) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    if wide > width:  # name the widest elements that stick out, to say what broke
        culprits = page.evaluate("""(w) => Array.from(document.querySelectorAll('body *'))
            .filter(e => e.getBoundingClientRect().right > w + 1)
            .filter(e => { for (let p = e.parentElement; p; p = p.parentElement) {
                const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'hidden' || o === 'scroll') return false; }
                return true; })
            .sort((a, b) => b.getBoundingClientRect().right - a.getBoundingClientRect().right)
            .map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().left) + '-' + Math.round(e.getBoundingClientRect().right) + ' ' + (e.textContent || '').slice(0, 40))
            .slice(0, 8)""", width)
        raise AssertionError(f"{what} is {wide} px wide on a {width} px screen: {culprits}")


@pytest.fixture(scope="module")
def long_content(browser, server):
    """Made once through the back office: a pack with a long name and a long URL in its notes, and a long SMS."""
    context = _context(browser, server, 1366)
    page = context.new_page()
    _log_in(page)
    page.goto("/packs/new")
    form = page.locator("#grant-form")
    form.get_by_label("Holder").select_option(label="Initech Austin (Initech)")
    form.get_by_label("Name").fill(LONG_NAME)
    form.get_by_label("Credit type").select_option("hours")
    form.get_by_label("Quantity").fill("3")
    form.get_by_label("Special notes").fill(f"See {LONG_URL}")
    form.get_by_role("button", name="Grant the pack").click()
    expect(page.locator("h1")).to_contain_text("Quarterly content plan")
    pack_url = page.url
    context.close()
    context = _context(browser, server, 1366)
    page = context.new_page()
    _log_in(page, "bob@demo.example.com")
    page.goto("/sms")
    page.get_by_role("link", name=re.compile("Send SMS")).first.click()
    sms = page.locator("#send-form")
    sms.get_by_label("To (phone number)").fill("+61400000999")
    sms.get_by_label("Message").fill(LONG_SMS)
    sms.get_by_role("button", name="Send SMS").click()
    expect(page.locator(".flash.success")).to_be_visible()
    context.close()
    return pack_url


@pytest.mark.parametrize("width", [1366, 390])
def test_long_content_never_makes_a_page_wider_than_the_screen(browser, server, long_content, width):
    context = _context(browser, server, width)
    page = context.new_page()
    _log_in(page)
    pages = [("/home", "home"), ("/credits", "credits report"), (long_content, "pack page"),
             ("/credits?q=Quarterly", "report with the long pack"), ("/activity", "activity log"),
             ("/sms", "SMS credits"), ("/sms/messages", "SMS outbox"), ("/clients", "clients")]
    for url, what in pages:
        page.goto(url)
        expect(page.locator("main")).to_be_visible()
        _fits(page, width, what)
        shot(page, f"layout-{what.replace(' ', '-')}-{width}")
    page.goto("/credits?q=Quarterly")
    expect(page.locator("table#packs")).to_contain_text("Quarterly content plan")
    page.goto("/sms/messages")
    expect(page.locator("main")).to_contain_text("Reminder:")
    # The header: "Log out" stays on screen, and the user's menu opens inside it.
    logout = page.get_by_role("button", name="Log out")
    expect(logout).to_be_visible()
    box = logout.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    page.locator("#user-menu summary").click()
    menu = page.locator("#user-menu > ul")
    expect(menu).to_be_visible()
    box = menu.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    context.close()
