"""The activity log shows amounts in their unit (issue 17): money in the row's currency ("$1,234.56", not 123456),
credits in their credit type's unit ("2.50 hours", not 250); the CSV export keeps the stored integers."""

from __future__ import annotations

import html
from types import SimpleNamespace

from creditdesk.billing import lifecycle, postings
from creditdesk.billing.models import BillingAccount
from creditdesk.web.activity import amount_formatter, changes
from creditdesk.currencies import format_money
from tests.billing.factories import configure, make_account
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in


def test_amounts_in_the_activity_log_are_in_their_unit(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Log account")

    def act(s):
        postings.post_account_entry(s, s.get(BillingAccount, account.id), 123_456, "debit", "invoice")
        lifecycle.write_off(s, account.id, "Gone", actor=actor)
    db.write(act)
    client = logged_in(web, world.master_email)
    page = html.unescape(client.get("/activity?object_type=account").text)
    row = page[page.index("account.write_off"):][:3000]
    assert f"balance: {format_money(123_456, 'AUD')} → {format_money(0, 'AUD')}" in row, row
    assert "123456" not in row
    csv = client.get("/activity/export.csv?object_type=account").text
    assert "balance: 123456 → 0" in csv  # the export keeps what was stored


def test_credit_amounts_take_their_credit_types_unit():
    fmt = amount_formatter({"hours": ("hours", 2), "ct_1": ("hours", 2)})
    corrected = SimpleNamespace(object_type="pack", before={"unit": "hours", "remaining": 1000},
                                after={"unit": "hours", "remaining": 250})
    assert changes(corrected, fmt) == ["remaining: 10.00 hours → 2.50 hours"]
    reversed_ = SimpleNamespace(object_type="consumption", before={"credit_type_id": "ct_1", "amount": 250,
                                                                   "status": "posted"},
                                after={"credit_type_id": "ct_1", "amount": 100, "status": "reversed"})
    assert changes(reversed_, fmt) == ["amount: 2.50 hours → 1.00 hours", "status: posted → reversed"]
    unknown = SimpleNamespace(object_type="pack", before={"unit": "gone", "quantity": 5},
                              after={"unit": "gone", "quantity": 7})
    assert changes(unknown, fmt) == ["quantity: 5 → 7"]  # a unit it does not know: the stored value


def test_the_log_finds_an_account_by_its_number(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Numbered")
    with db.read() as s:
        number = s.get(BillingAccount, account.id).number
    client = logged_in(web, world.master_email)
    by_number = client.get(f"/activity?object_id={number.lower()}").text
    by_id = client.get(f"/activity?object_id={account.id}").text
    assert "account.create" in by_number and "account.create" in by_id
    assert "account.create" not in client.get("/activity?object_id=ACC-999999").text


def test_actions_and_object_kinds_in_words():
    from creditdesk.web.activity import action_label, object_type_label

    assert [action_label(a) for a in ("sms_message.send", "api_key.create", "subscription.activate",
                                      "sms_purchase.paid", "balance.low", "invoice.line_add")] == [
        "SMS message sent", "API key created", "Subscription activated", "SMS purchase paid",
        "Balance fell below its threshold", "Invoice line added"]
    assert object_type_label("sms_purchase") == "SMS purchase" and object_type_label("credit_note") == "Credit note"


def test_the_object_filter_offers_billing_objects_by_name_and_rows_name_teams(web, db, world):
    from creditdesk.parties import schemas as ps
    from creditdesk.parties import service as parties

    actor = master_actor(db, world.workspace_id)
    team = db.write(lambda s: parties.create_team(s, ps.TeamCreate(name="Night shift"), actor=actor))
    page = logged_in(web, world.master_email).get("/activity", params={"object_type": "team"}).text
    select = page.split('name="object_type"', 1)[1].split("</select>", 1)[0]
    for value, words in (("invoice", "Invoice"), ("sms_purchase", "SMS purchase"), ("subscription", "Subscription")):
        assert f'value="{value}"' in select and f">{words}</option>" in select
    rows = page.split("<tbody", 1)[1]
    assert "Night shift" in rows and f'title="{team.id}"' in rows
