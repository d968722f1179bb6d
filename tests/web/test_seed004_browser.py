"""Seed 004's credit control as a new user of the demo would walk it, in a real browser (Chromium, Playwright,
`creditdesk serve --demo`): an exceeded account is blocked (a new subscription), an override rule lets one
invoice through and the activity log names the rule, a suspended account takes no new subscription, terminate is
refused while a draft invoice exists, and a write-off closes the debt."""

from __future__ import annotations

from datetime import date

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    browser,
    expect,
    log_in,
    page,
    server,
    shot,
)
from tests.web.test_credit_control_browser import open_action


def new_subscription(page, account_label: str) -> None:
    page.goto("/subscriptions")
    form = page.locator("#new-subscription")
    form.get_by_label("Account").select_option(label=account_label)
    form.get_by_label("Service").select_option(label="Monthly support")
    form.get_by_label("Activate on").fill(date.today().isoformat())
    form.get_by_role("button", name="Create").click()


def test_seed_004_credit_control_in_the_demo(page):
    log_in(page)
    # 1. Acme's AUD account is over its Watch limit: a new subscription (a fund-using event no rule covers) is
    # refused, and nothing is made.
    new_subscription(page, "ACC-000001 · Acme Widgets (AUD) (AUD)")
    # The refusal is said on the form itself, next to what it is about (issue 17).
    expect(page.locator("#new-subscription")).to_contain_text("over the credit limit")
    shot(page, "seed004-01-blocked")
    # 2. Its draft invoice posts all the same: the override rule for corporate invoices lets it through, and the
    # activity log says which rule.
    page.goto("/accounts")
    page.locator("table#accounts").get_by_role("link", name="ACC-000001").click()
    account_url = page.url
    page.locator("table#account-invoices").get_by_role("link", name="Draft").first.click()
    page.locator("#post-invoice").click()
    expect(page.locator(".flash.success")).to_contain_text("Posted as INV-")
    page.goto("/activity?action=account.credit_limit_override")
    expect(page.locator("main")).to_contain_text("Corporate invoices may exceed a Watch limit")
    shot(page, "seed004-02-override")
    # 3. Terminate is refused while a draft invoice exists (the demo's credit-package draft).
    page.goto(account_url)
    expect(page.locator("table#account-invoices")).to_contain_text("Draft")
    open_action(page, "Terminate")
    page.get_by_role("button", name="Terminate account").click()
    expect(page.locator("main")).to_contain_text("not posted yet")
    expect(page.locator("main")).to_contain_text("draft")
    shot(page, "seed004-03-terminate-refused")
    # 4. A write-off closes the debt: the balance is zero afterwards.
    page.goto(account_url)
    open_action(page, "Write off")
    page.get_by_label("Reason").fill("Customer insolvent")
    page.get_by_role("button", name="Write off").click()
    expect(page.locator(".flash.success")).to_contain_text("Wrote off")
    expect(page.locator("#account-balance")).to_contain_text("$0.00")
    # 5. A suspended account takes no new subscription: Globex's EUR account, suspended for a dispute.
    page.goto("/accounts")
    page.locator("table#accounts").get_by_role("link", name="ACC-000002").click()
    open_action(page, "Suspend")
    page.get_by_label("Reason").select_option(label="Dispute")
    page.get_by_role("button", name="Suspend account").click()
    expect(page.locator("#account-status")).to_contain_text("suspended")
    page.goto("/subscriptions")
    form = page.locator("#new-subscription")
    # Not even offered (the service refuses it on every path: tests/web/test_billing_run_pages.py).
    expect(form.get_by_label("Account").locator("option", has_text="ACC-000002")).to_have_count(0)
    expect(form.get_by_label("Account").locator("option", has_text="ACC-000001")).to_have_count(1)
    shot(page, "seed004-04-suspended")
