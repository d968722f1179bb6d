"""Shared office SMS credits in Chromium against the demo (issue 17): the master switches the mode (asked first,
nothing moved), buys credits for Head Office's pool, and Bob (Head Office) sends a message paid by that pool."""

from __future__ import annotations

import re

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    MASTER,
    browser,
    expect,
    log_in,
    page,
    server,
    shot,
)


def pool_available(page, name: str) -> int:
    row = page.locator("table#sms-accounts tbody tr", has_text=name).first
    return int(row.locator("td.num").first.inner_text().replace(",", ""))


def test_shared_office_credits_pay_the_senders_message(page):
    log_in(page, MASTER)
    page.goto("/settings")
    form = page.locator("#sms-settings-form")
    form.get_by_label("SMS credit mode").select_option("shared")
    form.get_by_role("button", name="Save SMS settings").click()
    expect(page.locator("#mode-change-question")).to_contain_text("Nothing is moved")
    expect(page.locator("#mode-change-question")).to_contain_text("held by")  # the demo's users hold credits
    shot(page, "sms-shared-01-confirm")
    page.locator("#confirm-mode-change").click()
    expect(page.locator(".flash.success")).to_contain_text("shared office")

    page.goto("/sms")
    expect(page.locator("#shared-mode")).to_be_visible()
    row = page.locator("table#sms-accounts tbody tr", has_text="Head Office").first
    row.locator("summary", has_text="Actions").click()
    row.get_by_role("menuitem", name="Purchase SMS Credits").click()
    purchase = page.locator("#purchase-form")
    purchase.get_by_label("Quantity (SMS credits)").fill("25")
    purchase.get_by_label("Address").fill("1 Demo Street")
    purchase.get_by_role("button", name="Proceed").click()
    expect(page.locator("#payment-summary")).to_contain_text("Head Office")
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    page.goto("/sms")
    before = pool_available(page, "Head Office")
    assert before >= 25
    shot(page, "sms-shared-02-box")

    page.context.clear_cookies()
    log_in(page, "bob@demo.example.com")
    page.goto("/sms/messages")
    expect(page.locator("#shared-payers")).to_contain_text(f"Head Office (office pool) ({before} available), then")
    send = page.locator("#send-form")
    send.get_by_label("To (phone number)").fill("+61400000777")
    send.get_by_label("Message").fill("Paid by the office pool")
    send.get_by_role("button", name="Send SMS").click()
    expect(page.locator(".flash.success")).to_be_visible()
    page.goto("/sms")
    assert pool_available(page, "Head Office") == before - 1
    shot(page, "sms-shared-03-after-send")
