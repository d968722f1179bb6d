"""Communicate a bill in the back office (seed 002): the invoice page's Communicate action, the form with the
template rendered for the invoice (editable) and the customer's addresses, Send once on a double submit
(a real SMTP server on loopback receives one email with the PDF), the customer page's Communications
section, Settings > Bill templates with a preview and the sandbox; a member sees but cannot send."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from creditdesk.notify import communications
from creditdesk.notify.communication_models import Communication
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from tests.billing.factories import Shop
from tests.notify.conftest import serve_smtp
from tests.parties.factories import make_user
from tests.web.conftest import PASSWORD, csrf_of, logged_in, once_key_of, post_form


@pytest.fixture
def smtp_server(settings_env):
    with serve_smtp(settings_env) as inbox:
        yield inbox


class Desk(Shop):
    """A shop whose customer has an email and an office with a contact, a posted and a draft invoice, the
    default bill template, and a manager and a member who log in."""

    def __init__(self, db):
        super().__init__(db, name="Bill desk")
        import os

        tag = os.urandom(3).hex()
        self.email = f"accounts-{tag}@acme.example.com"
        self.contact = f"wendy-{tag}@acme.example.com"

        def setup(s):
            parties.update_customer(s, self.customer_id, ps.CustomerUpdate(email=self.email), actor=self.actor)
            office = parties.create_office(s, ps.OfficeCreate(name="Acme Leeds", customer_id=self.customer_id),
                                           actor=self.actor)
            parties.create_user(s, ps.UserCreate(name="Wendy Widget", email=self.contact, is_staff=False,
                                                 primary_office_id=office.id), actor=self.actor)
            return communications.ensure_default_template(s, actor=self.actor).id
        self.template = db.write(setup)
        self.acc = self.account()
        self.bill = self.posted(self.acc)
        self.draft = self.invoice(self.acc)
        self.number = self.get(self.bill).number
        self.emails = {}
        for role in ("manager", "member"):
            user = make_user(db, actor=self.actor, name=f"Desk {role} {tag}", role=role, password=PASSWORD)
            with db.read() as s:
                from creditdesk.parties.models import User

                self.emails[role] = s.get(User, user).email

    def count(self) -> int:
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(Communication).where(
                Communication.workspace_id == self.ws.id))


def test_communicate_a_bill_from_its_page_once(web, db, smtp_server):
    desk = Desk(db)
    client = logged_in(web, desk.emails["manager"])
    page = client.get(f"/invoices/{desk.bill.id}").text
    assert f'href="/invoices/{desk.bill.id}/communicate"' in page
    assert "/communicate" not in client.get(f"/invoices/{desk.draft.id}").text  # a draft is not a bill
    form = client.get(f"/invoices/{desk.bill.id}/communicate").text
    assert f'value="Your invoice {desk.number}"' in form and "$330.00" in form  # rendered for this invoice
    assert desk.email in form and desk.contact in form and f"{desk.number}.pdf" in form
    data = {"template_id": desk.template, "recipient": desk.contact, "other": "",
            "subject": f"Invoice {desk.number} (edited)", "body": "Please pay {{ soon }}.",
            "csrf_token": csrf_of(form), "idempotency_key": once_key_of(form)}
    first = client.post(f"/invoices/{desk.bill.id}/communicate", data=data, follow_redirects=False)
    second = client.post(f"/invoices/{desk.bill.id}/communicate", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303, first.text
    assert desk.count() == 1
    [message] = smtp_server.to(desk.contact)
    assert message["Subject"] == f"Invoice {desk.number} (edited)"
    # The edited text is sent as written (not rendered again as a template).
    assert message.get_body(("plain",)).get_content().strip() == "Please pay {{ soon }}."
    [pdf] = list(message.iter_attachments())
    assert pdf.get_filename() == f"{desk.number}.pdf" and pdf.get_content().startswith(b"%PDF")
    after = client.get(second.headers["location"]).text
    assert "Already done" in after and f"Sending the bill to {desk.contact}" in after
    assert "status-sent" in after.split('id="invoice-communications"', 1)[1]
    customer = client.get(f"/customers/{desk.customer_id}").text
    section = customer.split('id="customer-communications"', 1)[1]
    assert desk.contact in section and f"Invoice {desk.number} (edited)" in section and "sent" in section


def test_without_a_mail_server_the_page_says_so_in_words(web, db, settings_env):
    settings_env(smtp_host="")
    desk = Desk(db)
    client = logged_in(web, desk.emails["manager"])
    form = client.get(f"/invoices/{desk.bill.id}/communicate").text
    assert 'id="smtp-missing"' in form
    data = {"template_id": desk.template, "recipient": desk.email, "other": "", "subject": "Your bill",
            "body": "Please pay.", "csrf_token": csrf_of(form), "idempotency_key": once_key_of(form)}
    sent = client.post(f"/invoices/{desk.bill.id}/communicate", data=data, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    after = client.get(sent.headers["location"]).text
    assert f"Not sent to {desk.email}: no mail server is configured" in after
    section = after.split('id="invoice-communications"', 1)[1]
    assert "status-failed" in section and "No mail server is configured" in section
    assert "SmtpNotConfigured" not in after


def test_another_address_is_checked_and_a_draft_is_refused(web, db, smtp_server):
    desk = Desk(db)
    client = logged_in(web, desk.emails["manager"])
    url = f"/invoices/{desk.bill.id}/communicate"
    bad = post_form(client, url, {"template_id": desk.template, "recipient": "other", "other": "not an email",
                                  "subject": "S", "body": "B"}, page=url)
    assert bad.status_code == 422 and 'id="err-other"' in bad.text and desk.count() == 0
    # An address typed while a known one is ticked: asked, never sent silently to the ticked one.
    mixed = post_form(client, url, {"template_id": desk.template, "recipient": desk.email,
                                    "other": "typed@elsewhere.example.com", "subject": "S", "body": "B"}, page=url)
    assert mixed.status_code == 422 and 'id="err-other"' in mixed.text and "Another address" in mixed.text
    assert desk.count() == 0 and smtp_server.to(desk.email) == []
    good = post_form(client, url, {"template_id": desk.template, "recipient": "other",
                                   "other": "boss@elsewhere.example.com", "subject": "S", "body": "B"}, page=url)
    assert good.status_code == 303 and len(smtp_server.to("boss@elsewhere.example.com")) == 1
    draft_url = f"/invoices/{desk.draft.id}/communicate"
    assert 'id="not-billed"' in client.get(draft_url).text
    refused = post_form(client, draft_url, {"template_id": desk.template, "recipient": desk.email, "subject": "S",
                                            "body": "B"}, page=url)
    assert refused.status_code == 409 and "posted or settled" in refused.text
    assert desk.count() == 1


def test_a_member_sees_but_cannot_send(web, db, smtp_server):
    desk = Desk(db)
    client = logged_in(web, desk.emails["member"])
    assert "/communicate" not in client.get(f"/invoices/{desk.bill.id}").text
    form = client.get(f"/invoices/{desk.bill.id}/communicate")
    assert form.status_code == 200 and 'id="read-only"' in form.text and 'id="send-bill"' not in form.text
    refused = post_form(client, f"/invoices/{desk.bill.id}/communicate", {
        "template_id": desk.template, "recipient": desk.email, "subject": "S", "body": "B",
        "idempotency_key": "member-try"}, page=f"/invoices/{desk.bill.id}")
    assert refused.status_code == 403
    assert desk.count() == 0 and smtp_server.messages == []
    saved = post_form(client, f"/settings/bill-templates/{desk.template}", {
        "name": "Mine", "subject": "S", "body": "B", "action": "save", "idempotency_key": "member-save"},
        page="/settings/bill-templates")
    assert saved.status_code == 403
    with db.read() as s:
        assert communications.get_template(s, desk.ws.id, desk.template).name == communications.DEFAULT_TEMPLATE_NAME


def test_bill_templates_page_preview_save_and_sandbox(web, db):
    desk = Desk(db)
    client = logged_in(web, desk.emails["manager"])
    assert 'href="/settings/bill-templates"' in client.get("/settings").text
    page = client.get("/settings/bill-templates").text
    assert f'href="/settings/bill-templates/{desk.template}"' in page
    preview = post_form(client, "/settings/bill-templates", {
        "name": "Reminder", "subject": "Reminder: {{ invoice.number }}", "body": "Due {{ invoice.due_date }}",
        "action": "preview"}, page="/settings/bill-templates")
    assert preview.status_code == 200 and f"Reminder: {desk.number}" in preview.text  # the latest bill
    unsafe = post_form(client, "/settings/bill-templates", {
        "name": "Hostile", "subject": "S", "body": "{{ invoice.__class__.__mro__ }}", "action": "save"},
        page="/settings/bill-templates")
    assert unsafe.status_code == 422 and 'id="err-body"' in unsafe.text
    saved = post_form(client, "/settings/bill-templates", {
        "name": "Reminder", "subject": "Reminder: {{ invoice.number }}", "body": "Due {{ invoice.due_date }}",
        "action": "save"}, page="/settings/bill-templates")
    assert saved.status_code == 303
    with db.read() as s:
        rows = {t.name: t.id for t in communications.list_templates(s, actor=desk.actor)}
    assert sorted(rows) == ["Bill", "Reminder"]
    form = client.get(f"/invoices/{desk.bill.id}/communicate?template_id={rows['Reminder']}").text
    assert f'value="Reminder: {desk.number}"' in form
