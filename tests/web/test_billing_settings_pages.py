"""Settings > Billing (issue 17, "no dead ends"): the billing settings, seller details and conversion rates that
had only an API. Masters change them (the API's rule: settings.require_finance); managers and members read the
page and are refused a forged post with 403, as PATCH /v1/billing/settings refuses them; every problem of a form
is shown next to its field at once, in words, the values kept, and nothing is written."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from creditdesk.billing import settings
from creditdesk.billing.models import ConversionRate
from creditdesk.parties.models import Workspace
from tests.billing.factories import configure
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in, post_form

PAGE = "/settings/billing"
GOOD = {"default_currency": "aud", "multi_currency": "on", "enabled_currencies": "EUR, usd", "credit_period_days": "30",
        "min_days": "14", "max_days": "60", "period_frequency": "", "period_start": ""}
RAW = ("Input should", "Value error", "PATCH", "/v1/", "POST /", "field required", "credit_period_days <=",
       "min_days", "default_currency", "string_", "require_finance", "type=")


def stored(db, workspace_id):
    with db.read() as session:
        row = settings.get_settings(session, workspace_id)
        out = None if row is None else settings.settings_out(row).model_dump()
        ws = session.get(Workspace, workspace_id)
        seller = ((ws.settings or {}).get("sms") or {}).get("seller")
        rates = session.scalar(select(func.count()).select_from(ConversionRate).where(
            ConversionRate.workspace_id == workspace_id))
    return out, seller, rates


def error_of(html: str, name: str) -> str | None:
    """The message shown next to field `name`, after checking the field points at it."""
    match = re.search(rf'<span class="field-error" id="err-{name}">([^<]*)</span>', html)
    if match is None:
        return None
    field = re.search(rf'<(input|select|textarea)[^>]*name="{name}"[^>]*>', html)
    assert field, f"no field {name}"
    tag = field.group(0)
    assert 'aria-invalid="true"' in tag and f'aria-describedby="err-{name}"' in tag, tag
    return match.group(1)


def no_raw_wording(html: str) -> None:
    body = html.split("<main", 1)[-1]
    visible = re.sub(r"<[^>]+>", " ", body)
    for raw in RAW:
        assert raw not in visible, raw


def test_the_account_form_links_to_the_screen_in_words(web, db, world):
    for email, may in ((world.master_email, True), (world.manager_email, False)):
        client = logged_in(web, email)
        page = client.get(f"/accounts/new?customer_id={world.customer_id}").text
        message = page.split('id="billing-settings-needed"', 1)[1].split("</div>", 1)[0]
        assert 'href="/settings/billing"' in message and "billing settings" in message
        assert "PATCH" not in page and "/v1/" not in page
        assert ("Set them first" in message) is may
        client.post("/logout", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)})
    # Reached from Settings too.
    client = logged_in(web, world.master_email)
    assert f'href="{PAGE}"' in client.get("/settings").text
    # Posting the account form anyway: the same plain message, never the API's.
    refused = post_form(client, "/accounts/new", {"customer_id": world.customer_id, "name": "Too early"},
                        page=f"/accounts/new?customer_id={world.customer_id}")
    assert refused.status_code == 409 and 'href="/settings/billing"' in refused.text
    no_raw_wording(refused.text)
    # Once set, the message is gone.
    configure(db, actor=master_actor(db, world.workspace_id))
    assert 'id="billing-settings-needed"' not in client.get("/accounts/new").text


def test_a_master_sets_everything_from_the_page(web, db, world):
    client = logged_in(web, world.master_email)
    page = client.get(PAGE).text
    assert 'id="billing-not-set"' in page and 'id="billing-settings-form"' in page and 'id="rate-form"' in page
    saved = post_form(client, PAGE, {**GOOD, "period_frequency": "monthly", "period_start": "2027-01-01"}, page=PAGE)
    assert saved.status_code == 303, saved.text
    out, _, _ = stored(db, world.workspace_id)
    assert out["default_currency"] == "AUD" and out["multi_currency"] is True
    assert out["enabled_currencies"] == ["EUR", "USD"]
    assert out["credit_terms"] == {"credit_period_days": 30, "min_days": 14, "max_days": 60}
    assert out["accounting_periods"] == {"frequency": "monthly", "start_date": __import__("datetime").date(2027, 1, 1)}
    page = client.get(PAGE).text
    # Accounting periods: read-only once set, with why.
    periods = page.split('id="accounting-periods"', 1)[1].split("</fieldset>", 1)[0]
    assert 'name="period_frequency"' not in periods and "Monthly" in periods and "2027-01-01" in periods
    assert "Set once" in periods and "opening balance" in periods
    # The rest can change; a forged period change is refused in words, nothing written.
    again = post_form(client, PAGE, {**GOOD, "credit_period_days": "45"}, page=PAGE)
    assert again.status_code == 303
    assert stored(db, world.workspace_id)[0]["credit_terms"]["credit_period_days"] == 45
    before = stored(db, world.workspace_id)
    forged = post_form(client, PAGE, {**GOOD, "period_frequency": "yearly", "period_start": "2028-01-01"}, page=PAGE)
    assert forged.status_code == 409 and "set once" in forged.text
    no_raw_wording(forged.text)
    assert stored(db, world.workspace_id) == before
    # Seller details: on invoices and receipts.
    seller = post_form(client, f"{PAGE}/seller", {
        "seller_name": "Widget Pty Ltd", "seller_address": "1 Main St\nSydney", "seller_tax_id": "ABN 1",
        "seller_email": "billing@widget.example"}, page=PAGE)
    assert seller.status_code == 303, seller.text
    assert stored(db, world.workspace_id)[1] == {"name": "Widget Pty Ltd", "address": "1 Main St\nSydney",
                                                 "tax_id": "ABN 1", "email": "billing@widget.example"}
    # A conversion rate, listed; the same pair and day again is refused next to the day.
    rate = post_form(client, f"{PAGE}/rates", {"from_currency": "eur", "to_currency": "AUD", "rate": "1.635",
                                               "valid_from": "2027-01-01"}, page=PAGE)
    assert rate.status_code == 303, rate.text
    page = client.get(PAGE).text
    assert "1 EUR = 1.635 AUD" in page and "2027-01-01" in page.split('id="rate-list"', 1)[1]
    twice = post_form(client, f"{PAGE}/rates", {"from_currency": "EUR", "to_currency": "AUD", "rate": "1.7",
                                                "valid_from": "2027-01-01"}, page=PAGE)
    assert twice.status_code == 422 and "already" in error_of(twice.text, "valid_from")
    no_raw_wording(twice.text)
    assert stored(db, world.workspace_id)[2] == 1


def test_managers_and_members_read_but_are_refused_as_by_the_api(web, db, world):
    configure(db, actor=master_actor(db, world.workspace_id))
    before = stored(db, world.workspace_id)
    for email in (world.manager_email, world.member_email):
        web.cookies.clear()
        client = logged_in(web, email)
        page = client.get(PAGE)
        assert page.status_code == 200
        assert 'id="billing-settings-form"' not in page.text and 'id="seller-form"' not in page.text
        assert 'id="rate-form"' not in page.text and "AUD" in page.text and 'id="read-only-note"' in page.text
        for path, data in ((PAGE, {**GOOD, "credit_period_days": "20"}),
                           (f"{PAGE}/seller", {"seller_name": "Stolen"}),
                           (f"{PAGE}/rates", {"from_currency": "EUR", "to_currency": "AUD", "rate": "9",
                                              "valid_from": "2030-01-01", "idempotency_key": "k-" + email})):
            refused = post_form(client, path, data, page=PAGE)
            assert refused.status_code == 403, (email, path, refused.text)
            assert "Only master users" in refused.text
    assert stored(db, world.workspace_id) == before


def test_the_api_and_the_page_agree_on_who(web, app, db, world):
    """The page's rule is the API's: a manager's API key is refused PATCH /v1/billing/settings as the page refuses
    the manager, and the master's allowed."""
    from creditdesk.parties import schemas as ps
    from creditdesk.parties import service as parties
    from creditdesk.parties.models import User

    def keys(session):
        out = {}
        for role in ("master", "manager"):
            user = session.scalar(select(User).where(User.workspace_id == world.workspace_id, User.role == role,
                                                     User.is_staff.is_(True)))
            _, secret = parties.create_api_key(session, ps.ApiKeyCreate(name=f"{role} key", user_id=user.id),
                                               actor=master_actor_of(session, world.workspace_id))
            out[role] = secret
        return out
    secrets_ = db.write(keys)
    from fastapi.testclient import TestClient

    with TestClient(app) as api:
        body = {"default_currency": "AUD"}
        manager = api.patch("/v1/billing/settings", json=body,
                            headers={"Authorization": f"Bearer {secrets_['manager']}"})
        assert manager.status_code == 403
        master = api.patch("/v1/billing/settings", json=body, headers={"Authorization": f"Bearer {secrets_['master']}"})
        assert master.status_code == 200


