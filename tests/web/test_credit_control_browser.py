"""Credit control in a real browser (Chromium, Playwright) against `creditdesk serve --demo`: the credit limit
status on the accounts list, Change credit terms, then suspend and reactivate, through the account's Actions menu."""

from __future__ import annotations

from creditdesk.currencies import format_money
from tests.web.test_browser import (  # noqa: F401  (fixtures)
    browser,
    expect,
    log_in,
    page,
    server,
    shot,
)


def open_action(page, name: str) -> None:
    page.locator("#account-actions summary").click()
    page.get_by_role("menuitem", name=name).click()


def test_change_credit_terms_then_suspend_and_reactivate(page):
    log_in(page)
    page.locator("#finance-menu summary").click()
    page.get_by_role("menuitem", name="Accounts").click()
    table = page.locator("table#accounts")
    expect(table.locator("tr", has_text="ACC-000001")).to_contain_text("Exceeded")  # the demo's rating C
    page.get_by_label("Credit limit").select_option("exceeded")
    page.get_by_role("button", name="Apply").click()
    expect(table).not_to_contain_text("ACC-000002")
    page.goto("/accounts?credit_limit_status=not_exceeded")
    table.get_by_role("link", name="ACC-000002").click()
    expect(page.locator("#credit-limit-status")).to_have_text("Not exceeded")
    expect(page.locator("#credit-rating")).to_contain_text("A · Excellent")

    open_action(page, "Change credit terms")
    page.get_by_label("Credit period (days)").fill("90")
    page.get_by_role("button", name="Change credit terms").click()
    expect(page.locator("#err-credit_period_days")).to_contain_text("between 14 and 60")
    page.get_by_label("Credit period (days)").fill("45")
    page.get_by_label("Own credit limit (EUR)").fill("400.00")
    shot(page, "credit-01-terms")
    page.get_by_role("button", name="Change credit terms").click()
    expect(page.locator(".flash.success")).to_contain_text("Changed the credit terms of ACC-000002")
    expect(page.locator("#credit-period")).to_contain_text("45 days")
    expect(page.locator("#credit-limit")).to_contain_text(format_money(40_000, "EUR"))
    expect(page.locator("#credit-limit-status")).to_have_text("Exceeded")

    open_action(page, "Suspend")
    page.get_by_label("Reason").select_option(label="Dispute")
    page.get_by_label("Note").fill("Invoice 42 disputed")
    page.get_by_role("button", name="Suspend account").click()
    expect(page.locator(".flash.success")).to_contain_text("Suspended ACC-000002 (Dispute)")
    expect(page.locator("#account-status")).to_contain_text("suspended")
    expect(page.locator("#account-status")).to_contain_text("Dispute")
    shot(page, "credit-02-suspended")
    open_action(page, "Reactivate")
    page.get_by_role("button", name="Reactivate account").click()
    expect(page.locator(".flash.success")).to_contain_text("Reactivated ACC-000002")
    expect(page.locator("#account-status")).to_have_text("active")


def test_finance_settings_pages_show_the_demo_ratings_and_rule(page):
    log_in(page)
    page.locator("#finance-menu summary").click()
    page.get_by_role("menuitem", name="Credit ratings").click()
    expect(page.get_by_role("heading", name="Credit ratings")).to_be_visible()
    expect(page.locator("table#credit-ratings tr[data-rating='C']")).to_be_visible()
    page.locator("#finance-menu summary").click()
    page.get_by_role("menuitem", name="Override rules").click()
    expect(page.locator("table#override-rules")).to_contain_text("Corporate invoices may exceed a Watch limit")
    shot(page, "credit-03-rules")


def test_the_account_actions_menu_fits_a_phone_screen(page):
    """The walker's finding: at 390 px the account's Actions menu ran off the left edge of the screen."""
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page)
    page.goto("/accounts")
    page.locator("table#accounts").get_by_role("link", name="ACC-000002").click()
    page.locator("#account-actions summary").click()
    menu = page.locator("#account-actions > ul")
    expect(menu).to_be_visible()
    box = menu.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    for item in page.locator("#account-actions > ul a").all():
        item_box = item.bounding_box()
        assert item_box["x"] >= 0 and item_box["x"] + item_box["width"] <= 390, (item.inner_text(), item_box)
    shot(page, "credit-03-actions-390")
