"""Seed 002's "view and communicate a bill" in a real browser: `creditdesk serve --demo` with a real SMTP server on
loopback (aiosmtpd). Open a bill from the customer's bills, Communicate: the bill template, the content edited,
one of the customer's addresses chosen, Send; the message arrives once, with the bill's PDF attached, and the
communication is listed on the customer."""

from __future__ import annotations

import time

from tests.web.test_browser import browser, expect, log_in, shot  # noqa: F401  (fixtures)
from tests.web.test_emails_browser import mail_server, page, server  # noqa: F401  (fixtures)


def test_communicate_a_bill_by_email(page, mail_server):
    inbox, _port = mail_server
    before = len(inbox.messages)
    log_in(page)
    page.goto("/clients")
    page.get_by_role("link", name="Initech").first.click()
    deadline = time.monotonic() + 20
    while page.locator("table#customer-bills a").count() == 0 and time.monotonic() < deadline:
        time.sleep(0.5)  # the demo's subscription is billed by the jobs of `serve`
        page.reload()
    bills = page.locator("table#customer-bills a")
    number = bills.first.inner_text()
    bills.first.click()
    expect(page.locator("#invoice-title")).to_contain_text(number)
    page.locator("#communicate-invoice").click()
    form = page.locator("#communicate-form")
    expect(form.get_by_label("Subject")).to_have_value(f"Your invoice {number}")  # the demo's Bill template
    form.get_by_label("Message").fill(form.get_by_label("Message").input_value() + "\nThank you, Morgan.")
    form.locator("input[name=recipient][value='accounts@initech.example.com']").check()
    shot(page, "bill-email-01-form")
    form.get_by_role("button", name="Send").click()
    expect(page.locator("table#invoice-communications")).to_contain_text("accounts@initech.example.com")
    # The server's jobs send other mail meanwhile, to the same address too (the demo's expiry warnings): count
    # the messages about this bill only.
    def bill_messages():
        return [m for m in inbox.messages[before:] if number in (m["subject"] or "")]

    deadline = time.monotonic() + 15
    while not bill_messages() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # a second send would arrive in this time: there must be none
    sent = bill_messages()
    assert len(sent) == 1, [m["subject"] for m in sent]
    message = sent[0]
    assert message["to"] == "accounts@initech.example.com" and message["subject"] == f"Your invoice {number}"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Thank you, Morgan." in text
    [pdf] = [part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert pdf.get_content().startswith(b"%PDF") and number in pdf.get_filename()
    expect(page.locator("table#invoice-communications")).to_contain_text("sent")
    page.goto("/clients")
    page.get_by_role("link", name="Initech").first.click()
    expect(page.locator("#customer-communications")).to_contain_text(f"Your invoice {number}")
    shot(page, "bill-email-02-customer")
