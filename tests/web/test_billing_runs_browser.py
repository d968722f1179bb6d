"""Finance > Billing runs in a real browser (Chromium, Playwright) against `creditdesk serve --demo`: reached from
the Finance menu and from the subscriptions list, a master starts a run as of a day with a double click on
Run billing: one run, its page with what it billed; the list shows it once, by the master; a manager sees the
runs and no form."""

from __future__ import annotations

from datetime import date

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    MANAGER,
    browser,
    expect,
    log_in,
    page,
    server,
    shot,
)


def _first_of_month_after_next() -> date:
    today = date.today()
    index = today.year * 12 + today.month - 1 + 2
    return date(index // 12, index % 12 + 1, 1)


def test_start_a_billing_run_with_a_double_click(page):
    log_in(page)
    page.locator("#finance-menu summary").click()
    page.get_by_role("menuitem", name="Billing runs").click()
    expect(page.get_by_role("heading", name="Billing runs", exact=True)).to_be_visible()
    page.goto("/subscriptions")
    page.locator("#billing-runs-link").click()
    as_of = _first_of_month_after_next().isoformat()  # beyond what the jobs bill (today): something is due
    page.locator("#run-as-of").fill(as_of)
    page.locator("#start-run").dblclick()
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page.locator("#run-title")).to_contain_text(as_of)
    expect(page.locator(".flash.success")).to_contain_text("Billing run as of")
    assert int(page.locator("#run-bills").inner_text()) >= 1
    expect(page.locator("table#run-bill-list")).to_contain_text("INV-")
    shot(page, "billing-runs-01-run")
    page.goto("/billing-runs")
    rows = page.locator("table#billing-runs tbody tr", has_text=as_of)
    expect(rows).to_have_count(1)  # two clicks, one run
    expect(rows).not_to_contain_text("the jobs")  # started by the master, not the jobs
    shot(page, "billing-runs-02-list")


def test_a_manager_sees_the_runs_but_no_form(page):
    log_in(page, MANAGER)
    page.goto("/billing-runs")
    expect(page.locator("table#billing-runs")).to_be_visible()
    expect(page.locator("#start-billing-run")).to_have_count(0)
    expect(page.locator("#runs-masters-only")).to_be_visible()
