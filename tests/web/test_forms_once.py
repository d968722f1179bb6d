"""F9: every back-office form that moves credits or money acts once per rendered form.

A form page carries a one-time key; the same form posted twice (double click, Back + resubmit, a browser
retry) acts once and the repeat lands where the first answer went, told "Already done"; a form without
its key is refused and changes nothing. Each case counts what a second effect would add: consumptions,
packs, credit transfers, SMS purchases and messages, ledger legs and audit events.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy import func, select

from creditdesk.audit import AuditEvent
from creditdesk.credits.models import Consumption, CreditTransfer, Pack
from creditdesk.ledger.models import LedgerTransfer
from creditdesk.sms.models import SmsMessage, SmsPurchase
from creditdesk.web.once import ALREADY_DONE
from tests.web.conftest import csrf_of, logged_in, once_key_of
from tests.web.test_sms_pages import BILLING, balance, pending_method, people  # noqa: F401  (fixtures)

MODELS = {"consumptions": Consumption, "packs": Pack, "credit_transfers": CreditTransfer,
          "sms_purchases": SmsPurchase, "sms_messages": SmsMessage, "ledger_legs": LedgerTransfer,
          "audit_events": AuditEvent}


def effects(db, workspace_id: str) -> dict[str, int]:
    with db.read() as session:
        return {name: session.scalar(select(func.count()).select_from(model)
                                     .where(model.workspace_id == workspace_id))
                for name, model in MODELS.items()}


def form_of(client, page: str) -> dict:
    """What the browser posts besides the fields: the CSRF token and the page's one-time key."""
    html = client.get(page).text
    return {"csrf_token": csrf_of(html), "idempotency_key": once_key_of(html)}


def post(client, path: str, data: dict):
    return client.post(path, data=data, follow_redirects=False)


def assert_once(client, db, workspace_id: str, path: str, data: dict, *, first_status: int = 303) -> dict:
    """Post the same form twice: the first acts, the second changes nothing and goes where the first
    went, saying it was already done. Returns what the first changed."""
    before = effects(db, workspace_id)
    first = post(client, path, data)
    assert first.status_code == first_status, first.text[-2000:]
    after = effects(db, workspace_id)
    assert after != before, "the first submission did nothing"
    second = post(client, path, data)
    assert second.status_code == 303, second.text[-2000:]
    assert effects(db, workspace_id) == after, "the form acted twice"
    if first_status == 303:
        assert second.headers["location"] == first.headers["location"]
    landing = client.get(second.headers["location"])
    assert ALREADY_DONE in landing.text
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def assert_refused_without_key(client, db, workspace_id: str, path: str, data: dict) -> None:
    before = effects(db, workspace_id)
    stale = {k: v for k, v in data.items() if k != "idempotency_key"}
    response = post(client, path, stale)
    assert response.status_code == 422, response.text[-2000:]
    assert "out of date" in response.text
    assert effects(db, workspace_id) == before


# --- credits ------------------------------------------------------------------------------------------

def test_consume_form_acts_once(web, db, world):
    client = logged_in(web, world.member_email)
    page = f"/projects/{world.project_id}"
    data = {**form_of(client, page), "credit_type": "hours", "amount": "1.5"}
    assert_refused_without_key(client, db, world.workspace_id, f"{page}/consume", data)
    changed = assert_once(client, db, world.workspace_id, f"{page}/consume", data)
    assert changed["consumptions"] == 1
    # A new render of the form is a new key: consuming again is a new consumption.
    again = {**form_of(client, page), "credit_type": "hours", "amount": "1.5"}
    assert again["idempotency_key"] != data["idempotency_key"]
    assert post(client, f"{page}/consume", again).status_code == 303
    assert effects(db, world.workspace_id)["consumptions"] - changed["consumptions"] >= 1


def test_a_refused_consume_is_not_remembered(web, db, world):
    """Not enough credits: nothing done and nothing stored, so the same form may be sent again once
    the amount is fixed (a refusal is not 'already done')."""
    client = logged_in(web, world.member_email)
    page = f"/projects/{world.project_id}"
    form = form_of(client, page)
    before = effects(db, world.workspace_id)
    refused = post(client, f"{page}/consume", {**form, "credit_type": "hours", "amount": "5000"})
    assert refused.status_code == 409 and "Nothing was consumed" in refused.text
    assert effects(db, world.workspace_id) == before
    fixed = post(client, f"{page}/consume", {**form, "credit_type": "hours", "amount": "1"})
    assert fixed.status_code == 303
    assert effects(db, world.workspace_id)["consumptions"] == before["consumptions"] + 1


