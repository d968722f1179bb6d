"""/v1/email-settings, /v1/email-templates, /v1/email-log."""

from __future__ import annotations

from datetime import timedelta

from creditdesk import clock
from creditdesk.notify import expiry_emails


def _key(n: str) -> dict:
    return {"Idempotency-Key": f"emails-{n}-{clock.now().timestamp()}"}


def test_settings_templates_preview_and_log(client, workspace, smtp_server, frozen_clock, db):
    h = workspace.headers
    got = client.get("/v1/email-settings", headers=h)
    assert got.status_code == 200, got.text
    assert got.json()["warning_days"] == 14 and got.json()["smtp_configured"] is True
    r = client.patch("/v1/email-settings", json={"warning_days": 7, "default_language": "DE"}, headers=h | _key("s"))
    assert r.status_code == 200, r.text
    assert (r.json()["warning_days"], r.json()["default_language"]) == (7, "de")
    r = client.patch("/v1/email-settings", json={"smtp_password": "x"}, headers=h | _key("s2"))
    assert r.status_code == 422

    r = client.put("/v1/email-templates", json={"event": "warning", "language": "de",
                                                 "subject": "{{ pack.name }} bald weg", "text_body": "Hallo"},
                   headers=h | _key("t"))
    assert r.status_code == 200, r.text
    assert r.json()["is_default"] is False
    r = client.put("/v1/email-templates", json={"event": "warning", "language": "de",
                                                 "subject": "{{ ''.__class__.__mro__ }}", "text_body": "x"},
                   headers=h | _key("t2"))
    assert r.status_code == 422 and r.json()["code"] in ("template_unsafe", "template_invalid"), r.text
    r = client.put("/v1/email-templates", json={"event": "birthday", "language": "de", "subject": "s",
                                                 "text_body": "x"}, headers=h | _key("t3"))
    assert r.status_code == 422
    listed = client.get("/v1/email-templates", headers=h).json()["data"]
    assert {(t["event"], t["language"]) for t in listed} == {("warning", "de"), ("expired", "de"), ("balance_low", "de")}
    [fr] = client.get("/v1/email-templates?event=expired&language=fr", headers=h).json()["data"]
    assert fr["is_default"] is True and fr["language"] == "fr"

    r = client.post("/v1/email-templates/preview", json={"event": "expired", "subject": "{{ pack.name }}",
                                                         "text_body": "{{ customer.name }}"}, headers=h | _key("p"))
    assert r.status_code == 200, r.text
    assert r.json()["subject"] == "10 massages"

    log = client.get("/v1/email-log", headers=h)
    assert log.status_code == 200 and log.json()["data"] == []
    assert client.get("/v1/email-log?state=nope", headers=h).status_code == 422
