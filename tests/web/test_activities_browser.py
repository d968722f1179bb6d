"""Seed 002's "Schedule an activity" in a real browser (Chromium, Playwright, `creditdesk serve --demo`): from
the customer, an installation (its one-time service added by its type) assigned to a user, found under
non-completed activities (and that user's My activities) until it is completed, which bills the service."""

from __future__ import annotations

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    browser,
    expect,
    log_in,
    page,
    server,
    shot,
)


def test_schedule_an_installation_and_complete_it(page):
    log_in(page)
    page.goto("/clients")
    page.get_by_role("link", name="Acme Widgets").first.click()
    page.locator("#customer-activities").get_by_role("link", name="Schedule an activity").click()
    form = page.locator("#activity-form")
    form.get_by_label("Contact name").fill("Wendy Widget")
    form.get_by_label("Phone").fill("+61 2 5550 1234")
    form.locator("select[name=type]").select_option(label="Installation")
    form.get_by_label("Details").fill("Install the SMS modem in the London office")
    form.locator("input[name=starts_at]").fill("2027-01-12T09:00")
    form.get_by_label("Expected completion").fill("2027-01-12T17:00")
    form.locator("select[name=assignee_user_id]").select_option(label="Bob Builder")
    form.get_by_role("button", name="Schedule").click()
    expect(page.locator(".flash.success")).to_be_visible()
    expect(page.locator("#activity-services")).to_contain_text("Installation")  # added by the type
    activity_url = page.url
    shot(page, "activities-01-scheduled")
    page.locator("#crm-menu summary").click()
    page.get_by_role("menuitem", name="Activities", exact=True).click()
    mine = page.locator("table#activities tr", has_text="2027-01-12 09:00")
    expect(mine).to_contain_text("Bob Builder")
    expect(mine).to_contain_text("Open")
    shot(page, "activities-02-non-completed")
    page.goto(activity_url)
    page.locator("#activity-start").click()
    expect(page.locator(".page-head")).to_contain_text("In progress")
    page.locator("#activity-complete").click()
    expect(page.locator(".page-head")).to_contain_text("Completed")
    expect(page.locator("#activity-invoice")).to_be_visible()  # the service, billed on a posted invoice
    page.goto("/activities")
    expect(page.locator("table#activities")).not_to_contain_text("2027-01-12 09:00")  # completed: not listed
    shot(page, "activities-03-completed")
