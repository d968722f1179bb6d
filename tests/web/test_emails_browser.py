"""Expiry emails in a real browser (seed 001), end to end: `creditdesk serve --demo` with its jobs loop and a
real SMTP server on loopback (aiosmtpd). Settings > Emails: turn the emails on, warn 30 days ahead, edit the
warning template with a preview, then watch the send log fill and open the message as it was sent."""

from __future__ import annotations

import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    _free_port,
    browser,
    expect,
    log_in,
    serve_demo,
    shot,
)


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture(scope="module")
def mail_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, mail_server):
    _inbox, smtp_port = mail_server
    with serve_demo(tmp_path_factory.mktemp("emails"), env={
            "CREDITDESK_JOBS_INTERVAL_SECONDS": "1", "CREDITDESK_SMTP_HOST": "127.0.0.1",
            "CREDITDESK_SMTP_PORT": str(smtp_port), "CREDITDESK_SMTP_FROM": "desk@demo.example.com"}) as base:
        yield base


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def test_settings_template_preview_send_log_and_the_message_as_sent(page, mail_server):
    inbox, _port = mail_server
    log_in(page)
    page.goto("/settings/emails")
    expect(page.locator("#smtp-missing")).to_have_count(0)  # the server was started with an SMTP host
    # The warning template: edit the subject, preview it on a sample package, save.
    page.locator("#email-templates tr", has_text="Expiry warning").get_by_role("link").first.click()
    form = page.locator("#template-form")
    form.get_by_label("Subject").fill("Heads up: {{ pack.name }} ends {{ pack.expires_on }}")
    form.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-subject")).to_contain_text("Heads up: ")
    expect(page.locator("#preview-subject")).not_to_contain_text("{{")
    # The HTML preview is readable: as wide as its card, not the iframe's default 300 x 150.
    frame = page.locator("iframe#preview-html")
    expect(frame).to_be_visible()
    box = frame.bounding_box()
    assert box["width"] > 400 and box["height"] >= 300, box
    page.locator("#template-form").get_by_label("Subject").fill("Heads up: {{ pack.name }} ends {{ pack.expires_on }}")
    page.locator("#template-form").get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_be_visible()
    shot(page, "emails-template")
    page.goto("/settings/emails")

    settings = page.locator("#email-settings")
    settings.get_by_label("Send emails (on: the kinds ticked below)").check()
    settings.get_by_label("Warn before a package expires").check()
    settings.get_by_label("Days before the expiry").fill("x")
    settings.get_by_role("button", name="Save").click()
    expect(page.locator("#email-settings")).to_contain_text("Warning days must be a whole number, like 14.")
    settings = page.locator("#email-settings")
    settings.get_by_label("Days before the expiry").fill("30")
    settings.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_be_visible()

    # The jobs loop (every second) sends what is due: at 30 days, the Leeds starter pack's warning (Acme, 20
    # days left) goes out with the edited subject. (Peter's pack, 2 days left, was warned at the default 14
    # days with the shipped subject before the template changed.)
    deadline = time.monotonic() + 40
    while not [m for m in inbox.messages if str(m["Subject"]).startswith("Heads up: Leeds starter pack")]:
        assert time.monotonic() < deadline, [str(m["Subject"]) for m in inbox.messages]
        time.sleep(0.5)
    [leeds] = [m for m in inbox.messages if str(m["Subject"]).startswith("Heads up: Leeds starter pack")]
    assert leeds["To"] == "accounts@acme.example.com"
    body = leeds.get_body(preferencelist=("plain",)).get_content()
    assert "20.00 of 20.00 credits are left" in body  # in hours, as people read them, not 2000
    page.goto("/settings/emails?state=sent")
    shot(page, "emails-log")
    assert page.locator("#email-log tr", has_text="Leeds starter pack").count() == 1  # by name, not by id
    row = page.locator("#email-log tr[data-state='sent']", has_text="accounts@acme.example.com").first
    row.get_by_role("link").first.click()
    expect(page.locator("body")).to_contain_text("Heads up: Leeds starter pack")
    shot(page, "emails-sent-message")
    # Exactly once per pack and event, even with the jobs loop running every second.
    time.sleep(3)
    subjects = [(m["To"], str(m["Subject"])) for m in inbox.messages]
    assert len(subjects) == len(set(subjects)), subjects
