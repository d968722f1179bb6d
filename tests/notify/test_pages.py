"""Settings > Emails in the back office (TestClient): settings, a template with its preview, the send log
with the message as sent; masters change, staff read."""

from __future__ import annotations

from datetime import timedelta

from creditdesk import clock
from creditdesk.notify import expiry_emails
from tests.credits.helpers import grant
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in, post_form, web, world  # noqa: F401 (fixtures)


def test_settings_template_preview_and_log(web, db, world, smtp_server, frozen_clock):
    client = logged_in(web, world.master_email)
    page = client.get("/settings/emails")
    assert page.status_code == 200 and 'id="email-settings"' in page.text and "No email yet." in page.text
    assert "/settings/emails" in client.get("/settings").text
    r = post_form(client, "/settings/emails", {"enabled": "on", "send_warning": "on", "warning_days": "0",
                                               "default_language": "en"}, page="/settings/emails")
    assert r.status_code == 422 and 'id="err-warning_days"' in r.text
    r = post_form(client, "/settings/emails", {"enabled": "on", "send_warning": "on", "send_expired": "on",
                                               "warning_days": "20", "default_language": "en"},
                  page="/settings/emails")
    assert r.status_code == 303, r.text
    assert 'value="20"' in client.get("/settings/emails").text

    url = "/settings/emails/templates/warning/en"
    assert client.get(url).status_code == 200
    preview = post_form(client, url, {"action": "preview", "subject": "{{ pack.name }} soon",
                                      "text_body": "Hi {{ customer.name }}", "html_body": "<p>{{ pack.name }}</p>"},
                        page=url)
    assert preview.status_code == 200 and 'id="preview-subject">10 massages soon' in preview.text
    assert 'srcdoc="&lt;p&gt;10 massages&lt;/p&gt;"' in preview.text
    unsafe = post_form(client, url, {"action": "save", "subject": "{{ ''.__class__.__mro__ }}", "text_body": "x"},
                       page=url)
    assert unsafe.status_code == 422
    saved = post_form(client, url, {"action": "save", "subject": "{{ pack.name }} soon", "text_body": "Hi"}, page=url)
    assert saved.status_code == 303, saved.text
    assert "(default)" not in client.get("/settings/emails").text.split('id="email-templates"')[1].split("</table>")[0] \
        .split("Expiry warning")[1].split("</tr>")[0]
    assert client.get("/settings/emails/template?event=expired&language=de",
                      follow_redirects=False).headers["location"] == "/settings/emails/templates/expired/de"

    # A pack of the world's customer, due for its warning: sent, and shown in the log.
    actor = master_actor(db, world.workspace_id)
    from creditdesk.parties.models import Customer
    db.write(lambda s: setattr(s.get(Customer, world.customer_id), "email", "world@example.com"))
    grant(db, actor, "customer", world.customer_id, 500, credit_type="hours", name="Web pack",
          expires_at=clock.now() + timedelta(days=3))
    expiry_emails.send_due(db, workspace_id=world.workspace_id)
    log = client.get("/settings/emails").text
    assert 'data-state="sent"' in log and "world@example.com" in log
    entry = log.split('href="/settings/emails/log/')[1].split('"')[0]
    shown = client.get(f"/settings/emails/log/{entry}").text
    assert 'id="email-message"' in shown and "Message-ID:" in shown
    package = shown.split("<dt>Package</dt>", 1)[1].split("</dd>", 1)[0]
    assert ">Web pack</a>" in package  # by name, the id in the title
    assert 'id="email-state">sent<' in shown


def test_staff_read_but_do_not_change(web, db, world, smtp_server):
    client = logged_in(web, world.member_email)
    assert client.get("/settings/emails").status_code == 200
    assert 'name="warning_days"' not in client.get("/settings/emails").text
    r = post_form(client, "/settings/emails", {"warning_days": "3"}, page="/settings/emails")
    assert r.status_code == 403