def test_the_same_key_with_other_values_does_not_act_again(web, db, world):
    client = logged_in(web, world.member_email)
    page = f"/projects/{world.project_id}"
    form = form_of(client, page)
    assert post(client, f"{page}/consume", {**form, "credit_type": "hours", "amount": "1"}).status_code == 303
    before = effects(db, world.workspace_id)
    other = post(client, f"{page}/consume", {**form, "credit_type": "hours", "amount": "2"})
    assert other.status_code == 409 and "already submitted" in other.text
    assert effects(db, world.workspace_id) == before


def test_keys_are_per_user(web, db, world):
    """Another user posting a key they saw (e.g. in a shared page's source) acts as themselves."""
    member = logged_in(web, world.member_email)
    page = f"/projects/{world.project_id}"
    form = form_of(member, page)
    data = {**form, "credit_type": "hours", "amount": "1"}
    assert post(member, f"{page}/consume", data).status_code == 303
    before = effects(db, world.workspace_id)
    from fastapi.testclient import TestClient

    with TestClient(web.app, base_url="http://testserver") as other:
        manager = logged_in(other, world.manager_email)
        response = post(manager, f"{page}/consume", {**data, "csrf_token": csrf_of(manager.get(page).text)})
        assert response.status_code == 303
        assert ALREADY_DONE not in manager.get(response.headers["location"]).text
    assert effects(db, world.workspace_id)["consumptions"] == before["consumptions"] + 1


def test_grant_form_acts_once(web, db, world):
    client = logged_in(web, world.master_email)
    data = {**form_of(client, "/packs/new"), "holder": f"office:{world.leeds_id}", "credit_type": "hours",
            "quantity": "3", "name": "Once only", "source": "manual", "priority": "100", "is_paid": "auto"}
    assert_refused_without_key(client, db, world.workspace_id, "/packs/new", data)
    changed = assert_once(client, db, world.workspace_id, "/packs/new", data)
    assert changed["packs"] == 1


def test_change_holder_acts_once_and_its_first_step_knows_it_was_done(web, db, world):
    client = logged_in(web, world.manager_email)
    page = f"/packs/{world.leeds_pack}/change-holder"
    first_step = {**form_of(client, page), "holder": f"office:{world.london_id}", "reason": "wrong office"}
    confirmation = post(client, page, first_step)
    assert confirmation.status_code == 200 and "Please confirm" in confirmation.text
    # The confirmation carries the key of the form it confirms.
    assert once_key_of(confirmation.text.split('id="confirm-change"', 1)[1]) == first_step["idempotency_key"]
    confirmed = {**first_step, "confirm": "yes"}
    assert_refused_without_key(client, db, world.workspace_id, page, confirmed)
    changed = assert_once(client, db, world.workspace_id, page, confirmed)
    # A change of holder is a transfer out and in: one new pack of the new holder, the original keeps its own.
    assert changed["packs"] == 1
    with db.read() as session:
        assert session.get(Pack, world.leeds_pack).holder_id == world.leeds_id
        moved = session.execute(select(Pack.id, Pack.holder_id).where(Pack.origin_pack_id == world.leeds_pack)).all()
    assert [holder for _, holder in moved] == [world.london_id]
    # Back to the first step and Continue again: straight to the answer, no second confirmation page.
    again = post(client, page, first_step)
    assert again.status_code == 303 and again.headers["location"] == f"/packs/{moved[0].id}"


def test_void_acts_once(web, db, world):
    client = logged_in(web, world.manager_email)
    page = f"/packs/{world.soon_pack}"
    first_step = {**form_of(client, page), "reason": "sold twice"}
    confirmation = post(client, f"{page}/void", first_step)
    assert confirmation.status_code == 200 and "Yes, void the pack" in confirmation.text
    confirmed = {**first_step, "confirm": "yes"}
    assert_refused_without_key(client, db, world.workspace_id, f"{page}/void", confirmed)
    changed = assert_once(client, db, world.workspace_id, f"{page}/void", confirmed)
    assert changed["ledger_legs"] >= 1
    with db.read() as session:
        assert session.get(Pack, world.soon_pack).status == "voided"


