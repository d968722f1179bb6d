"""Customer accounts in a real browser (Chromium, Playwright) against `creditdesk serve --demo`: the
Finance menu, adding an address on a customer's page, opening an account on it, seeing its balance."""

from __future__ import annotations

import re

from creditdesk.currencies import format_money
from tests.web.test_browser import (  # noqa: F401  (fixtures)
    browser,
    expect,
    log_in,
    nav,
    page,
    server,
    shot,
)


def test_finance_menu_lists_the_demo_accounts_with_balances(page):
    log_in(page)
    page.locator("#finance-menu summary").click()
    page.get_by_role("menuitem", name="Accounts").click()
    expect(page.get_by_role("heading", name="Accounts")).to_be_visible()
    table = page.locator("table#accounts")
    # The opening amounts (1,250.00 and 480.00) plus the demo invoices less their credit note and payments.
    expect(table.locator("tr", has_text="ACC-000001")).to_contain_text(format_money(260_575, "AUD"))
    expect(table.locator("tr", has_text="ACC-000002")).to_contain_text(format_money(136_715, "EUR"))
    page.get_by_label("Currency").fill("EUR")
    page.get_by_role("button", name="Apply").click()
    expect(table).not_to_contain_text("ACC-000001")
    table.get_by_role("link", name="ACC-000002").click()
    expect(page.locator("#account-balance")).to_have_text(format_money(136_715, "EUR"))
    statement = page.locator("table#statement")
    expect(statement).to_contain_text("Opening balance")
    # Documents by their numbers, linked; no bare ids.
    expect(statement.get_by_role("link", name=re.compile(r"^Invoice INV-\d+$")).first).to_be_visible()
    expect(statement).not_to_contain_text("inv_")
    expect(statement).not_to_contain_text("pay_")
    shot(page, "finance-01-account")


def test_add_an_address_and_open_an_account_on_it(page):
    log_in(page)
    nav(page, "Clients").click()
    page.get_by_role("link", name="Initech", exact=True).click()
    expect(page.locator("table#customer-addresses")).to_contain_text("No address yet.")
    page.get_by_role("link", name="Add address").click()
    page.get_by_label("Address line 1").fill("4120 Freidrich Lane")
    page.get_by_label("City").fill("Austin")
    page.get_by_label("State / region").fill("TX")
    page.get_by_label("Postcode").fill("78744")
    page.get_by_label("Country (ISO code)").fill("US")
    page.get_by_label("Primary address of this type").check()
    page.get_by_role("button", name="Add address").click()
    expect(page.locator(".flash.success")).to_contain_text("4120 Freidrich Lane")
    expect(page.locator("table#customer-addresses")).to_contain_text("4120 Freidrich Lane, Austin, TX, 78744, US")
    page.get_by_role("link", name="New account").click()
    page.get_by_label("Name").fill("Initech operations")
    page.get_by_label("Billing address").select_option(label="billing: 4120 Freidrich Lane, Austin, TX, 78744, US")
    page.get_by_label("Credit period (days)").fill("45")
    shot(page, "finance-02-new-account")
    page.get_by_role("button", name="Open account").click()
    expect(page.locator(".flash.success")).to_contain_text(re.compile(r"Opened account ACC-\d{6}"))
    expect(page.locator("#account-balance")).to_have_text(format_money(0, "AUD"))
    expect(page.locator("#credit-period")).to_contain_text("45 days")
    expect(page.get_by_text("4120 Freidrich Lane, Austin, TX, 78744, US")).to_be_visible()
    page.get_by_role("link", name="Initech", exact=True).click()
    expect(page.locator("table#customer-accounts")).to_contain_text("Initech operations")
    shot(page, "finance-03-customer")
