"""Issue 17, "Words a person understands": the SMS, project and pack forms show every problem next to its
field, all at once, in plain sentences.

For each form a post with several wrong fields comes back with one message per field, each in the span
`err-<name>` that the field points to (aria-invalid, aria-describedby); the values typed are kept; no message
holds pydantic's wording, an endpoint, an API field or a permission code; and nothing was written (counted in
the database). Service refusals about a field (not enough credits, an unknown recipient) sit next to it.
"""

from __future__ import annotations

import html as htmllib
import re

from sqlalchemy import func, select

from creditdesk.audit import AuditEvent
from creditdesk.credits.models import Consumption, CreditTransfer, Pack, Project
from creditdesk.ledger.models import LedgerTransfer
from creditdesk.parties.models import PERMISSIONS
from creditdesk.sms.models import SmsMessage, SmsPurchase
from tests.web.conftest import csrf_of, logged_in, once_key_of
from tests.web.test_sms_pages import BILLING, balance, people  # noqa: F401  (fixtures)

MODELS = {"consumptions": Consumption, "packs": Pack, "projects": Project, "credit_transfers": CreditTransfer,
          "sms_purchases": SmsPurchase, "sms_messages": SmsMessage, "ledger_legs": LedgerTransfer,
          "audit_events": AuditEvent}
RAW_WORDS = ("Input should", "Value error", "String should", "Field required", "value is not a valid", "/v1/",
             "Not permitted")


def effects(db, workspace_id: str) -> dict[str, int]:
    """What a form could write, counted."""
    with db.read() as session:
        return {name: session.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id))
                for name, model in MODELS.items()}


def post(client, path: str, data: dict | list, *, page: str):
    """Post a form as the browser would: the CSRF token and one-time key of `page`, rendered for this session."""
    html = client.get(page).text
    fields: dict[str, str | list[str]] = {}
    for name, value in (data.items() if isinstance(data, dict) else data):  # a list: a field sent many times
        fields[name] = [*fields[name], value] if isinstance(fields.get(name), list) else (
            [fields[name], value] if name in fields else value)
    fields["csrf_token"] = csrf_of(html)
    if 'name="idempotency_key"' in html:
        fields["idempotency_key"] = once_key_of(html)
    return client.post(path, data=fields, follow_redirects=False)


def control(html: str, name: str) -> str:
    """The opening tag of the form control called `name`."""
    match = re.search(rf'<(?:input|select|textarea)\b[^>]*\bname="{re.escape(name)}"[^>]*>', html)
    assert match, f"no control named {name}"
    return match.group(0)


def message_at(html: str, name: str) -> str:
    """The message next to field `name`, checked to be the one the field is marked by and described by."""
    tag = control(html, name)
    assert 'aria-invalid="true"' in tag, tag
    assert f'aria-describedby="err-{name}"' in tag, tag
    match = re.search(rf'<span class="field-error" id="err-{re.escape(name)}">(.*?)</span>', html, re.S)
    assert match, f"no message next to {name}"
    return htmllib.unescape(match.group(1)).strip()


def unmarked(html: str, name: str) -> bool:
    return 'aria-invalid' not in control(html, name) and f'id="err-{name}"' not in html


def top_message(html: str) -> str:
    match = re.search(r'<div class="flash error" role="alert">(.*?)</div>', html, re.S)
    return htmllib.unescape(match.group(1)).strip() if match else ""


def messages(html: str) -> list[str]:
    spans = re.findall(r'<span class="field-error" id="err-[^"]+">(.*?)</span>', html, re.S)
    return [htmllib.unescape(s).strip() for s in spans] + [top_message(html)]


def assert_plain(html: str) -> None:
    """No message holds pydantic's wording, an endpoint, a permission code or any other snake_case name."""
    for text in messages(html):
        for raw in RAW_WORDS:
            assert raw not in text, text
        for code in PERMISSIONS:
            assert code not in text, text
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), text


def value_of(html: str, name: str) -> str:
    tag = control(html, name)
    if tag.startswith("<textarea"):
        return htmllib.unescape(html.split(tag, 1)[1].split("</textarea>", 1)[0])
    match = re.search(r'\bvalue="([^"]*)"', tag)
    return htmllib.unescape(match.group(1)) if match else ""


def selected(html: str, name: str) -> list[str]:
    block = html.split(control(html, name), 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="([^"]*)" selected', block)


# --- SMS ---------------------------------------------------------------------------------------------

