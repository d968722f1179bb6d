"""Seed 003 (individual user SMS credits) end to end in Chromium, against `creditdesk serve --demo`.

Step 1: click your name at the top right, choose Manage SMS Credits. Step 2: the box shows exactly what
the role may see. Step 3: the Actions icon of a row offers Purchase, Transfer to / from this account and
View last 30 days logs. Purchase: details -> payment screen -> confirmation with the receipt (credits
applied only once paid). Transfer: tick to agree. Logs: CSV and a print view. Frozen credits shown as frozen.

Demo staff: Morgan (master), Maya (manager with manage_office_credits, Head Office + North Branch),
Alice and Bob (members, team "Project delivery", send_sms), Carol (North Branch, no send_sms),
Dan (Head Office, send_sms removed: 50 frozen credits).
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    MANAGER,
    MASTER,
    MEMBER,
    browser,
    log_in,
    page,
    server,
    shot,
    sync_api,
)

expect = sync_api.expect


def open_box(page):
    """Seed 003 steps 1-2: Your Name (top right) -> Manage SMS Credits -> the box."""
    page.locator("#user-menu summary").click()
    page.get_by_role("menuitem", name="Manage SMS Credits").click()
    box = page.locator("#sms-box")
    expect(box).to_be_visible()
    return box


def account_row(page, name: str):
    return page.locator("table#sms-accounts tbody tr", has_text=name)


def action(page, row_name: str, item: str):
    row = account_row(page, row_name)
    row.locator("summary", has_text="Actions").click()
    row.get_by_role("menuitem", name=item).click()


def balance(page, name: str) -> int:
    return int(account_row(page, name).locator("td.num").first.inner_text().replace(",", ""))


def rows_text(page) -> list[str]:
    return [t.split("\n")[0] for t in page.locator("table#sms-accounts tbody tr td:first-child").all_inner_texts()]


def test_the_name_menu_opens_the_box_with_the_seeds_visibility_per_role(page, browser, server):
    log_in(page, MASTER)
    box = open_box(page)
    expect(box).to_contain_text("System credits (unallocated)")
    names = " | ".join(rows_text(page))
    for person in ("Morgan Master", "Maya Manager", "Alice Account", "Bob Builder", "Dan Dispatch"):
        assert person in names
    assert "Carol Clerk" not in names  # no send_sms and no credits
    assert "Wendy Widget" not in names  # a customer contact, not staff
    dan = account_row(page, "Dan Dispatch")
    expect(dan.locator(".status-frozen")).to_have_text("frozen")
    expect(dan).to_contain_text("50")
    shot(page, "sms-01-box-master")
    account_row(page, "System credits").locator("summary", has_text="Actions").click()
    menu = account_row(page, "System credits").get_by_role("menu")
    for item in ("Purchase SMS Credits", "Transfer SMS Credits to This Account",
                 "Transfer SMS Credits from This Account", "View Last 30 Days Logs"):
        expect(menu.get_by_role("menuitem", name=item)).to_be_visible()
    shot(page, "sms-02-actions-menu")

    manager = browser.new_context(base_url=server)
    manager_page = manager.new_page()
    log_in(manager_page, MANAGER)
    open_box(manager_page)
    names = " | ".join(rows_text(manager_page))
    assert "System credits" not in names  # no pool for non-masters
    assert "Morgan Master" not in names  # not of her offices
    for person in ("Maya Manager", "Alice Account", "Bob Builder"):
        assert person in names
    manager.close()

    member = browser.new_context(base_url=server)
    member_page = member.new_page()
    log_in(member_page, MEMBER)
    open_box(member_page)
    assert rows_text(member_page) == ["Alice Account you alice@demo.example.com",
                                      "Bob Builder bob@demo.example.com"] or \
        [n.split(" ")[0] for n in rows_text(member_page)] == ["Alice", "Bob"]
    shot(member_page, "sms-03-box-member")
    # A member may transfer from her own credits, never from a team member's.
    bob = account_row(member_page, "Bob Builder")
    bob.locator("summary", has_text="Actions").click()
    expect(bob.get_by_role("menuitem", name="Transfer SMS Credits from This Account")).to_have_count(0)
    expect(bob.get_by_role("menuitem", name="Transfer SMS Credits to This Account")).to_be_visible()
    response = member_page.goto(f"/sms/transfer?account={bob.get_attribute('data-account')}&direction=from")
    assert response.status == 403
    member.close()


def test_purchase_pays_first_then_applies_credits_and_offers_the_receipt(page):
    log_in(page, MEMBER)
    open_box(page)
    before = balance(page, "Bob Builder")
    action(page, "Bob Builder", "Purchase SMS Credits")
    form = page.locator("#purchase-form")
    expect(form.get_by_label("Account")).to_have_value(re.compile("^usr_"))
    form.get_by_label("Quantity (SMS credits)").fill("120")
    form.get_by_label("Address").fill("1 Harbour St\nSydney NSW 2000")
    shot(page, "sms-04-purchase")
    form.get_by_role("button", name="Proceed").click()
    summary = page.locator("#payment-summary")
    expect(summary).to_contain_text("Bob Builder")
    expect(summary).to_contain_text("120 SMS credits")
    expect(summary).to_contain_text("13.20 AUD")  # 120 x 0.10 + 10 % GST
    shot(page, "sms-05-payment")
    # Nothing applied before the payment (looked at in a second tab of the same session).
    other = page.context.new_page()
    other.goto("/sms")
    assert balance(other, "Bob Builder") == before
    other.close()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    expect(page.locator("#purchase-result")).to_contain_text("120 SMS credits have been applied to Bob Builder")
    shot(page, "sms-06-confirmation")
    with page.expect_download() as info:
        page.locator("#receipt-link").click()
    download = info.value
    assert download.suggested_filename.startswith("receipt-SMS-") and download.suggested_filename.endswith(".pdf")
    assert open(download.path(), "rb").read(5) == b"%PDF-"
    page.goto("/sms")
    assert balance(page, "Bob Builder") == before + 120


def test_purchase_errors_are_clear_messages(page):
    log_in(page, MASTER)
    page.goto("/sms/purchase?for=workspace")
    form = page.locator("#purchase-form")
    form.get_by_label("Quantity (SMS credits)").fill("10")
    form.get_by_label("Address").fill("Somewhere")
    form.get_by_label("Email").fill("not-an-email")
    page.evaluate("document.querySelector('#purchase-form').noValidate = true")
    form.get_by_role("button", name="Proceed").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was bought")
    expect(page.locator("#err-billing_email")).to_have_text("Billing email is not an email address (like "
                                                            "name@example.com).")
    expect(page.get_by_role("heading", name="Purchase SMS credits")).to_be_visible()


def test_transfer_needs_the_tick_and_moves_the_credits(page):
    log_in(page, MEMBER)
    open_box(page)
    alice, bob = balance(page, "Alice Account"), balance(page, "Bob Builder")
    action(page, "Alice Account", "Transfer SMS Credits from This Account")
    form = page.locator("#transfer-form")
    form.get_by_label("To", exact=True).select_option(label="Bob Builder")
    form.get_by_label("Quantity (SMS credits)").fill("25")
    expect(page.locator("#transfer-conditions")).to_contain_text("leave this account at once")
    shot(page, "sms-07-transfer")
    form.get_by_role("button", name="Transfer").click()
    expect(page.locator("#err-agree")).to_contain_text("Tick the box to agree")
    page.locator("#transfer-form").get_by_label("I agree to the conditions").check()
    page.locator("#transfer-form").get_by_role("button", name="Transfer").click()
    expect(page.locator(".flash.success")).to_contain_text("Transferred 25 SMS credits from Alice Account to "
                                                           "Bob Builder")
    assert balance(page, "Alice Account") == alice - 25
    assert balance(page, "Bob Builder") == bob + 25


def test_master_moves_frozen_credits_away_and_pool_to_user(page):
    log_in(page, MASTER)
    open_box(page)
    pool = balance(page, "System credits")
    action(page, "Dan Dispatch", "Transfer SMS Credits from This Account")
    form = page.locator("#transfer-form")
    expect(form).to_contain_text("50 frozen")
    form.get_by_label("To", exact=True).select_option(label="System credits (unallocated)")
    form.get_by_label("Quantity (SMS credits)").fill("50")
    form.get_by_label("I agree to the conditions").check()
    form.get_by_role("button", name="Transfer").click()
    expect(page.locator(".flash.success")).to_contain_text("from Dan Dispatch to System credits")
    assert balance(page, "System credits") == pool + 50
    # Pool -> user, from the user's row ("Transfer SMS Credits to This Account").
    maya = balance(page, "Maya Manager")
    action(page, "Maya Manager", "Transfer SMS Credits to This Account")
    form = page.locator("#transfer-form")
    form.get_by_label("From", exact=True).select_option(value="workspace")
    form.get_by_label("Quantity (SMS credits)").fill("10")
    form.get_by_label("I agree to the conditions").check()
    form.get_by_role("button", name="Transfer").click()
    expect(page.locator(".flash.success")).to_contain_text("to Maya Manager")
    assert balance(page, "Maya Manager") == maya + 10


def test_last_30_days_logs_with_csv_and_print_view(page):
    log_in(page, MASTER)
    open_box(page)
    action(page, "Alice Account", "View Last 30 Days Logs")
    table = page.locator("table#sms-logs")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Alice Account")
    expect(table).to_contain_text("Purchased")
    expect(table).to_contain_text("+300")
    shot(page, "sms-08-logs")
    with page.expect_download() as info:
        page.locator("#logs-csv").click()
    rows = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
    assert rows[0][:6] == ["date_utc", "account_kind", "account_id", "account_name", "direction", "movement"]
    assert any(r[5] == "purchase" and r[6] == "300" for r in rows[1:])
    page.locator("#logs-print").click()
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.locator("table#sms-logs")).to_be_visible()
    shot(page, "sms-09-logs-print")
    page.emulate_media(media="screen")


def test_send_sms_uses_own_credits_and_shows_in_outbox(page):
    log_in(page, "bob@demo.example.com")
    open_box(page)
    before = balance(page, "Bob Builder")
    page.get_by_role("link", name=re.compile("Send SMS")).first.click()
    form = page.locator("#send-form")
    form.get_by_label("To (phone number)").fill("+61400000123")
    form.get_by_label("On behalf of").select_option(label="Alice Account")
    form.get_by_label("Message").fill("Your delivery arrives at 10am.")
    form.get_by_role("button", name="Send SMS").click()
    expect(page.locator(".flash.success")).to_contain_text("1 credit(s) used")
    expect(page.locator("table#outbox")).to_contain_text("Your delivery arrives")
    page.goto("/sms")
    assert balance(page, "Bob Builder") == before - 1


@pytest.mark.parametrize("who", ["carol@demo.example.com"])
def test_user_without_send_sms_sees_only_themselves_and_cannot_send(page, who):
    log_in(page, who)
    open_box(page)
    assert [n.split(" ")[0] for n in rows_text(page)] == ["Carol"]
    # Offered only what will be allowed: the menu and the page say why, and who can change it, before typing.
    page.locator("#user-menu summary").click()
    expect(page.locator("#menu-cannot-send")).to_have_text("SMS outbox · you may not send SMS")
    page.goto("/sms/messages")
    expect(page.locator("#send-form")).to_have_count(0)
    notice = page.locator("#cannot-send")
    expect(notice).to_contain_text("You may not send SMS: you do not have permission to send SMS.")
    expect(notice).to_contain_text("can give it to you")
    expect(notice).not_to_contain_text("send_sms")


def test_send_sms_counts_segments_and_credits_as_you_type(page):
    log_in(page, "bob@demo.example.com")
    page.goto("/sms/messages")
    body = page.locator("#send-form").get_by_label("Message")
    counter = page.locator("#sms-counter")
    body.fill("Hello")
    expect(counter).to_contain_text("5 characters, GSM-7: 1 segment of up to 160 — costs 1 credit;")
    body.fill("x" * 161)  # one character over a single GSM-7 message: two parts of 153
    expect(counter).to_contain_text("161 characters, GSM-7: 2 segments of up to 153 — costs 2 credits")
    body.fill("Grüße ☀")  # the sun is outside GSM-7: the whole message goes Unicode, 70 per message
    expect(counter).to_contain_text("7 characters, Unicode: 1 segment of up to 70")
    body.fill("€" * 80)  # the euro sign takes two septets (escape + char): 160 septets, one segment
    expect(counter).to_contain_text("80 characters (160 places: some characters take two), GSM-7: 1 segment")
    shot(page, "sms-send-counter")
