"""Invoices in a real browser (Chromium, Playwright) against `creditdesk serve --demo`: raise an invoice for a
demo account, add a line, post it, open its PDF, record payments, and see the account's balance and
outstanding amount change."""

from __future__ import annotations

import re

from creditdesk.currencies import format_money
from tests.web.test_browser import (  # noqa: F401  (fixtures)
    browser,
    expect,
    log_in,
    page,
    server,
    shot,
)


def money_of(text: str) -> int:
    """'$2,605.75' -> 260575 (the demo accounts' AUD figures)."""
    digits = re.sub(r"[^0-9.-]", "", text)
    whole, _, cents = digits.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def test_raise_post_pdf_pay_and_see_balance_and_outstanding(page):
    log_in(page)
    page.goto("/accounts")
    page.locator("table#accounts").get_by_role("link", name="ACC-000001").click()
    balance = money_of(page.locator("#account-balance").inner_text())
    outstanding = money_of(page.locator("#account-outstanding").inner_text())
    assert outstanding > 0  # the demo's overdue invoice

    page.locator("#finance-menu summary").click()
    page.get_by_role("menuitem", name="Invoices").click()
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()
    page.get_by_role("link", name="New invoice").click()
    account_id = page.locator("#invoice-account option", has_text="ACC-000001").get_attribute("value")
    page.locator("#invoice-account").select_option(account_id)
    page.get_by_role("button", name="Create draft").click()
    expect(page.locator(".flash.success")).to_contain_text("Draft invoice created")
    page.get_by_label("Product").select_option("consulting-hour")
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add line").click()
    expect(page.locator("table#invoice-lines")).to_contain_text("Consulting hour")
    total = money_of(page.locator("#invoice-total").inner_text())
    assert total > 0
    shot(page, "invoices-01-draft")
    page.get_by_role("button", name="Post invoice").click()
    expect(page.locator(".flash.success")).to_contain_text(re.compile(r"Posted as INV-\d{6}"))
    expect(page.locator("#invoice-status")).to_have_text("posted")
    number = page.locator("#invoice-title").inner_text().split()[0]

    href = page.locator("#invoice-pdf").get_attribute("href")
    pdf = page.context.request.get(href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF") and len(pdf.body()) > 1000
    shot(page, "invoices-02-posted")

    page.get_by_role("link", name=re.compile(r"ACC-000001")).first.click()
    expect(page.locator("#account-balance")).to_have_text(format_money(balance + total, "AUD"))
    expect(page.locator("table#account-invoices")).to_contain_text(number)
    page.locator("table#account-invoices").get_by_role("link", name=number).click()

    page.get_by_label(re.compile(r"^Amount \(AUD\)")).first.fill(f"{total // 100}.{total % 100:02d}")
    page.get_by_role("button", name="Record payment").click()
    expect(page.locator(".flash.success")).to_contain_text("Payment of")
    expect(page.locator("#invoice-status")).to_have_text("settled")

    # Pay part of the overdue demo invoice: the outstanding amount drops by as much.
    page.goto("/invoices?overdue=1")
    page.locator("table#invoices").get_by_role("link", name="INV-000001").click()
    page.get_by_label(re.compile(r"^Amount \(AUD\)")).first.fill("100")
    page.get_by_role("button", name="Record payment").click()
    expect(page.locator(".flash.success")).to_contain_text("Payment of")
    page.get_by_role("link", name=re.compile(r"ACC-000001")).first.click()
    expect(page.locator("#account-balance")).to_have_text(format_money(balance - 10_000, "AUD"))
    expect(page.locator("#account-outstanding")).to_have_text(format_money(outstanding - 10_000, "AUD"))
    expect(page.locator("table#account-payments")).to_contain_text("bank transfer")
    shot(page, "invoices-03-account")