def test_sms_purchase_shows_every_problem_next_to_its_field_and_buys_nothing(web, db, people):
    client = logged_in(web, people["emails"]["master"])
    before = effects(db, people["ws"])
    bad = {"for": "", "quantity": "0", "billing_name": "  ", "billing_address": "   ",
           "billing_email": "ann@example", "billing_tax_id": "ABN 1"}
    for path in ("/sms/purchase", "/sms/purchase/pay"):  # the details step and the payment step
        response = post(client, path, bad, page="/sms/purchase")
        assert response.status_code == 422, response.text[-1500:]
        html = response.text
        assert message_at(html, "for") == "Choose whom the SMS credits are for: System credits or a user."
        assert message_at(html, "quantity") == "Quantity must be more than 0."
        assert message_at(html, "billing_name") == "Billing name is required."
        assert message_at(html, "billing_address") == "Billing address is required."
        assert message_at(html, "billing_email") == "Billing email is not an email address (like name@example.com)."
        assert unmarked(html, "billing_tax_id")
        assert top_message(html) == "Nothing was bought: correct the fields marked below."
        assert_plain(html)
        assert (value_of(html, "quantity"), value_of(html, "billing_email"), value_of(html, "billing_tax_id")) == (
            "0", "ann@example", "ABN 1")
    assert effects(db, people["ws"]) == before


def test_sms_purchase_refusals_about_the_recipient_sit_next_to_it(web, db, people):
    ids, ws = people["ids"], people["ws"]
    client = logged_in(web, people["emails"]["Ann"])
    before = effects(db, ws)
    refused = post(client, "/sms/purchase", {"for": ids["Cat"], "quantity": "5", **BILLING}, page="/sms/purchase")
    assert refused.status_code == 422
    assert "only for yourself and members of your teams" in message_at(refused.text, "for")
    assert selected(refused.text, "for") == []  # Cat is not one of Ann's choices: nothing pretends she is
    unknown = post(client, "/sms/purchase", {"for": "usr_nobody", "quantity": "5", **BILLING}, page="/sms/purchase")
    assert message_at(unknown.text, "for") == "Choose whom the SMS credits are for from the list."
    assert_plain(refused.text)
    assert_plain(unknown.text)
    assert effects(db, ws) == before


def test_a_refusal_naming_a_permission_says_its_label_not_its_code(web, db, people):
    """Shared office SMS credits: Mia (manage_office_credits, North and East) buying for South is told who may, by
    the permission's label; Ann, who may buy for nobody and so sees no form, is told at the top."""
    master = logged_in(web, people["emails"]["master"])
    assert post(master, "/settings/sms", {"credit_mode": "shared", "confirm": "yes"},
                page="/settings").status_code == 303
    from fastapi.testclient import TestClient

    from creditdesk.parties.models import Office

    with db.read() as session:
        south = session.scalar(select(Office.id).where(Office.workspace_id == people["ws"], Office.name == "South"))
    before = effects(db, people["ws"])
    for who in ("Mia", "Ann"):
        with TestClient(web.app, base_url="http://testserver") as other:
            client = logged_in(other, people["emails"][who])
            # Ann's purchase page has no form (and so no one-time key): a forged post takes a key of hers elsewhere.
            refused = post(client, "/sms/purchase", {"for": south, "quantity": "5", **BILLING},
                           page="/sms/purchase" if who == "Mia" else "/sms/messages")
            assert refused.status_code == 422
            said = message_at(refused.text, "for") if who == "Mia" else top_message(refused.text)
            assert "master users buy for any office and users with “Manage office SMS credits”" in said, said
            assert "manage_office_credits" not in refused.text
            assert_plain(refused.text)
    assert effects(db, people["ws"]) == before