def test_import_form_acts_once(web, db, world):
    """The upload only previews (writes nothing); the preview's confirmation is the money form, acted on once."""
    from tests.web.test_import import confirm_form

    client = logged_in(web, world.master_email)
    content = ("holder_kind,holder_id,credit_type,quantity,name\n"
               f"office,{world.leeds_id},hours,1,Imported once A\n"
               f"office,{world.leeds_id},hours,2,Imported once B\n").encode()
    form = {"csrf_token": csrf_of(client.get("/packs/import").text)}
    before = effects(db, world.workspace_id)
    shown = client.post("/packs/import", data=form, files={"file": ("packs.csv", content, "text/csv")},
                        follow_redirects=False)
    assert shown.status_code == 200 and effects(db, world.workspace_id) == before
    confirm = confirm_form(shown.text)

    def submit(data):
        return client.post("/packs/import/confirm", data=data, follow_redirects=False)

    stale = submit({k: v for k, v in confirm.items() if k != "idempotency_key"})
    assert stale.status_code == 422 and "out of date" in stale.text
    assert effects(db, world.workspace_id) == before
    first = submit(confirm)
    assert first.status_code == 200 and "2</strong> packs granted" in first.text
    assert effects(db, world.workspace_id)["packs"] == before["packs"] + 2
    second = submit(confirm)
    assert second.status_code == 303
    assert effects(db, world.workspace_id)["packs"] == before["packs"] + 2
    landing = client.get(second.headers["location"]).text
    assert ALREADY_DONE in landing and "2 packs granted" in landing


# --- SMS ----------------------------------------------------------------------------------------------

def test_sms_transfer_acts_once(web, db, people):
    ids, ws = people["ids"], people["ws"]
    client = logged_in(web, people["emails"]["Ann"])
    page = f"/sms/transfer?account={ids['Ann']}&direction=from"
    data = {**form_of(client, page), "account": ids["Ann"], "direction": "from", "other": ids["Ben"],
            "quantity": "30", "agree": "yes"}
    assert_refused_without_key(client, db, ws, "/sms/transfer", data)
    changed = assert_once(client, db, ws, "/sms/transfer", data)
    assert changed["credit_transfers"] == 1
    assert balance(db, ws, "user", ids["Ann"]) == 70 and balance(db, ws, "user", ids["Ben"]) == 30


def test_sms_purchase_pays_once_from_details_to_payment(web, db, people):
    ids, ws = people["ids"], people["ws"]
    client = logged_in(web, people["emails"]["Ann"])
    details = {**form_of(client, f"/sms/purchase?for={ids['Ben']}"), "for": ids["Ben"], "quantity": "50",
               **BILLING}
    stale = post(client, "/sms/purchase", {k: v for k, v in details.items() if k != "idempotency_key"})
    assert stale.status_code == 422 and "out of date" in stale.text
    payment = post(client, "/sms/purchase", details)
    assert payment.status_code == 200 and once_key_of(payment.text) == details["idempotency_key"]
    pay = {**details, "payment_method": "manual_invoice"}
    assert_refused_without_key(client, db, ws, "/sms/purchase/pay", pay)
    changed = assert_once(client, db, ws, "/sms/purchase/pay", pay)
    assert changed["sms_purchases"] == 1
    assert balance(db, ws, "user", ids["Ben"]) == 50
    # Back to the payment screen (the browser posts the details again): the purchase is shown, no second Pay.
    again = post(client, "/sms/purchase", details)
    assert again.status_code == 303 and again.headers["location"].startswith("/sms/purchases/")
    assert effects(db, ws)["sms_purchases"] == changed["sms_purchases"] + 2  # the fixture's two, and this one


def test_recording_a_payment_acts_once(web, db, people, pending_method):  # noqa: F811
    ids, ws = people["ids"], people["ws"]
    master = logged_in(web, people["emails"]["master"])
    details = {**form_of(master, "/sms/purchase"), "for": ids["Eve"], "quantity": "40", **BILLING}
    paid = post(master, "/sms/purchase/pay", {**details, "payment_method": pending_method})
    url = paid.headers["location"]
    data = {**form_of(master, url), "status": "paid", "reference": "BT-1"}
    before = effects(db, ws)
    stale = post(master, url + "/payment", {k: v for k, v in data.items() if k != "idempotency_key"})
    assert stale.status_code == 422 and "out of date" in stale.text
    assert effects(db, ws) == before
    assert_once(master, db, ws, url + "/payment", data)
    assert balance(db, ws, "user", ids["Eve"]) == 40


def test_send_sms_form_acts_once(web, db, people):
    ws = people["ws"]
    client = logged_in(web, people["emails"]["Ann"])
    data = {**form_of(client, "/sms/messages"), "to": "+61400000001", "body": "Hello once"}
    assert_refused_without_key(client, db, ws, "/sms/messages", data)
    changed = assert_once(client, db, ws, "/sms/messages", data)
    assert changed["sms_messages"] == 1
    assert balance(db, ws, "user", people["ids"]["Ann"]) == 99


@pytest.mark.parametrize("page, form_id", [
    ("/packs/new", "grant-form"), ("/sms/messages", "send-form"),
    ("/sms/purchase", "purchase-form"),
])
def test_every_render_of_a_form_has_a_new_key(web, world, page, form_id):
    client = logged_in(web, world.master_email)
    keys = {once_key_of(client.get(page).text.split(f'id="{form_id}"', 1)[1]) for _ in range(3)}
    assert len(keys) == 3
