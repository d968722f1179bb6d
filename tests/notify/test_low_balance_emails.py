"""Low-balance emails (issue 16) through a real SMTP server on loopback: a balance falling below its threshold
sends one email to the holder's contacts, once per crossing, also with two jobs at once, a job that dies
between its claim and the send, and 16 consumers crossing together; nobody to write to is skipped with the
reason; the switch and the templates are the workspace's."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from creditdesk.credits import low_balance
from creditdesk.credits import schemas as cs
from creditdesk.notify import expiry_emails, schemas, service
from creditdesk.notify.models import EmailSend
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from tests.credits.helpers import consume, credit_type, grant
from tests.notify.conftest import make_email_shop


@pytest.fixture
def hours_shop(db, frozen_clock):
    shop = make_email_shop(db)
    credit_type(db, shop.actor, "hours", scale=2)
    office = db.write(lambda s: parties.create_office(s, ps.OfficeCreate(name="London office",
                                                                         customer_id=shop.customer_id),
                                                      actor=shop.actor).id)
    grant(db, shop.actor, "office", office, 1000, credit_type="hours", name="Ten hours")
    db.write(lambda s: low_balance.set_threshold(s, cs.ThresholdSet(
        credit_type="hours", threshold=300, holder={"kind": "office", "id": office}), actor=shop.actor))
    shop.office = office
    return shop


def _run(db, shop) -> dict:
    return expiry_emails.send_due(db, workspace_id=shop.workspace_id)


def _log(db, shop) -> list[EmailSend]:
    with db.read() as s:
        rows = list(s.scalars(select(EmailSend).where(EmailSend.workspace_id == shop.workspace_id,
                                                      EmailSend.event == "balance_low").order_by(EmailSend.id)))
        s.expunge_all()
        return rows


def test_a_crossing_sends_one_email_to_the_customer(db, hours_shop, smtp_server, frozen_clock):
    shop = hours_shop
    consume(db, shop.actor, "office", shop.office, 600, credit_type="hours")  # 10.00 -> 4.00: not below 3.00
    assert _run(db, shop)["sent"] == 0
    consume(db, shop.actor, "office", shop.office, 175, credit_type="hours")  # 4.00 -> 2.25: crossed
    consume(db, shop.actor, "office", shop.office, 25, credit_type="hours")  # still below: no new crossing
    assert _run(db, shop)["sent"] == 1
    assert _run(db, shop)["sent"] == 0
    [mail] = smtp_server.to(shop.email)
    assert mail["Subject"] == "London office: 2.25 hours left"
    body = mail.get_body(("plain",)).get_content()
    assert "Hello Ada Client" in body and "fallen below 3.00 hours" in body and "2.25 hours are left" in body
    [row] = _log(db, shop)
    assert (row.pack_id, row.state, row.recipient, row.attempts) == (None, "sent", shop.email, 1)
    assert row.crossing_id and row.message_id == mail["Message-ID"]
    # Back above the threshold and below again: a second crossing, a second email.
    grant(db, shop.actor, "office", shop.office, 500, credit_type="hours", name="Five more")
    consume(db, shop.actor, "office", shop.office, 600, credit_type="hours")
    assert _run(db, shop)["sent"] == 1
    assert [m["Subject"] for m in smtp_server.to(shop.email)] == ["London office: 2.25 hours left",
                                                                 "London office: 1.00 hours left"]


def test_the_holders_own_address_comes_first_and_nobody_is_skipped_with_the_reason(db, hours_shop, smtp_server,
                                                                                    frozen_clock):
    shop = hours_shop
    db.write(lambda s: parties.update_office(s, shop.office, ps.OfficeUpdate(email="london@acme.example"),
                                             actor=shop.actor))
    consume(db, shop.actor, "office", shop.office, 800, credit_type="hours")
    assert _run(db, shop)["sent"] == 1
    assert len(smtp_server.to("london@acme.example")) == 1 and smtp_server.to(shop.email) == []
    # The workspace's own pool has no contact: skipped, with the reason in the log.
    grant(db, shop.actor, "workspace", shop.workspace_id, 500, credit_type="hours", name="Pool")
    db.write(lambda s: low_balance.set_threshold(s, cs.ThresholdSet(
        credit_type="hours", threshold=300, holder={"kind": "workspace", "id": shop.workspace_id}),
        actor=shop.actor))
    consume(db, shop.actor, "workspace", shop.workspace_id, 400, credit_type="hours")
    assert _run(db, shop) == {"sent": 0, "failed": 0, "skipped": 1}
    skipped = [r for r in _log(db, shop) if r.state == "skipped"]
    assert len(skipped) == 1 and "no customer contact" in skipped[0].error


def test_switched_off_or_too_old_nothing_is_sent(db, hours_shop, smtp_server, frozen_clock):
    shop = hours_shop
    db.write(lambda s: service.update_settings(s, schemas.EmailSettingsUpdate(send_balance_low=False),
                                               actor=shop.actor))
    consume(db, shop.actor, "office", shop.office, 800, credit_type="hours")
    assert _run(db, shop)["sent"] == 0 and _log(db, shop) == []
    # Switched on four days later: that crossing is too old to mail (a switch must not mail the past).
    frozen_clock.advance(days=4)
    db.write(lambda s: service.update_settings(s, schemas.EmailSettingsUpdate(send_balance_low=True),
                                               actor=shop.actor))
    assert _run(db, shop)["sent"] == 0 and smtp_server.messages == []


def test_two_jobs_at_once_and_a_job_that_died_send_once(db, hours_shop, smtp_server, frozen_clock):
    shop = hours_shop
    consume(db, shop.actor, "office", shop.office, 800, credit_type="hours")
    # A job claims the email and dies before sending: nothing goes out until its lease has passed.
    claims, _ = db.write(lambda s: expiry_emails.claim_due(s, now=frozen_clock.now(), limit=10,
                                                           workspace_id=shop.workspace_id))
    assert len(claims) == 1
    assert _run(db, shop)["sent"] == 0 and smtp_server.messages == []
    frozen_clock.advance(seconds=expiry_emails.get_settings().email_lease_seconds + 1)
    smtp_server.delay = 0.3
    results = []
    jobs = [threading.Thread(target=lambda: results.append(_run(db, shop))) for _ in range(2)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert sum(r["sent"] for r in results) == 1
    assert len(smtp_server.to(shop.email)) == 1
    [row] = _log(db, shop)
    assert (row.state, row.attempts) == ("sent", 2)


def test_sixteen_consumers_crossing_together_send_one_email(db, hours_shop, smtp_server):
    shop = hours_shop
    errors = []

    def consumer():
        try:
            for _ in range(3):
                consume(db, shop.actor, "office", shop.office, 15, credit_type="hours")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
    threads = [threading.Thread(target=consumer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # 48 consumptions of 0.15 hours: 10.00 -> 2.80, through 3.00 once.
    assert _run(db, shop)["sent"] == 1
    assert _run(db, shop)["sent"] == 0
    assert len(smtp_server.to(shop.email)) == 1 and len(_log(db, shop)) == 1


def test_the_template_is_the_workspaces_and_previews_on_a_sample_balance(db, hours_shop, smtp_server,
                                                                         frozen_clock):
    shop = hours_shop
    db.write(lambda s: service.put_template(s, "balance_low", "en", schemas.EmailTemplateIn(
        subject="Only {{ balance.remaining }} {{ balance.unit }} left for {{ balance.holder }}",
        text_body="{{ balance.credit_type }} under {{ balance.threshold }}"), actor=shop.actor))
    with db.read() as s:
        preview = service.preview(s, schemas.PreviewIn(event="balance_low", subject="{{ balance.holder }}",
                                                       text_body="{{ balance.remaining }}"), actor=shop.actor)
    assert (preview.subject, preview.text_body) == ("London office", "4.50")
    # A pack variable in a balance template does not render: refused before it is stored.
    from creditdesk.errors import InvalidInput
    with pytest.raises(InvalidInput):
        db.write(lambda s: service.put_template(s, "balance_low", "en", schemas.EmailTemplateIn(
            subject="{{ pack.name }}", text_body="x"), actor=shop.actor))
    consume(db, shop.actor, "office", shop.office, 800, credit_type="hours")
    assert _run(db, shop)["sent"] == 1
    [mail] = smtp_server.to(shop.email)
    assert mail["Subject"] == "Only 2.00 hours left for London office"
    assert mail.get_body(("plain",)).get_content().strip() == "Hours under 3.00"