def master_actor_of(session, workspace_id):
    from creditdesk.parties import service as parties
    from creditdesk.parties.models import User

    master = session.scalar(select(User).where(User.workspace_id == workspace_id, User.role == "master"))
    return parties.actor_for_user(session, master)


def test_every_problem_next_to_its_field_and_nothing_written(web, db, world):
    client = logged_in(web, world.master_email)
    # Nothing set yet: no default currency, bad codes, days that are not numbers, a period half chosen.
    bad = post_form(client, PAGE, {"default_currency": "", "enabled_currencies": "EUR, XQZ, 12",
                                   "credit_period_days": "thirty", "min_days": "-3", "max_days": "99999",
                                   "period_frequency": "monthly", "period_start": "31/01/2027"}, page=PAGE)
    assert bad.status_code == 422
    html = bad.text
    assert "Choose the default currency" in error_of(html, "default_currency")
    assert "XQZ" in error_of(html, "enabled_currencies") and "12" in error_of(html, "enabled_currencies")
    assert "whole number" in error_of(html, "credit_period_days")
    assert "whole number" in error_of(html, "min_days")
    assert "at most 3650" in error_of(html, "max_days")
    assert "not a date" in error_of(html, "period_start")
    assert error_of(html, "period_frequency") is None
    assert 'value="thirty"' in html and 'value="EUR, XQZ, 12"' in html and 'value="99999"' in html
    assert "Nothing was saved" in html
    no_raw_wording(html)
    assert stored(db, world.workspace_id) == (None, None, 0)
    # A period start without its frequency; a default that is no currency.
    bad = post_form(client, PAGE, {**GOOD, "default_currency": "ZZZ", "period_start": "2027-01-01"}, page=PAGE)
    assert "not a currency code" in error_of(bad.text, "default_currency")
    assert "how often" in error_of(bad.text, "period_frequency")
    assert stored(db, world.workspace_id) == (None, None, 0)
    # The service's own rule (credit period inside its range), next to the credit period, in words.
    out_of_range = post_form(client, PAGE, {**GOOD, "credit_period_days": "90"}, page=PAGE)
    assert out_of_range.status_code == 422
    assert "between the shortest and the longest" in error_of(out_of_range.text, "credit_period_days")
    no_raw_wording(out_of_range.text)
    assert stored(db, world.workspace_id) == (None, None, 0)


