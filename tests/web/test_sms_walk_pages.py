"""The back office after a tester walked seed 003 (server side, SQLite and PostgreSQL): leftover office pools in
individual mode listed, moved and counted on the home page; one log line per transfer with its memo and references
in words; holders named in flashes; pending purchases listed with settle / fail; the test payment for masters only;
change holder offering only who may hold SMS credits and refusing at the first step; Send SMS offered only to
those who may send; frozen said as frozen."""

from __future__ import annotations

import html as htmllib
import re

import pytest
from pypdf import PdfReader

from creditdesk.parties import service as parties
from creditdesk.parties.models import User
from creditdesk.sms import schemas as s
from creditdesk.sms import service as sms
from tests.web.conftest import logged_in, post_form
from tests.web.test_sms_pages import accounts_on_page, balance, people  # noqa: F401 (the fixture)

BILLING = {"name": "X", "address": "Y", "email": "x@example.com"}
IDS = re.compile(r"\b(?:off|usr|smsp|msg|xfer|pack|lt)_[0-9a-z]{6,}")


def _as_master(db, people, fn):
    def run(session):
        return fn(session, parties.actor_for_user(session, session.get(User, people["ids"]["master"])))
    return db.write(run)


def _mode(db, people, mode):
    _as_master(db, people, lambda session, master: sms.update_settings(
        session, s.SmsSettingsUpdate(credit_mode=mode, confirm_mode_change=True), actor=master))


def _office_id(db, people, name):
    from sqlalchemy import select

    from creditdesk.parties.models import Office
    with db.read() as session:
        return session.scalar(select(Office.id).where(Office.workspace_id == people["ws"], Office.name == name))


def _buy(db, people, ref, quantity, method="manual_invoice"):
    return _as_master(db, people, lambda session, master: sms.create_purchase(session, s.PurchaseCreate.model_validate(
        {"for": ref, "quantity": quantity, "billing": BILLING, "payment_method": method}), actor=master).id)


def _visible_text(page: str) -> str:
    """The page as read: tags (and the ids in their attributes) left out."""
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.fixture
def north_left(db, people):
    """Shared mode for a while: 60 bought for North's pool; then back to individual credits."""
    _mode(db, people, "shared")
    north = _office_id(db, people, "North")
    _buy(db, people, {"kind": "office", "id": north}, 60)
    _mode(db, people, "individual")
    return north


def test_a_leftover_office_pool_is_listed_moved_and_counted(web, db, people, north_left):
    ids, north = people["ids"], north_left
    client = logged_in(web, people["emails"]["master"])
    box = client.get("/sms").text
    assert north in accounts_on_page(box)
    row = box.split(f'data-account="{north}"', 1)[1].split("</tr>", 1)[0]
    assert "not spent in individual mode" in row and "Transfer SMS Credits from This Account" in row
    assert "Purchase SMS Credits" not in row and "Transfer SMS Credits to This Account" not in row
    # The home page counts it as frozen credits needing attention, with a link to move them.
    home = client.get("/home").text
    card = home.split('id="home-frozen"', 1)[1].split("</section>", 1)[0]
    assert "North (office pool)" in card and "60 SMS credits" in card
    assert f"/sms/transfer?account={north}&amp;direction=from" in card
    # The transfer form: to the system credits or users who may send SMS, never Dan nor another office.
    page = f"/sms/transfer?account={north}&direction=from"
    form = client.get(page)
    assert form.status_code == 200
    options = re.findall(r'<option value="([^"]+)"', form.text.split('id="transfer-other"', 1)[1].split("</select>")[0])
    assert set(options) == {"workspace", ids["master"], ids["Mia"], ids["Ann"], ids["Ben"], ids["Eve"], ids["Cat"]}
    moved = post_form(client, "/sms/transfer", {"account": north, "direction": "from", "other": "workspace",
                                                "quantity": "25", "memo": "North pool closed", "agree": "yes"},
                      page=page)
    assert moved.status_code == 303, moved.text
    flash = _visible_text(client.get(moved.headers["location"]).text)
    assert "Transferred 25 SMS credits from North (office pool) to System credits (unallocated)" in flash
    assert not IDS.search(flash)
    moved = post_form(client, "/sms/transfer", {"account": north, "direction": "from", "other": ids["Ann"],
                                                "quantity": "35", "agree": "yes"}, page=page)
    assert moved.status_code == 303
    assert balance(db, people["ws"], "workspace", None) == 1025 and balance(db, people["ws"], "user", ids["Ann"]) == 135
    assert north not in accounts_on_page(client.get("/sms").text)  # emptied: no longer listed
    assert 'id="home-frozen"' not in client.get("/home").text


