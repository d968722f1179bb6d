"""Issue 17 in Chromium at 390 px (a phone), against `creditdesk serve --demo`: the SMS purchase form sent with
three fields a browser lets through but the server refuses (a name and an address of spaces, an email without a
domain) shows each message under its field, visible and inside the screen, the field marked invalid and described
by its message; what was typed is kept; nothing is bought."""

from __future__ import annotations

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    MASTER,
    browser,
    log_in,
    server,
    shot,
    sync_api,
)

expect = sync_api.expect
WIDTH = 390


def test_sms_purchase_errors_sit_under_their_fields_on_a_phone(browser, server):
    context = browser.new_context(base_url=server, viewport={"width": WIDTH, "height": 844})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, MASTER)
        page.goto("/sms")
        pool = page.locator("#sms-accounts tbody tr", has_text="System credits").locator("td.num").first
        before = pool.inner_text()
        page.goto("/sms/purchase?for=workspace")
        form = page.locator("#purchase-form")
        form.get_by_label("Quantity (SMS credits)").fill("10")
        form.get_by_label("Name").fill("   ")
        form.get_by_label("Address").fill("   ")
        form.get_by_label("Email").fill("ann@example")
        form.get_by_role("button", name="Proceed").click()  # the browser's own checks let these through
        expect(page.get_by_role("alert")).to_have_text("Nothing was bought: correct the fields marked below.")
        expect(page.get_by_role("heading", name="Purchase SMS credits")).to_be_visible()
        wanted = {"billing_name": "Billing name is required.", "billing_address": "Billing address is required.",
                  "billing_email": "Billing email is not an email address (like name@example.com)."}
        for name, text in wanted.items():
            field = page.locator(f"#purchase-form [name={name}]")
            message = page.locator(f"#err-{name}")
            expect(message).to_have_text(text)
            expect(message).to_be_visible()
            expect(field).to_have_attribute("aria-invalid", "true")
            expect(field).to_have_attribute("aria-describedby", f"err-{name}")
            expect(field).to_have_accessible_description(text)
            field_box, box = field.bounding_box(), message.bounding_box()
            assert box["y"] >= field_box["y"] + field_box["height"] - 1, (name, field_box, box)  # under the field
            assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, (name, box)  # inside the screen
        for name in ("quantity", "billing_tax_id", "for"):  # the fields that were right are not marked
            expect(page.locator(f"#purchase-form [name={name}]")).not_to_have_attribute("aria-invalid", "true")
        expect(form.get_by_label("Quantity (SMS credits)")).to_have_value("10")
        expect(page.locator("#purchase-form [name=billing_email]")).to_have_value("ann@example")
        expect(page.locator("#purchase-form [name=for]")).to_have_value("workspace")
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        shot(page, "field-errors-sms-purchase-390")
        page.goto("/sms")
        assert pool.inner_text() == before  # nothing bought
    finally:
        context.close()