def test_sms_transfer_shows_every_problem_next_to_its_field_and_moves_nothing(web, db, people):
    ids, ws = people["ids"], people["ws"]
    client = logged_in(web, people["emails"]["Ann"])
    page = f"/sms/transfer?account={ids['Ann']}&direction=from"
    before = effects(db, ws)
    response = post(client, "/sms/transfer", {"account": ids["Ann"], "direction": "from", "other": "",
                                              "quantity": "1.5", "memo": "for the launch"}, page=page)
    assert response.status_code == 422
    html = response.text
    assert message_at(html, "other") == "Choose the account to transfer to."
    assert "whole number" in message_at(html, "quantity")
    assert message_at(html, "agree") == "Tick the box to agree to the transfer conditions before you transfer."
    assert unmarked(html, "memo")
    assert (value_of(html, "quantity"), value_of(html, "memo")) == ("1.5", "for the launch")
    assert top_message(html) == "Nothing was transferred: correct the fields marked below."
    assert_plain(html)
    # More than Ann has: said next to the quantity, by the service's count.
    too_many = post(client, "/sms/transfer", {"account": ids["Ann"], "direction": "from", "other": ids["Ben"],
                                              "quantity": "500", "agree": "yes"}, page=page)
    assert too_many.status_code == 422
    assert message_at(too_many.text, "quantity") == ("Only 100 SMS credits are available to transfer; nothing was "
                                                     "transferred.")
    assert selected(too_many.text, "other") == [ids["Ben"]] and 'name="agree" value="yes" checked' in too_many.text
    # A recipient who may not receive SMS credits (Dan has no permission to send SMS): next to the recipient.
    dan = post(client, "/sms/transfer", {"account": ids["Ann"], "direction": "from", "other": ids["Dan"],
                                         "quantity": "5", "agree": "yes"}, page=page)
    assert dan.status_code == 422
    assert message_at(dan.text, "other").endswith("Dan may not send SMS.")
    for response in (too_many, dan):
        assert_plain(response.text)
    assert effects(db, ws) == before
    assert balance(db, ws, "user", ids["Ann"]) == 100 and balance(db, ws, "user", ids["Ben"]) == 0


def test_send_sms_shows_every_problem_next_to_its_field_and_sends_nothing(web, db, people):
    ids, ws = people["ids"], people["ws"]
    client = logged_in(web, people["emails"]["Ann"])
    before = effects(db, ws)
    response = post(client, "/sms/messages", {"to": "call me", "body": "   ", "on_behalf_of": ""},
                    page="/sms/messages")
    assert response.status_code == 422
    html = response.text
    assert message_at(html, "to") == ("To (phone number) must be a phone number: 3 to 15 digits, optionally with a "
                                      "leading +.")
    assert message_at(html, "body") == "Type the message to send."
    assert unmarked(html, "on_behalf_of")
    assert value_of(html, "to") == "call me"
    assert_plain(html)
    # Someone who is not in the workspace to send for: next to that choice; the message typed is kept.
    unknown = post(client, "/sms/messages", {"to": "+61400000001", "body": "Hello there", "on_behalf_of": "usr_x"},
                   page="/sms/messages")
    assert unknown.status_code == 422
    assert message_at(unknown.text, "on_behalf_of") == "Choose whom the message is sent for from the list, or Myself."
    assert value_of(unknown.text, "body") == "Hello there" and value_of(unknown.text, "to") == "+61400000001"
    assert_plain(unknown.text)
    assert effects(db, ws) == before
    assert balance(db, ws, "user", ids["Ann"]) == 100


def test_send_sms_without_the_permission_is_told_in_words(web, db, people):
    client = logged_in(web, people["emails"]["Dan"])
    before = effects(db, people["ws"])
    refused = post(client, "/sms/messages", {"to": "+61400000001", "body": "Hello"}, page="/sms/messages")
    assert refused.status_code == 403
    assert top_message(refused.text).startswith("You may not send SMS: you do not have permission to send SMS.")
    assert_plain(refused.text)
    assert effects(db, people["ws"]) == before


# --- projects -----------------------------------------------------------------------------------------

def test_new_project_shows_every_problem_next_to_its_field_and_creates_nothing(web, db, world):
    client = logged_in(web, world.master_email)
    before = effects(db, world.workspace_id)
    response = post(client, "/projects/new", [("name", "  "), ("office_id", ""), ("contact_ids", world.wendy_id)],
                    page="/projects/new")
    assert response.status_code == 422
    html = response.text
    assert message_at(html, "name") == "Give the project a name."
    assert message_at(html, "office_id") == "Choose the office the project is for."
    assert unmarked(html, "contact_ids")
    assert selected(html, "contact_ids") == [world.wendy_id]
    assert top_message(html) == "Nothing was created: correct the fields marked below."
    assert_plain(html)
    # An office or a contact that is not in the workspace: next to the field it is about.
    office = post(client, "/projects/new", {"name": "Brochure", "office_id": "off_gone"}, page="/projects/new")
    assert office.status_code == 422 and "Choose from the list" in message_at(office.text, "office_id")
    assert value_of(office.text, "name") == "Brochure"
    contact = post(client, "/projects/new", [("name", "Brochure"), ("office_id", world.london_id),
                                             ("contact_ids", "usr_gone")], page="/projects/new")
    assert contact.status_code == 422 and "Choose from the list" in message_at(contact.text, "contact_ids")
    assert selected(contact.text, "office_id") == [world.london_id]
    for response in (office, contact):
        assert_plain(response.text)
    assert effects(db, world.workspace_id) == before