def test_shared_mode_names_holders_and_office_pools(web, db, people):
    _mode(db, people, "shared")
    north, east = _office_id(db, people, "North"), _office_id(db, people, "East")
    _buy(db, people, {"kind": "office", "id": north}, 100)
    client = logged_in(web, people["emails"]["master"])
    form = client.get("/sms/purchase").text
    assert "North — office pool" in form and "User credits" not in form
    page = f"/sms/transfer?account={north}&direction=from"
    options = client.get(page).text.split('id="transfer-other"', 1)[1].split("</select>")[0]
    assert set(re.findall(r'<option value="([^"]+)"', options)) >= {"workspace", east}  # pool to pool offered
    moved = post_form(client, "/sms/transfer", {"account": north, "direction": "from", "other": east,
                                                "quantity": "50", "agree": "yes"}, page=page)
    assert moved.status_code == 303
    flash = _visible_text(client.get(moved.headers["location"]).text)
    assert "Transferred 50 SMS credits from North (office pool) to East (office pool)" in flash
    page = f"/sms/transfer?account={people['ids']['Ann']}&direction=from"
    moved = post_form(client, "/sms/transfer", {"account": people["ids"]["Ann"], "direction": "from",
                                                "other": north, "quantity": "10", "agree": "yes"}, page=page)
    assert moved.status_code == 303, moved.text
    flash = _visible_text(client.get(moved.headers["location"]).text)
    assert "Transferred 10 SMS credits from Ann to North (office pool)" in flash and not IDS.search(flash)


