"""What a tester walking seed 003 in the demo found, walked again in Chromium (a demo of its own):

the master switches to shared office credits, buys for North Branch's pool, moves pool to pool (the flash names
both), switches back to individual credits: North Branch is a leftover pool, listed, counted on the home page,
and moved to Alice from its Actions menu; a purchase paid with the test payment waits in the list of purchases
waiting for payment and is settled there; Dan's credits are said frozen on the transfer form."""

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


def row(page, name: str):
    return page.locator("table#sms-accounts tbody tr", has_text=name).first


def act(page, name: str, item: str):
    target = row(page, name)
    target.locator("summary", has_text="Actions").click()
    target.get_by_role("menuitem", name=item).click()


def switch(page, mode: str):
    page.goto("/settings")
    form = page.locator("#sms-settings-form")
    form.get_by_label("SMS credit mode").select_option(mode)
    form.get_by_role("button", name="Save SMS settings").click()
    page.locator("#confirm-mode-change").click()
    expect(page.locator(".flash.success")).to_contain_text("SMS credit mode")


def buy(page, account_label: str, quantity: str, *, method: str | None = None):
    page.goto("/sms/purchase")
    form = page.locator("#purchase-form")
    form.get_by_label("Account").select_option(label=account_label)
    form.get_by_label("Quantity (SMS credits)").fill(quantity)
    form.get_by_label("Address").fill("1 Demo Street")
    form.get_by_role("button", name="Proceed").click()
    if method:
        page.get_by_label(method).check()
    page.get_by_role("button", name=re.compile("^Pay ")).click()


def test_leftover_pool_pending_purchase_and_words(page):
    log_in(page, MASTER)
    switch(page, "shared")
    buy(page, "North Branch — office pool", "60")  # the purchase form says office pool, not user credits
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    page.goto("/sms")
    act(page, "North Branch", "Transfer SMS Credits from This Account")
    form = page.locator("#transfer-form")
    form.get_by_label("To", exact=True).select_option(label="Head Office (office pool)")
    form.get_by_label("Quantity (SMS credits)").fill("10")
    form.get_by_label("I agree to the conditions").check()
    form.get_by_role("button", name="Transfer").click()
    flash = page.locator(".flash.success")
    expect(flash).to_contain_text("from North Branch (office pool) to Head Office (office pool)")
    expect(flash).not_to_contain_text("off_")

    switch(page, "individual")
    page.goto("/sms")
    leftover = row(page, "North Branch")
    expect(leftover).to_contain_text("not spent in individual mode")
    page.goto("/home")
    expect(page.locator("#home-frozen")).to_contain_text("North Branch (office pool)")
    page.locator("#home-frozen").get_by_role("link", name="North Branch (office pool)").click()
    form = page.locator("#transfer-form")
    expect(form).to_contain_text("50 frozen")
    form.get_by_label("To", exact=True).select_option(label="Alice Account")
    form.get_by_label("Quantity (SMS credits)").fill("50")
    form.get_by_label("Memo (optional)").fill("North Branch pool closed")
    form.get_by_label("I agree to the conditions").check()
    form.get_by_role("button", name="Transfer").click()
    expect(page.locator(".flash.success")).to_contain_text("from North Branch (office pool) to Alice Account")
    expect(page.locator("table#sms-accounts")).not_to_contain_text("North Branch")
    shot(page, "sms-walk-01-leftover-moved")
    # Alice's log: the transfer once, with its memo, references in words.
    page.goto("/sms")
    act(page, "Alice Account", "View Last 30 Days Logs")
    logs = page.locator("table#sms-logs")
    expect(logs.locator("tr", has_text="North Branch pool closed")).to_have_count(1)
    expect(logs).not_to_contain_text("msg_")
    expect(logs).not_to_contain_text("smsp_")

    # The test payment waits for its outcome: listed on Manage SMS credits, settled there.
    buy(page, "Bob Builder — User credits", "15", method="Test payment (stays pending until settled)")
    expect(page.get_by_role("heading", name="Payment pending")).to_be_visible()
    page.goto("/sms")
    pending = page.locator("#pending-purchases")
    expect(pending).to_contain_text("Bob Builder")
    bob = int(row(page, "Bob Builder").locator("td.num").first.inner_text().replace(",", ""))
    shot(page, "sms-walk-02-pending")
    pending.get_by_role("button", name=re.compile("^Payment received for Bob Builder")).click()
    expect(page.locator(".flash.success")).to_contain_text("15 SMS credits applied to Bob Builder")
    assert int(row(page, "Bob Builder").locator("td.num").first.inner_text().replace(",", "")) == bob + 15
    expect(page.locator("#pending-purchases")).to_have_count(0)

    # Dan's credits are frozen: said so where they would be taken from.
    act(page, "System credits", "Transfer SMS Credits to This Account")
    option = page.locator("#transfer-other option", has_text="Dan Dispatch")
    expect(option).to_contain_text("frozen")
    expect(option).not_to_contain_text("available")