def test_seller_and_rate_forms_show_every_problem(web, db, world):
    configure(db, actor=master_actor(db, world.workspace_id))
    before = stored(db, world.workspace_id)
    client = logged_in(web, world.master_email)
    bad = post_form(client, f"{PAGE}/seller", {"seller_name": "", "seller_address": "x" * 1001,
                                               "seller_tax_id": "T" * 101, "seller_email": "not-an-email"}, page=PAGE)
    assert bad.status_code == 422
    assert "Business name is required" in error_of(bad.text, "seller_name")
    assert "1000" in error_of(bad.text, "seller_address")
    assert "100" in error_of(bad.text, "seller_tax_id")
    assert "not an email address" in error_of(bad.text, "seller_email")
    assert 'value="not-an-email"' in bad.text
    no_raw_wording(bad.text)
    bad = post_form(client, f"{PAGE}/rates", {"from_currency": "EUR", "to_currency": "eur", "rate": "1,6x",
                                              "valid_from": "tomorrow"}, page=PAGE)
    assert bad.status_code == 422
    assert "different currencies" in error_of(bad.text, "to_currency")
    assert "number" in error_of(bad.text, "rate")
    assert "not a date" in error_of(bad.text, "valid_from")
    assert error_of(bad.text, "from_currency") is None and 'value="1,6x"' in bad.text
    no_raw_wording(bad.text)
    bad = post_form(client, f"{PAGE}/rates", {"from_currency": "", "to_currency": "QQQ", "rate": "0.0000000000001",
                                              "valid_from": ""}, page=PAGE)
    assert "choose a currency" in error_of(bad.text, "from_currency")
    assert "not a currency code" in error_of(bad.text, "to_currency")
    assert "12 decimals" in error_of(bad.text, "rate")
    assert "first day" in error_of(bad.text, "valid_from")
    assert stored(db, world.workspace_id) == before