def test_consume_puts_its_problems_next_to_the_amount_and_consumes_nothing(web, db, world):
    client = logged_in(web, world.member_email)
    page = f"/projects/{world.project_id}"
    before = effects(db, world.workspace_id)
    bad = post(client, f"{page}/consume", {"credit_type": "hours", "amount": "1.505"}, page=page)
    assert bad.status_code == 422
    assert "more decimal places" in message_at(bad.text, "amount") and value_of(bad.text, "amount") == "1.505"
    # No credit type (it is chosen above the form) and no amount: both said at once.
    both = post(client, f"{page}/consume", {"credit_type": "", "amount": ""}, page=page)
    assert both.status_code == 422
    assert top_message(both.text) == "Choose a credit type above and press Show, then consume."
    assert message_at(both.text, "amount") == "Enter the amount to consume."
    too_much = post(client, f"{page}/consume", {"credit_type": "hours", "amount": "5000"}, page=page)
    assert too_much.status_code == 409
    said = message_at(too_much.text, "amount")
    assert said.startswith("Not enough hours:") and said.endswith("5000 requested. Nothing was consumed.")
    assert top_message(too_much.text) == "Nothing was consumed: correct the fields marked below."
    for response in (bad, both, too_much):
        assert_plain(response.text)
    assert effects(db, world.workspace_id) == before


# --- packs ------------------------------------------------------------------------------------------------

def test_change_holder_puts_its_problems_next_to_the_holder_and_moves_nothing(web, db, world):
    client = logged_in(web, world.manager_email)
    page = f"/packs/{world.leeds_pack}/change-holder"
    before = effects(db, world.workspace_id)
    missing = post(client, page, {"holder": "", "reason": "wrong office"}, page=page)
    assert missing.status_code == 422
    assert message_at(missing.text, "holder") == "Choose the new holder."
    assert unmarked(missing.text, "reason") and value_of(missing.text, "reason") == "wrong office"
    assert top_message(missing.text) == "Nothing was moved: correct the fields marked below."
    gone = post(client, page, {"holder": "office:off_gone", "reason": "wrong office"}, page=page)
    assert gone.status_code == 422 and message_at(gone.text, "holder") == "Choose the new holder from the list."
    # The holder it already has, confirmed: the service refuses, next to the holder; the choice is kept.
    same = post(client, page, {"holder": f"office:{world.leeds_id}", "reason": "wrong office", "confirm": "yes"},
                page=page)
    assert same.status_code == 422
    assert message_at(same.text, "holder") == "The pack already belongs to this holder."
    assert selected(same.text, "holder") == [f"office:{world.leeds_id}"]
    for response in (missing, gone, same):
        assert_plain(response.text)
    assert effects(db, world.workspace_id) == before
    with db.read() as session:
        assert session.get(Pack, world.leeds_pack).holder_id == world.leeds_id


def test_void_without_a_reason_says_so_next_to_it_and_voids_nothing(web, db, world):
    client = logged_in(web, world.manager_email)
    page = f"/packs/{world.soon_pack}"
    before = effects(db, world.workspace_id)
    for step in ({}, {"confirm": "yes"}):  # the first step and the confirmation
        response = post(client, f"{page}/void", {"reason": "  ", **step}, page=page)
        assert response.status_code == 422
        assert message_at(response.text, "reason") == ("Give the reason for voiding: it is kept in the pack's "
                                                       "history and the activity log.")
        assert top_message(response.text) == "Nothing was voided: correct the fields marked below."
        assert_plain(response.text)
    assert effects(db, world.workspace_id) == before
    with db.read() as session:
        assert session.get(Pack, world.soon_pack).status == "active"


def test_a_refused_pack_form_names_the_permission_in_words(web, db, world):
    client = logged_in(web, world.member_email)
    page = client.get(f"/packs/{world.leeds_pack}/change-holder")
    assert page.status_code == 403
    assert "manage_packs" not in page.text and "“Manage packs”" in htmllib.unescape(page.text)
