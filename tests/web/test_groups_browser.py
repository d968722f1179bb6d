"""Group accounts in a real browser (Chromium, Playwright) against `creditdesk serve --demo`: the demo's group
(Initech's parent account, Globex's partly funded member), the member's funded invoice on the parent, removing the
member and adding it back fully funded, and the pricing agreement."""

from __future__ import annotations

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    browser,
    expect,
    log_in,
    page,
    server,
    shot,
)


def test_demo_group_members_and_pricing_agreement(page):
    log_in(page)
    page.goto("/accounts")
    page.locator("table#accounts").get_by_role("link", name="ACC-000003").click()
    members = page.locator("table#group-members")
    expect(members).to_contain_text("Globex Sydney drivers")
    expect(members).to_contain_text("types consulting")
    expect(page.locator("#pricing-agreement")).to_contain_text("initech-deal · Initech agreement")
    expect(page.locator("table#account-invoices")).to_contain_text("INV-")  # the member's funded consulting
    shot(page, "groups-01-parent")
    page.get_by_role("button", name="Remove ACC-000004 from the group").click()
    expect(page.locator(".flash.success")).to_contain_text("Removed ACC-000004")
    expect(members).to_contain_text("No members.")
    page.locator("#add-member").click()
    page.get_by_label("Member account").select_option(label="ACC-000004 · Globex Sydney drivers")
    page.get_by_label("Partial: the products, types and families named").check()
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#err-funding-products")).to_be_visible()
    page.get_by_label("Full: every charge").check()
    page.get_by_role("button", name="Add member").click()
    expect(page.locator(".flash.success")).to_contain_text("Added ACC-000004")
    expect(members).to_contain_text("Full")
    members.get_by_role("link", name="ACC-000004 · Globex Sydney drivers").click()
    expect(page.locator("#group-parent")).to_contain_text("ACC-000003")
    expect(page.locator("#pricing-agreement")).to_contain_text("the group parent's agreement")
    shot(page, "groups-02-member")
