"""Seed 002 in a real browser (Chromium, Playwright) against `creditdesk serve --demo`: the demo's subscription
(billed by the jobs up to next month), Remove services (the service, action type Remove service, the effective
day), Bill subscriber as of a day with Preview bill (nothing written) then Submit, the bill and its PDF, the
bills list and the customer's bills; and the account's wallet, paid first when over the credit limit."""

from __future__ import annotations

import time
from datetime import date

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    browser,
    expect,
    log_in,
    page,
    server,
    shot,
)


def _first_of_next_month() -> date:
    today = date.today()
    return date(today.year + (today.month == 12), today.month % 12 + 1, 1)


def test_remove_a_service_preview_and_submit_a_bill(page):
    log_in(page)
    page.locator("#finance-menu summary").click()
    page.get_by_role("menuitem", name="Subscriptions").click()
    page.locator("table#subscriptions").get_by_role("link", name="SUB-000001").click()
    expect(page.locator("#subscription-status")).to_have_text("active")
    nxt = _first_of_next_month().isoformat()
    deadline = time.monotonic() + 20
    while nxt not in page.locator("#next-bill").inner_text() and time.monotonic() < deadline:
        time.sleep(0.5)  # the jobs of `serve` bill what is due as of today every 2 s
        page.reload()
    expect(page.locator("#next-bill")).to_have_text(nxt)
    shot(page, "subscriptions-01-page")
    # Remove services: Cloud backup, from the first day not billed yet.
    form = page.locator("#remove-services")
    form.locator("select[name=service_id]").select_option(label="Cloud backup × 3")
    form.get_by_label("Action type").select_option(label="Remove service")
    form.get_by_label("Effective on").fill(nxt)
    form.get_by_role("button", name="Submit").click()
    expect(page.locator(".flash.success")).to_contain_text("Service removed")
    expect(page.locator("table#services")).to_contain_text("(removed)")
    # Bill subscriber as of the next billing day: preview first (nothing written), then submit.
    url = page.url
    page.goto("/bills")
    bills_before = page.locator("table#bills tbody tr").count()
    page.goto(url)
    page.locator("#bill-as-of").fill(nxt)
    page.get_by_role("button", name="Preview bill").click()
    preview = page.locator("#bill-preview")
    expect(preview).to_contain_text("nothing was written")
    expect(preview).to_contain_text("Monthly support")
    expect(preview).not_to_contain_text("Cloud backup")
    total = page.locator("#preview-total").inner_text()
    shot(page, "subscriptions-02-preview")
    page.locator("#bill-as-of").fill(nxt)
    page.locator("#bill-subscriber").get_by_role("button", name="Submit").click()
    expect(page.locator("#invoice-status")).to_have_text("posted")
    expect(page.locator(".flash.success")).to_contain_text(total)
    bill_number = page.locator("#invoice-title").inner_text().split()[0]
    shot(page, "subscriptions-03-bill")
    pdf = page.request.get(page.locator("#invoice-pdf").get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"
    page.goto("/bills")
    expect(page.locator("table#bills")).to_contain_text(bill_number)
    assert page.locator("table#bills tbody tr").count() == bills_before + 1
    page.goto("/clients")
    page.get_by_role("link", name="Initech").first.click()
    expect(page.locator("table#customer-bills")).to_contain_text(bill_number)


def test_the_wallet_on_the_account_page(page):
    log_in(page)
    page.goto("/accounts")
    page.locator("table#accounts").get_by_role("link", name="ACC-000003").click()
    wallet = page.locator("#account-wallet")
    expect(wallet).to_contain_text("Wallet balance")
    before = page.locator("#wallet-balance").inner_text()
    top = page.locator("#wallet-top-up")
    top.get_by_label("Amount (AUD)").fill("25.00")
    top.get_by_role("button", name="Top up").click()
    expect(page.locator(".flash.success")).to_contain_text("Wallet topped up by $25.00")
    assert page.locator("#wallet-balance").inner_text() != before
    expect(page.locator("#account-payment-preferences")).to_contain_text("Wallet")
    shot(page, "wallet-01-account")
