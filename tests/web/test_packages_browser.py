"""Credit packages in a real browser (Chromium, Playwright) against `creditdesk serve --demo` (seed 001):
buy "10 massages" on an invoice and pay it, see the pack on the customer; raise an invoice with a Massage and
a Facial line: the drop-down is offered on the Massage line only, with the package's balance; using 2 when 1
remains is refused; mark paid."""

from __future__ import annotations

import re

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    browser,
    expect,
    log_in,
    page,
    server,
    shot,
)


def new_invoice(page, lines):
    page.goto("/invoices/new")
    account_id = page.locator("#invoice-account option", has_text="ACC-000001").get_attribute("value")
    page.locator("#invoice-account").select_option(account_id)
    page.get_by_role("button", name="Create draft").click()
    expect(page.locator(".flash.success")).to_contain_text("Draft invoice created")
    for product, quantity in lines:
        add_line(page, product, quantity)


def add_line(page, product, quantity):
    page.locator("#line-product").select_option(product)
    page.locator("#line-quantity").fill(quantity)
    page.get_by_role("button", name="Add line").click()
    expect(page.locator(".flash.success")).to_contain_text("Line added")


def use_credits(page, row, quantity):
    row.locator(".credits-quantity").fill(quantity)
    row.locator(".credits-use").click()


def test_buy_a_package_and_spend_it_on_an_invoice(page):
    log_in(page)
    # Buy "10 massages" and pay it: the pack appears on the customer.
    new_invoice(page, [("massage-10", "1")])
    expect(page.locator("tr.pay-credits")).to_have_count(0)
    page.locator("#mark-paid-draft").click()
    expect(page.locator(".flash.success")).to_contain_text("Marked as paid")
    expect(page.locator("#invoice-status")).to_have_text("settled")
    bought = page.locator("#invoice-title").inner_text().split()[0]
    page.locator("dl.facts").get_by_role("link", name="Acme Widgets", exact=True).click()
    packages = page.locator("table#customer-packages")
    row = packages.locator("tbody tr", has_text="10 massages")
    expect(row).to_have_count(1)
    expect(row.locator(".package-remaining")).to_have_text("10")
    expect(row).to_contain_text(bought)
    shot(page, "packages-01-customer")

    # An invoice with a Massage and a Facial line: the drop-down only on the Massage line, with its balance.
    new_invoice(page, [("massage", "9"), ("facial", "1")])
    offers = page.locator("tr.pay-credits")
    expect(offers).to_have_count(1)
    expect(offers.first).to_have_attribute("data-product", "massage")
    expect(offers.first.locator("select.credits-pack option")).to_contain_text(["10 massage available"])
    shot(page, "packages-02-drop-down")
    use_credits(page, offers.first, "9")
    expect(page.locator(".flash.success")).to_contain_text("paid with credits")
    expect(page.locator("table#invoice-lines")).to_contain_text("(9 paid with credits)")

    # One credit left: using 2 is refused with the balance, 1 is accepted; then mark paid.
    add_line(page, "massage", "2")
    offer = page.locator("tr.pay-credits")
    expect(offer).to_have_count(1)
    expect(offer.locator("select.credits-pack option")).to_contain_text(["1 massage available"])
    use_credits(page, offer, "2")
    expect(page.locator(".field-error")).to_contain_text("1 available, 2 requested")
    shot(page, "packages-03-refused")
    use_credits(page, page.locator("tr.pay-credits"), "1")
    expect(page.locator(".flash.success")).to_contain_text("paid with credits")
    expect(page.locator("tr.pay-credits")).to_have_count(0)
    page.locator("#mark-paid-draft").click()
    expect(page.locator(".flash.success")).to_contain_text(re.compile(r"Marked as paid|nothing left to pay"))
    expect(page.locator("#invoice-status")).to_have_text("settled")
    spent = page.locator("#invoice-title").inner_text().split()[0]

    page.locator("dl.facts").get_by_role("link", name="Acme Widgets", exact=True).click()
    row = page.locator("table#customer-packages tbody tr", has_text="10 massages")
    expect(row.locator(".package-remaining")).to_have_text("0")
    expect(row).to_contain_text(spent)
    shot(page, "packages-04-spent")