def test_the_log_shows_one_line_per_transfer_with_memo_and_words(web, db, people):
    ids = people["ids"]
    for quantity in (50, 20, 199, 25):
        _buy(db, people, {"kind": "user", "id": ids["Ann"]}, quantity)
    client = logged_in(web, people["emails"]["master"])
    page = f"/sms/transfer?account={ids['Ann']}&direction=from"
    assert post_form(client, "/sms/transfer", {"account": ids["Ann"], "direction": "from", "other": ids["Ben"],
                                               "quantity": "394", "memo": "Ann on leave", "agree": "yes"},
                     page=page).status_code == 303
    log = client.get(f"/sms/logs?account={ids['Ben']}").text
    table = log.split('id="sms-logs"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr class=\"dir-[a-z]+\">(.*?)</tr>", table, re.S)
    assert len(rows) == 1 and "+394" in rows[0] and "Ann on leave" in rows[0]
    ann = client.get(f"/sms/logs?account={ids['Ann']}").text.split('id="sms-logs"', 1)[1].split("</table>", 1)[0]
    text = _visible_text(ann)
    assert "−394" in text and "Receipt SMS-000003" in text and "Transfer" in text
    assert not IDS.search(text), text  # words and document numbers, never ids
    csv_text = client.get(f"/sms/logs.csv?account={ids['Ann']}").text
    lines = [line for line in csv_text.splitlines()[1:] if "transfer_out" in line]
    assert len(lines) == 1 and ",394," in lines[0] and "Ann on leave" in lines[0]
    assert "System credits (unallocated)" in client.get("/sms/logs.csv?account=workspace").text


def test_pending_purchases_are_listed_to_masters_with_settle_and_fail(web, db, people):
    ids = people["ids"]
    client = logged_in(web, people["emails"]["Ann"])
    assert "Test payment" not in post_form(client, "/sms/purchase", {
        "for": ids["Ann"], "quantity": "5", "billing_name": "Ann", "billing_address": "1 St",
        "billing_email": "ann@example.com"}, page=f"/sms/purchase?for={ids['Ann']}").text
    first = _buy(db, people, {"kind": "user", "id": ids["Ben"]}, 40, method="test")
    second = _buy(db, people, {"kind": "workspace"}, 7, method="test")
    assert "pending-purchases" not in client.get("/sms").text  # only masters record outcomes
    client = logged_in(web, people["emails"]["master"])
    payment = post_form(client, "/sms/purchase", {
        "for": ids["Ann"], "quantity": "5", "billing_name": "M", "billing_address": "1 St",
        "billing_email": "m@example.com"}, page=f"/sms/purchase?for={ids['Ann']}").text
    assert "Test payment (stays pending until settled)" in payment
    box = client.get("/sms").text
    section = box.split('id="pending-purchases"', 1)[1].split("</section>", 1)[0]
    assert f'data-purchase="{first}"' in section and f'data-purchase="{second}"' in section
    assert "Ben" in section and "System credits (unallocated)" in section
    paid = post_form(client, f"/sms/purchases/{first}/payment", {"status": "paid", "back": "/sms"}, page="/sms")
    assert paid.status_code == 303 and paid.headers["location"] == "/sms"
    assert "40 SMS credits applied to Ben; receipt SMS-000003 issued" in _visible_text(client.get("/sms").text)
    failed = post_form(client, f"/sms/purchases/{second}/payment", {"status": "failed", "back": "/sms"}, page="/sms")
    assert failed.status_code == 303
    assert balance(db, people["ws"], "user", ids["Ben"]) == 40 and balance(db, people["ws"], "workspace", None) == 1000
    assert 'id="pending-purchases"' not in client.get("/sms").text


def test_change_holder_of_an_sms_pack_offers_only_who_may_hold_and_refuses_first(web, db, people):
    ids = people["ids"]
    with db.read() as session:
        pack_id = next(p.pack_id for p in sms.list_purchases(
            session, actor=parties.actor_for_user(session, session.get(User, ids["master"])), limit=10).items
            if p.for_id == ids["Ann"])
    client = logged_in(web, people["emails"]["master"])
    page = f"/packs/{pack_id}/change-holder"
    form = client.get(page).text
    select = form.split('name="holder"', 1)[1].split("</select>", 1)[0]
    offered = set(re.findall(r'<option value="([^"]+)"', select))
    assert offered == {"workspace:"} | {f"user:{ids[n]}" for n in ("master", "Mia", "Ben", "Eve", "Cat")}
    assert "office:" not in select  # no office, no Dan (may not send), no Ann (holds it)
    # Dan anyway, at the first step: refused there, in words, no confirmation offered.
    refused = post_form(client, page, {"holder": f"user:{ids['Dan']}", "reason": "x"}, page=page)
    assert refused.status_code == 422
    assert 'id="confirm-change"' not in refused.text and "send_sms" not in refused.text
    assert "Dan may not send SMS" in refused.text.split('id="err-holder"', 1)[1].split("</span>", 1)[0]
    ok = post_form(client, page, {"holder": f"user:{ids['Ben']}", "reason": "x"}, page=page)
    assert ok.status_code == 200 and 'id="confirm-change"' in ok.text
    assert "can pay for projects" not in ok.text and "Ben's sms credits" in ok.text


@pytest.mark.parametrize("mode", ["individual", "shared"])
def test_send_sms_is_offered_only_to_who_may_send(web, db, people, mode):
    if mode == "shared":
        _mode(db, people, "shared")
        _buy(db, people, {"kind": "office", "id": _office_id(db, people, "North")}, 200)
    client = logged_in(web, people["emails"]["Dan"])
    menu = client.get("/sms").text.split('id="user-menu"', 1)[1].split("</details>", 1)[0]
    assert "you may not send SMS" in menu and ">Send SMS<" not in menu
    page = client.get("/sms/messages").text
    assert 'id="send-form"' not in page and "(office pool)" not in page
    notice = _visible_text(page.split('id="cannot-send"', 1)[1].split("</section>", 1)[0])
    assert "You may not send SMS: you do not have permission to send SMS." in notice
    assert "Mona Master can give it to you" in notice and "send_sms" not in notice
    # Someone who may send sees the form.
    client = logged_in(web, people["emails"]["Ann"])
    assert 'id="send-form"' in client.get("/sms/messages").text
    assert ">Send SMS<" in client.get("/sms").text.split('id="user-menu"', 1)[1].split("</details>", 1)[0]


def test_frozen_credits_are_said_frozen_on_the_transfer_form(web, db, people):
    ids = people["ids"]
    _buy(db, people, {"kind": "user", "id": ids["Ben"]}, 30)
    _as_master(db, people, lambda session, master: parties.update_user(
        session, ids["Ben"], __import__("creditdesk.parties.schemas", fromlist=["UserUpdate"]).UserUpdate(
            permissions=[]), actor=master))
    client = logged_in(web, people["emails"]["master"])
    form = client.get("/sms/transfer?account=workspace&direction=to").text
    option = re.search(rf'<option value="{ids["Ben"]}"[^>]*>([^<]*)</option>', form).group(1)
    assert htmllib.unescape(option).strip() == "Ben — 30 frozen"
    # Too many: the form says it with separators.
    too_many = post_form(client, "/sms/transfer", {"account": "workspace", "direction": "from", "other": ids["Ann"],
                                                   "quantity": "99999999", "agree": "yes"},
                         page="/sms/transfer?account=workspace&direction=from")
    assert too_many.status_code == 422 and "Only 1,000 SMS credits are available" in too_many.text


def test_the_receipt_shows_its_number_never_an_id(web, db, people):
    purchase = _buy(db, people, {"kind": "workspace"}, 3)
    client = logged_in(web, people["emails"]["master"])
    pdf = client.get(f"/sms/purchases/{purchase}/receipt.pdf")
    import io
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Receipt number: SMS-000003" in text and "SMS credits for System credits (unallocated)" in text
    assert "smsp_" not in text and "invoice:" not in text
    confirmation = _visible_text(client.get(f"/sms/purchases/{purchase}").text)
    assert "smsp_" not in confirmation
