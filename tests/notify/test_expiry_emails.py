"""Expiry emails through a real SMTP server on loopback: once per pack and event, also with two jobs at
once or a job that dies between its claim and the send; failures retried with backoff."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from creditdesk import clock
from creditdesk.config import get_settings
from creditdesk.jobs import runner
from creditdesk.notify import expiry_emails, schemas, service
from creditdesk.notify.models import EmailSend
from tests.credits.helpers import grant
from tests.notify.conftest import make_email_shop


def _pack(db, shop, *, days: float, name: str = "10 massages") -> str:
    return grant(db, shop.actor, "customer", shop.customer_id, 10, credit_type="massage", name=name,
                 expires_at=clock.now() + timedelta(days=days))


def _run(db, shop) -> dict:
    return expiry_emails.send_due(db, workspace_id=shop.workspace_id)


def _log(db, shop) -> list[EmailSend]:
    with db.read() as s:
        rows = list(s.scalars(select(EmailSend).where(EmailSend.workspace_id == shop.workspace_id)
                              .order_by(EmailSend.id)))
        s.expunge_all()
        return rows


def test_warning_once_then_expired_notice_once(db, shop, smtp_server, frozen_clock):
    pack = _pack(db, shop, days=10)
    assert _run(db, shop)["sent"] == 1
    assert _run(db, shop)["sent"] == 0  # the second run finds nothing left to do
    [warning] = smtp_server.to(shop.email)
    assert "expires on" in warning["Subject"] and "10 massages" in warning["Subject"]
    assert "in 10 days" in warning.get_body(("plain",)).get_content()
    [row] = _log(db, shop)
    assert (row.pack_id, row.event, row.state, row.attempts) == (pack, "warning", "sent", 1)
    assert row.message_id == warning["Message-ID"] and "Subject:" in row.message

    frozen_clock.advance(days=10, minutes=1)
    runner.expire_due_packs(db, workspace_id=shop.workspace_id)
    assert _run(db, shop)["sent"] == 1
    assert _run(db, shop)["sent"] == 0
    assert [m["Subject"] for m in smtp_server.to(shop.email)][1] == "Your 10 massages has expired"
    assert [(r.event, r.state) for r in _log(db, shop)] == [("warning", "sent"), ("expired", "sent")]


def test_not_due_yet_and_settings_respected(db, shop, smtp_server, frozen_clock):
    _pack(db, shop, days=20)
    assert _run(db, shop)["sent"] == 0
    db.write(lambda s: service.update_settings(s, schemas.EmailSettingsUpdate(warning_days=30), actor=shop.actor))
    db.write(lambda s: service.update_settings(s, schemas.EmailSettingsUpdate(enabled=False), actor=shop.actor))
    assert _run(db, shop)["sent"] == 0
    db.write(lambda s: service.update_settings(s, schemas.EmailSettingsUpdate(enabled=True), actor=shop.actor))
    assert _run(db, shop)["sent"] == 1


def test_two_jobs_at_once_send_each_email_once(db, smtp_server, frozen_clock):
    shop = make_email_shop(db)
    for n in range(6):
        _pack(db, shop, days=5 + n, name=f"Pack {n}")
    smtp_server.delay = 0.05
    barrier = threading.Barrier(2)
    results = []

    def job():
        barrier.wait()
        results.append(_run(db, shop))

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r["sent"] for r in results) == 6
    subjects = [m["Subject"] for m in smtp_server.to(shop.email)]
    assert len(subjects) == 6 and len(set(subjects)) == 6
    assert {r.state for r in _log(db, shop)} == {"sent"}


def test_a_crash_after_the_claim_sends_once_after_the_lease(db, shop, smtp_server, frozen_clock):
    _pack(db, shop, days=3)
    # The job dies right after its claim committed: nothing was sent.
    claims, _ = db.write(lambda s: expiry_emails.claim_due(s, now=clock.now(), limit=10,
                                                          workspace_id=shop.workspace_id))
    assert len(claims) == 1
    assert _run(db, shop)["sent"] == 0  # the lease still holds: nobody else sends it
    assert smtp_server.to(shop.email) == []
    frozen_clock.advance(seconds=get_settings().email_lease_seconds + 1)
    assert _run(db, shop)["sent"] == 1
    assert _run(db, shop)["sent"] == 0
    assert len(smtp_server.to(shop.email)) == 1
    [row] = _log(db, shop)
    assert (row.state, row.attempts) == ("sent", 2)


def test_a_crash_during_the_send_is_retried_after_the_lease_with_the_same_message_id(db, shop, smtp_server,
                                                                                    frozen_clock):
    _pack(db, shop, days=3)
    claims, _ = db.write(lambda s: expiry_emails.claim_due(s, now=clock.now(), limit=10,
                                                          workspace_id=shop.workspace_id))

    def dies(outgoing, settings):
        raise SystemExit("killed mid-send")  # not an Exception: nothing is recorded, like a kill

    with pytest.raises(SystemExit):
        expiry_emails.deliver(db, claims[0], send=dies)
    assert [r.state for r in _log(db, shop)] == ["sending"]
    assert _run(db, shop)["sent"] == 0
    frozen_clock.advance(seconds=get_settings().email_lease_seconds + 1)
    assert _run(db, shop)["sent"] == 1
    [arrived] = smtp_server.to(shop.email)
    [row] = _log(db, shop)
    assert row.state == "sent" and arrived["Message-ID"] == row.message_id
    assert row.error == expiry_emails.INTERRUPTED  # the log says a duplicate was possible


def test_a_late_job_cannot_overwrite_a_row_taken_over(db, shop, smtp_server, frozen_clock):
    _pack(db, shop, days=3)
    claims, _ = db.write(lambda s: expiry_emails.claim_due(s, now=clock.now(), limit=10,
                                                          workspace_id=shop.workspace_id))
    frozen_clock.advance(seconds=get_settings().email_lease_seconds + 1)
    assert _run(db, shop)["sent"] == 1
    # The first job wakes up after its lease: its claim is no longer its own, it sends nothing.
    assert expiry_emails.deliver(db, claims[0]) == "taken_over"
    assert len(smtp_server.to(shop.email)) == 1


def test_failure_then_retry_with_backoff(db, shop, smtp_server, frozen_clock, settings_env):
    settings_env(email_retry_base_seconds=60, email_max_attempts=3)
    _pack(db, shop, days=3)
    smtp_server.refuse_next = 2
    assert _run(db, shop) == {"sent": 0, "failed": 1, "skipped": 0}
    [row] = _log(db, shop)
    assert row.state == "retrying" and "451" in row.error
    assert row.next_attempt_at == clock.now() + timedelta(seconds=60)
    assert _run(db, shop)["sent"] == 0  # not before the backoff
    frozen_clock.advance(seconds=61)
    assert _run(db, shop)["failed"] == 1
    [row] = _log(db, shop)
    assert row.attempts == 2 and row.next_attempt_at == clock.now() + timedelta(seconds=120)  # doubled
    frozen_clock.advance(seconds=121)
    assert _run(db, shop)["sent"] == 1
    [row] = _log(db, shop)
    assert (row.state, row.attempts, row.error) == ("sent", 3, None)
    assert len(smtp_server.to(shop.email)) == 1


def test_gives_up_after_the_last_attempt(db, shop, smtp_server, frozen_clock, settings_env):
    settings_env(email_retry_base_seconds=10, email_max_attempts=2)
    _pack(db, shop, days=3)
    smtp_server.refuse_next = 5
    _run(db, shop)
    frozen_clock.advance(seconds=11)
    _run(db, shop)
    [row] = _log(db, shop)
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 2, None)
    frozen_clock.advance(days=1)
    assert _run(db, shop)["sent"] == 0


def test_a_customer_without_email_is_logged_as_skipped(db, smtp_server, frozen_clock):
    shop = make_email_shop(db, email=None)
    _pack(db, shop, days=3)
    assert _run(db, shop) == {"sent": 0, "failed": 0, "skipped": 1}
    [row] = _log(db, shop)
    assert row.state == "skipped" and "no email address" in row.error
    assert _run(db, shop)["skipped"] == 0


def test_the_customers_language_then_the_workspace_default(db, smtp_server, frozen_clock):
    shop = make_email_shop(db, language="de-AT")
    db.write(lambda s: service.put_template(s, "warning", "de", schemas.EmailTemplateIn(
        subject="{{ pack.name }} läuft am {{ pack.expires_on }} ab", text_body="Hallo {{ customer.name }}"),
        actor=shop.actor))
    english = make_email_shop(db, language="fr")  # no French template: the workspace default (shipped English)
    _pack(db, shop, days=3)
    _pack(db, english, days=3)
    _run(db, shop)
    _run(db, english)
    [de] = smtp_server.to(shop.email)
    assert de["Subject"].startswith("10 massages läuft am") and _log(db, shop)[0].language == "de"
    [en] = smtp_server.to(english.email)
    assert en["Subject"].startswith("Your 10 massages expires") and _log(db, english)[0].language == "en"


def test_html_body_is_escaped(db, smtp_server, frozen_clock):
    shop = make_email_shop(db)
    _pack(db, shop, days=3, name="<script>x</script>")
    _run(db, shop)
    [message] = smtp_server.to(shop.email)
    html = message.get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_runs_inside_the_job_loop_pass(db, shop, smtp_server, frozen_clock):
    _pack(db, shop, days=3)
    assert runner.run_all(db)["expiry_emails"] >= 1
    assert len(smtp_server.to(shop.email)) == 1
    runner.run_all(db)
    assert len(smtp_server.to(shop.email)) == 1


def test_nothing_is_claimed_without_an_smtp_host(db, shop, frozen_clock, settings_env):
    settings_env(smtp_host="")
    _pack(db, shop, days=3)
    assert _run(db, shop) == {"sent": 0, "failed": 0, "skipped": 0}
    assert _log(db, shop) == []


def test_two_processes_at_once_send_each_email_once(db, smtp_server):
    """`creditdesk emails send-due` twice at the same moment, as two cron jobs on two nodes would."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    shop = make_email_shop(db)  # the real clock: the subprocesses cannot see a frozen one
    for n in range(4):
        _pack(db, shop, days=2 + n, name=f"Process pack {n}")
    smtp_server.delay = 0.05
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = os.environ | {"PYTHONPATH": src, "CREDITDESK_DATABASE_URL": db.url}
    command = [sys.executable, "-m", "creditdesk.cli", "emails", "send-due", "--workspace", shop.workspace_id,
               "--batch-size", "2"]
    jobs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [job.communicate(timeout=120)[0].decode() for job in jobs]
    assert all(job.returncode == 0 for job in jobs), outputs
    subjects = [m["Subject"] for m in smtp_server.to(shop.email)]
    assert len(subjects) == 4 and len(set(subjects)) == 4, outputs
    assert {r.state for r in _log(db, shop)} == {"sent"}


def test_the_cli_refuses_without_smtp_host(db, settings_env):
    from typer.testing import CliRunner

    from creditdesk.cli import app

    settings_env(smtp_host="")
    result = CliRunner().invoke(app, ["emails", "send-due", "--database-url", db.url])
    assert result.exit_code == 1 and "CREDITDESK_SMTP_HOST" in result.output
