"""Finance > Catalogue in a real browser (Debian's Chromium via Playwright, against `creditdesk serve --demo`):
create a product, a price plan with a price, and a tax rate, as a master user would."""

from __future__ import annotations

import re

from tests.web.test_browser import browser, log_in, nav, page, server, shot, sync_api  # noqa: F401  (fixtures)

expect = sync_api.expect


def open_catalogue(tab) -> None:
    finance = tab.get_by_role("navigation", name="Main").locator("#finance-menu")
    finance.locator("summary").click()
    finance.get_by_role("menuitem", name="Catalogue").click()
    expect(tab.get_by_role("heading", name="Catalogue")).to_be_visible()


def test_create_a_product_a_price_plan_with_a_price_and_a_tax_rate(page):  # noqa: F811
    log_in(page)
    open_catalogue(page)
    expect(page.locator("table#products")).to_contain_text("SMS bundle 500")  # the demo's catalogue
    shot(page, "catalogue-01-products")

    # A product: the credit package fields show only for that kind; an error is shown next to its field.
    page.get_by_role("link", name="New product").click()
    form = page.locator("#product-form")
    package = form.locator("#credit-package")
    expect(package).to_be_hidden()
    form.get_by_label("Kind").select_option("credit_package")
    expect(package).to_be_visible()
    expect(form.get_by_label("Credit type")).to_be_visible()
    form.get_by_label("Kind").select_option("service")
    expect(package).to_be_hidden()
    form.get_by_label("Code").fill("browser consulting")  # a space: not a valid code
    form.get_by_label("Name").fill("Browser consulting")
    form.get_by_label("Unit").fill("hour")
    form.get_by_label("Tax class").select_option("gst")
    form.get_by_role("button", name="Create product").click()
    code_field = page.locator("#product-form").get_by_label("Code")
    expect(code_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-code")).to_be_visible()
    expect(page.locator("#err-name")).to_have_count(0)  # only the wrong field is marked
    shot(page, "catalogue-02-product-field-error")
    code_field.fill("browser-consulting")
    page.locator("#product-form").get_by_role("button", name="Create product").click()
    expect(page.locator(".flash.success")).to_contain_text("Created product browser-consulting")
    row = page.locator("table#products tbody tr", has_text="browser-consulting")
    expect(row).to_contain_text("Browser consulting")
    expect(row).to_contain_text("gst")

    # A price plan, then the product's price typed as a decimal.
    page.get_by_role("navigation", name="Catalogue").get_by_role("link", name="Price plans").click()
    plan_form = page.locator("#plan-form")
    plan_form.get_by_label("Code").fill("nzd-standard")
    plan_form.get_by_label("Name").fill("Standard NZD")
    plan_form.get_by_role("textbox", name=re.compile("^Currency")).fill("NZD")
    plan_form.get_by_label("Default plan for this currency").check()
    plan_form.get_by_role("button", name="Create price plan").click()
    expect(page.get_by_role("heading", name=re.compile("Standard NZD"))).to_be_visible()
    price_row = page.locator("table#prices tbody tr", has_text="browser-consulting")
    expect(price_row).to_contain_text("no price")
    price_row.get_by_label("Price of Browser consulting in NZD").fill("185.505")  # too many decimals for NZD
    price_row.get_by_role("button", name="Save").click()
    price_row = page.locator("table#prices tbody tr", has_text="browser-consulting")
    expect(price_row.locator(".field-error")).to_contain_text("more decimals than NZD")
    price_row.get_by_label("Price of Browser consulting in NZD").fill("185.50")
    price_row.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_contain_text("Browser consulting: 185.50 NZD")
    price_row = page.locator("table#prices tbody tr", has_text="browser-consulting")
    expect(price_row.locator("td.num")).to_contain_text("185.50")
    shot(page, "catalogue-03-price-plan")

    # A tax rate from a later day, typed in percent.
    page.get_by_role("navigation", name="Catalogue").get_by_role("link", name="Taxes").click()
    rate_form = page.locator("#tax-rate-form")
    rate_form.get_by_label("Tax class").select_option("gst")
    rate_form.get_by_label("Rate (%)").fill("12.5")
    rate_form.get_by_label("Valid from").fill("2030-07-01")
    rate_form.get_by_role("button", name="Add tax rate").click()
    expect(page.locator(".flash.success")).to_contain_text("Added a rate of 12.5 % to gst")
    gst = page.locator("table#tax-classes tbody tr[data-tax-class=gst]")
    expect(gst).to_contain_text("12.5 % exclusive from 2030-07-01")
    expect(gst.locator("td").nth(1)).to_contain_text("10 % exclusive")  # still today's rate
    shot(page, "catalogue-04-taxes")


def test_a_member_reads_the_catalogue_without_forms(page):  # noqa: F811
    log_in(page, "alice@demo.example.com")
    open_catalogue(page)
    expect(page.get_by_role("link", name="New product")).to_have_count(0)
    page.get_by_role("navigation", name="Catalogue").get_by_role("link", name="Price plans").click()
    page.get_by_role("link", name="Standard AUD").click()
    expect(page.locator("table#prices tbody tr", has_text="consulting-hour")).to_contain_text("$180.00")
    expect(page.locator("form.price-form")).to_have_count(0)
