"""Templates: sandboxed, checked before they are stored, previewed with a sample pack."""

from __future__ import annotations

import pytest

from creditdesk.errors import InvalidInput, NotPermitted
from creditdesk.notify import schemas, service, templates
from tests.notify.conftest import make_email_shop


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ pack.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{% set x = customer.update({'name': 'x'}) %}",
    "{{ 'x' * 1000000000 }}",
    "{{ 2 ** 100000000 }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}.{% endfor %}{% endfor %}",
    "{{ lipsum(100000) }}",
])
def test_the_sandbox_refuses_unsafe_access(source):
    with pytest.raises(InvalidInput) as err:
        templates.check(templates.TemplateText(subject="s", text_body=source, html_body=None))
    assert err.value.code in ("template_unsafe", "template_invalid")


def test_unknown_variables_and_bad_syntax_are_refused():
    with pytest.raises(InvalidInput) as err:
        templates.check(templates.TemplateText(subject="{{ nope }}", text_body="x", html_body=None))
    assert err.value.code == "template_invalid"
    for broken in ("{% if %}", "{{ 1 / 0 }}", "{{ 'a' + 1 }}", "{{ pack.quantity[3] }}"):
        with pytest.raises(InvalidInput):
            templates.check(templates.TemplateText(subject=broken, text_body="x", html_body=None))


def test_preview_renders_a_sample_pack(db):
    shop = make_email_shop(db)
    out = db.write(lambda s: service.preview(s, schemas.PreviewIn(
        event="warning", subject="{{ pack.name }} / {{ days_left }}", text_body="Hi {{ customer.name }}",
        html_body="<b>{{ pack.name }}</b>{{ '<i>' }}"), actor=shop.actor))
    assert out.subject == "10 massages / 10"
    assert out.text_body == "Hi Ada Example"
    assert out.html_body == "<b>10 massages</b>&lt;i&gt;"


def test_put_then_get_and_list(db):
    shop = make_email_shop(db)
    db.write(lambda s: service.put_template(s, "expired", "fr", schemas.EmailTemplateIn(
        subject="Expiré", text_body="Bonjour"), actor=shop.actor))
    with db.read() as s:
        got = service.get_template(s, shop.workspace_id, "expired", "FR")
        listed = service.list_templates(s, shop.workspace_id)
    assert (got.subject, got.is_default) == ("Expiré", False)
    assert [(t.event, t.language, t.is_default) for t in listed] == [
        ("warning", "en", True), ("expired", "en", True), ("expired", "fr", False), ("balance_low", "en", True)]


def test_only_masters_change_templates_and_settings(db):
    from dataclasses import replace

    shop = make_email_shop(db)
    member = replace(shop.actor, role="member", user_id="usr_x")
    with pytest.raises(NotPermitted):
        db.write(lambda s: service.put_template(s, "warning", "en", schemas.EmailTemplateIn(
            subject="s", text_body="b"), actor=member))
    with pytest.raises(NotPermitted):
        db.write(lambda s: service.update_settings(s, schemas.EmailSettingsUpdate(warning_days=3), actor=member))
