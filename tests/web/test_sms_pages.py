"""The Manage SMS credits pages (seed 003) and the back-office permission rules of issue 4, server side.

Each test would fail if its rule were broken: who sees which account, nothing applied before payment,
the receipt on the confirmation page, tick to agree, never from a team member, logs CSV columns,
master-only SMS settings, member cannot change holders, another workspace's pages are 404.
"""

from __future__ import annotations

import csv
import io
import os
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from creditdesk.audit import Actor
from creditdesk.credits import reads
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import User, Workspace
from creditdesk.sms import service as sms
from tests.web.conftest import PASSWORD, csrf_of, logged_in, once_key_of, post_form

BILLING = {"billing_name": "Ann Example", "billing_address": "1 Harbour St\nSydney NSW 2000",
           "billing_email": "ann@example.com", "billing_tax_id": ""}


@pytest.fixture
def people(db):
    """master; Mia manager (manage_office_credits, North + East); Ann & Ben members in a team (North);
    Eve (East, send_sms); Cat (South, send_sms, no team); Dan (North, no send_sms). Pool: 1000, Ann: 100."""
    tag = os.urandom(4).hex()

    def fn(session):
        ws, master, _key, _secret = parties.create_workspace(
            session, name="SMS web", master_name="Mona Master", master_email=f"m-{tag}@example.com",
            master_password=PASSWORD)
        actor = parties.actor_for_user(session, master)
        offices = {n: parties.create_office(session, ps.OfficeCreate(name=n), actor=actor).id
                   for n in ("North", "East", "South")}

        def user(name, role="member", perms=("send_sms",), office="North", extra=()):
            return parties.create_user(session, ps.UserCreate(
                name=name, email=f"{name.lower()}-{tag}@example.com", is_staff=True, role=role,
                permissions=list(perms), primary_office_id=offices[office],
                additional_office_ids=[offices[o] for o in extra], password=PASSWORD), actor=actor).id

        ids = {"master": master.id, "Mia": user("Mia", "manager", ("send_sms", "manage_office_credits"), "North",
                                                ("East",)),
               "Ann": user("Ann"), "Ben": user("Ben"), "Dan": user("Dan", perms=()), "Eve": user("Eve", office="East"),
               "Cat": user("Cat", office="South")}
        parties.create_team(session, ps.TeamCreate(name="North team", office_id=offices["North"],
                                                   member_ids=[ids["Ann"], ids["Ben"], ids["Dan"]]), actor=actor)
        return ws.id, ids, {n: f"{n.lower()}-{tag}@example.com" for n in ids if n != "master"} | {
            "master": f"m-{tag}@example.com"}

    ws, ids, emails = db.write(fn)
    from creditdesk.sms import schemas as s

    def seed(session):
        master = parties.actor_for_user(session, session.get(User, ids["master"]))
        for target, qty in ((None, 1000), ("Ann", 100)):
            sms.create_purchase(session, s.PurchaseCreate.model_validate({
                "for": {"kind": "workspace"} if target is None else {"kind": "user", "id": ids[target]},
                "quantity": qty, "billing": {"name": "X", "address": "Y", "email": "x@example.com"}}), actor=master)
    db.write(seed)
    return {"ws": ws, "ids": ids, "emails": emails}


def balance(db, ws: str, kind: str, holder: str | None) -> int:
    with db.read() as session:
        rows = reads.balances(session, actor=Actor.system(ws), holder_kind=kind, holder_id=holder, credit_type="sms")
    return rows[0].available if rows else 0


def accounts_on_page(html: str) -> list[str]:
    return re.findall(r'<tr data-account="([^"]+)"', html)


def test_name_menu_links_to_manage_sms_credits(web, people):
    page = logged_in(web, people["emails"]["Ann"]).get("/credits")
    menu = page.text.split('id="user-menu"', 1)[1].split("</details>", 1)[0]
    assert 'href="/sms">Manage SMS Credits</a>' in menu


@pytest.mark.parametrize("who, expected", [
    ("master", ["workspace", "master", "Mia", "Ann", "Ben", "Eve", "Cat"]),
    ("Mia", ["Mia", "Ann", "Ben", "Eve"]),  # her offices North + East, no pool, not Cat (South)
    ("Ann", ["Ann", "Ben"]),  # herself and team members with send_sms (not Dan)
])
def test_the_box_shows_exactly_what_the_role_may_see(web, people, who, expected):
    ids = people["ids"]
    html = logged_in(web, people["emails"][who]).get("/sms").text
    shown = accounts_on_page(html)
    wanted = [("workspace" if n == "workspace" else ids[n]) for n in expected]
    assert sorted(shown) == sorted(wanted)
    assert ("System credits (unallocated)" in html) is (who == "master")


def test_purchase_applies_credits_only_after_payment_and_offers_the_receipt(web, db, people):
    ids, ws = people["ids"], people["ws"]
    client = logged_in(web, people["emails"]["Ann"])
    before = balance(db, ws, "user", ids["Ben"])
    form = client.get(f"/sms/purchase?for={ids['Ben']}").text
    token, key = csrf_of(form), once_key_of(form)
    payment = client.post("/sms/purchase", data={"for": ids["Ben"], "quantity": "50", **BILLING,
                                                 "csrf_token": token, "idempotency_key": key})
    assert payment.status_code == 200 and "Payment" in payment.text and "5.50 AUD" in payment.text
    assert balance(db, ws, "user", ids["Ben"]) == before  # the payment screen applies nothing
    assert once_key_of(payment.text) == key  # the payment form carries the purchase's key
    paid = client.post("/sms/purchase/pay", data={"for": ids["Ben"], "quantity": "50", **BILLING,
                                                  "payment_method": "manual_invoice", "csrf_token": token,
                                                  "idempotency_key": key},
                       follow_redirects=False)
    assert paid.status_code == 303
    confirmation = client.get(paid.headers["location"])
    assert "Payment successful" in confirmation.text
    assert balance(db, ws, "user", ids["Ben"]) == before + 50
    link = re.search(r'href="(/sms/purchases/[^"]+/receipt\.pdf)"', confirmation.text).group(1)
    pdf = client.get(link)
    assert pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    number = re.search(r"SMS-\d{6}", confirmation.text).group(0)
    assert number in text and "Ann Example" in text


def test_member_cannot_buy_for_someone_outside_their_teams(web, people):
    ids = people["ids"]
    client = logged_in(web, people["emails"]["Ann"])
    html = client.get("/sms/purchase").text
    response = client.post("/sms/purchase", data={"for": ids["Cat"], "quantity": "5", **BILLING,
                                                  "csrf_token": csrf_of(html), "idempotency_key": once_key_of(html)})
    assert response.status_code == 422
    assert "only for yourself and members of your teams" in response.text


def test_only_masters_buy_system_credits(web, people):
    client = logged_in(web, people["emails"]["Mia"])
    html = client.get("/sms/purchase").text
    assert 'value="workspace"' not in html
    response = client.post("/sms/purchase", data={"for": "workspace", "quantity": "5", **BILLING,
                                                  "csrf_token": csrf_of(html), "idempotency_key": once_key_of(html)})
    assert response.status_code == 422 and "Only master users manage the workspace pool" in response.text


def test_transfer_needs_the_tick_then_moves(web, db, people):
    ids, ws = people["ids"], people["ws"]
    client = logged_in(web, people["emails"]["Ann"])
    page = f"/sms/transfer?account={ids['Ann']}&direction=from"
    form = {"account": ids["Ann"], "direction": "from", "other": ids["Ben"], "quantity": "30"}
    refused = post_form(client, "/sms/transfer", form, page=page)
    assert refused.status_code == 422 and "Tick the box to agree" in refused.text
    assert balance(db, ws, "user", ids["Ann"]) == 100
    done = post_form(client, "/sms/transfer", {**form, "agree": "yes"}, page=page)
    assert done.status_code == 303
    assert balance(db, ws, "user", ids["Ann"]) == 70 and balance(db, ws, "user", ids["Ben"]) == 30


def test_member_never_transfers_from_a_team_member(web, db, people):
    ids = people["ids"]
    client = logged_in(web, people["emails"]["Ben"])
    assert client.get(f"/sms/transfer?account={ids['Ann']}&direction=from").status_code == 403
    # Forged: "to Ben's account, from Ann's".
    forged = post_form(client, "/sms/transfer", {"account": ids["Ben"], "direction": "to", "other": ids["Ann"],
                                                 "quantity": "10", "agree": "yes"})
    assert forged.status_code == 403
    assert balance(db, people["ws"], "user", ids["Ann"]) == 100


def test_frozen_credits_are_shown_frozen_and_can_be_moved_out(web, db, people):
    ids, ws = people["ids"], people["ws"]
    master = logged_in(web, people["emails"]["master"])
    db.write(lambda session: parties.update_user(session, ids["Ann"], ps.UserUpdate(permissions=[]),
                                                 actor=parties.actor_for_user(session, session.get(
                                                     User, ids["master"]))))
    html = master.get("/sms").text
    row = html.split(f'data-account="{ids["Ann"]}"', 1)[1].split("</tr>", 1)[0]
    assert "frozen" in row and ">100<" in row
    report = master.get("/credits?credit_type=sms").text
    ann_pack = report.split("SMS credits, receipt SMS-000002", 1)[1].split("</tr>", 1)[0]
    assert "status-frozen" in ann_pack  # the active packs report shows the frozen credits as frozen
    moved = post_form(master, "/sms/transfer", {"account": ids["Ann"], "direction": "from", "other": "workspace",
                                                "quantity": "100", "agree": "yes"},
                      page=f"/sms/transfer?account={ids['Ann']}&direction=from")
    assert moved.status_code == 303
    assert balance(db, ws, "workspace", None) == 1100


def test_logs_csv_has_the_documented_columns_and_the_30_day_window(web, people):
    client = logged_in(web, people["emails"]["master"])
    html = client.get("/sms/logs?account=workspace").text
    assert "Purchased" in html and "+1,000" in html
    response = client.get("/sms/logs.csv?account=workspace")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == sms.LOG_CSV_COLUMNS
    assert [r[5] for r in rows[1:]] == ["purchase"]
    printable = client.get("/sms/logs?account=workspace&print=1").text
    assert "data-print" in printable


def test_logs_of_an_account_you_do_not_manage_are_refused(web, people):
    client = logged_in(web, people["emails"]["Ann"])
    assert client.get("/sms/logs?account=workspace").status_code == 403
    assert client.get(f"/sms/logs.csv?account={people['ids']['Cat']}").status_code == 403


def test_sms_credit_mode_is_master_only(web, db, people):
    member = logged_in(web, people["emails"]["Mia"])
    assert post_form(member, "/settings/sms", {"credit_mode": "shared"}).status_code == 403
    with db.read() as session:
        assert sms.sms_settings(session.get(Workspace, people["ws"]))["credit_mode"] == "individual"


# --- issue 4: server-side permission checks -----------------------------------------------------------

def test_member_cannot_change_holders(web, world):
    client = logged_in(web, world.member_email)
    assert client.get(f"/packs/{world.london_pack}/change-holder").status_code == 403
    response = post_form(client, f"/packs/{world.london_pack}/change-holder",
                         {"holder": f"office:{world.leeds_id}", "reason": "x", "confirm": "yes"})
    assert response.status_code == 403
    page = client.get(f"/packs/{world.london_pack}").text
    assert "London" in page and "Leeds starter pack" not in page.split("<h1", 1)[1].split("</h1>", 1)[0]


def test_pages_of_another_workspace_are_404(web, world, other_world):
    client = logged_in(web, world.master_email)
    for path in (f"/packs/{other_world.london_pack}", f"/packs/{other_world.london_pack}/history",
                 f"/offices/{other_world.london_id}", f"/offices/{other_world.london_id}?tab=credits",
                 f"/projects/{other_world.project_id}", f"/customers/{other_world.customer_id}",
                 f"/users/{other_world.wendy_id}"):
        assert client.get(path).status_code == 404, path


def test_history_of_a_purchased_pack_links_to_its_purchase_not_to_itself(web, db, people):
    client = logged_in(web, people["emails"]["master"])
    with db.read() as session:
        purchase = sms.list_purchases(session, actor=Actor.system(people["ws"]), limit=10).items[0]
        purchase_id, pack_id = purchase.id, purchase.pack_id
    fragment = client.get(f"/packs/{pack_id}/history?fragment=1").text
    assert f'href="/sms/purchases/{purchase_id}"' in fragment
    assert f'href="/packs/{pack_id}"' not in fragment


def test_history_of_a_crm_deal_pack_names_the_deal(web, world, db):
    from creditdesk.credits import schemas as cs
    from creditdesk.credits import packs

    def grant(session):
        master = parties.actor_for_user(session, session.scalar(
            select(User).where(User.email == world.master_email)))
        return packs.grant_pack(session, cs.PackCreate(
            holder=cs.Holder(kind="office", id=world.london_id), credit_type="hours", quantity=100, name="Deal pack",
            source="crm_deal", external_ref="deal-77"), actor=master).id
    pack_id = db.write(grant)
    fragment = logged_in(web, world.master_email).get(f"/packs/{pack_id}/history?fragment=1").text
    assert "CRM deal deal-77" in fragment


def test_master_switches_the_sms_credit_mode_audited_and_the_box_says_so(web, db, people):
    from creditdesk.audit import AuditEvent

    master = logged_in(web, people["emails"]["master"])
    # First a question: what the change does and leaves where it is; nothing changes yet.
    asked = post_form(master, "/settings/sms", {"credit_mode": "shared"})
    assert asked.status_code == 200 and 'id="confirm-mode-change"' in asked.text and "Nothing is moved" in asked.text
    with db.read() as session:
        assert sms.sms_settings(session.get(Workspace, people["ws"]))["credit_mode"] == "individual"
    response = post_form(master, "/settings/sms", {"credit_mode": "shared", "confirm": "yes"})
    assert response.status_code == 303
    assert "shared office SMS credits" in master.get("/sms").text
    with db.read() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == people["ws"],
                                                          AuditEvent.action == "workspace.sms_credit_mode")).all()
        assert [e.after["sms_credit_mode"] for e in events] == ["shared"]
        assert set(events[0].after) == {"sms_credit_mode", "holders", "credits"}
    # In shared mode individual user credits are not in use: a purchase for a user is refused, clearly.
    html = master.get("/sms/purchase").text
    refused = master.post("/sms/purchase/pay", data={"for": people["ids"]["Ann"], "quantity": "5", **BILLING,
                                                     "csrf_token": csrf_of(html), "idempotency_key": once_key_of(html)})
    assert refused.status_code == 422 and "shared office SMS credits" in refused.text


class _Pending:
    code, label = "web_test_pending", "Bank transfer (confirmed later)"

    def charge(self, purchase, *, idempotency_key):
        from creditdesk.sms import payments

        return payments.PaymentResult(status="pending", reference=f"bank:{purchase.id}")


@pytest.fixture
def pending_method():
    from creditdesk.sms import payments

    payments.register_payment_method(_Pending())
    yield _Pending.code
    payments.unregister_payment_method(_Pending.code)


def test_pending_payment_applies_nothing_until_a_master_records_it(web, db, people, pending_method):
    ids, ws = people["ids"], people["ws"]
    master = logged_in(web, people["emails"]["master"])
    html = master.get("/sms/purchase").text
    token, key = csrf_of(html), once_key_of(html)
    payment = master.post("/sms/purchase", data={"for": ids["Eve"], "quantity": "40", **BILLING,
                                                 "csrf_token": token, "idempotency_key": key})
    assert "Bank transfer (confirmed later)" in payment.text  # the payment screen offers the method
    paid = master.post("/sms/purchase/pay", data={"for": ids["Eve"], "quantity": "40", **BILLING,
                                                  "payment_method": pending_method, "csrf_token": token,
                                                  "idempotency_key": key},
                       follow_redirects=False)
    url = paid.headers["location"]
    page = master.get(url).text
    assert "Payment pending" in page and "receipt.pdf" not in page
    assert balance(db, ws, "user", ids["Eve"]) == 0
    assert master.get(url + "/receipt.pdf").status_code == 409
    recorded = post_form(master, url + "/payment", {"status": "paid", "reference": "BT-1"}, page=url)
    assert recorded.status_code == 303
    assert "Payment successful" in master.get(url).text
    assert balance(db, ws, "user", ids["Eve"]) == 40
    assert master.get(url + "/receipt.pdf").headers["content-type"] == "application/pdf"


def test_a_stored_javascript_reference_is_never_rendered_as_a_link(web, world, db):
    """F2: a consumption's reference URL stored before input was checked renders as plain text."""
    from sqlalchemy import update

    from creditdesk.credits import schemas as cs
    from creditdesk.credits import consumptions
    from creditdesk.ledger.models import LedgerTransfer

    def consume(session):
        master = parties.actor_for_user(session, session.scalar(select(User).where(User.email == world.master_email)))
        return consumptions.consume(session, cs.ConsumeRequest(
            context={"kind": "office", "id": world.leeds_id}, credit_type="hours", amount=100,
            reference={"kind": "Invoice", "id": "INV-2026-0043", "url": "https://billing.example/INV"}),
            actor=master).id
    operation = db.write(consume)
    db.write(lambda session: session.execute(update(LedgerTransfer).where(LedgerTransfer.operation_id == operation)
                                             .values(reference_url="javascript:alert(document.cookie)")))
    client = logged_in(web, world.master_email)
    for path in (f"/packs/{world.leeds_pack}/history?fragment=1", f"/packs/{world.leeds_pack}"):
        page = client.get(path).text
        assert "Invoice INV-2026-0043" in page
        assert "javascript:" not in page.lower(), path


def test_change_holder_of_an_sms_pack_follows_the_transfer_rules(web, db, people):
    """F1: the back office's change holder moves what remains of a pack as a transfer (a new pack of the new
    holder, the old one keeps its history), and SMS credits only to users who may send."""
    client = logged_in(web, people["emails"]["master"])
    with db.read() as session:
        purchase = next(p for p in sms.list_purchases(session, actor=Actor.system(people["ws"]), limit=10).items
                        if p.for_id == people["ids"]["Ann"])
        purchase_id, pack_id = purchase.id, purchase.pack_id
    page = f"/packs/{pack_id}/change-holder"
    refused = post_form(client, page, {"holder": f"user:{people['ids']['Dan']}", "reason": "x", "confirm": "yes"},
                        page=page)
    # Next to the holder, in words (never the permission's code).
    assert refused.status_code == 422 and "send_sms" not in refused.text
    assert "Dan may not send SMS" in refused.text.split('id="err-holder"', 1)[1].split("</span>", 1)[0]
    assert balance(db, people["ws"], "user", people["ids"]["Ann"]) == 100
    moved = post_form(client, page, {"holder": f"user:{people['ids']['Ben']}", "reason": "x", "confirm": "yes"},
                      page=page)
    assert moved.status_code == 303
    new_pack = moved.headers["location"].rsplit("/", 1)[1]
    assert new_pack != pack_id and new_pack.startswith("pack_")
    assert (balance(db, people["ws"], "user", people["ids"]["Ann"]),
            balance(db, people["ws"], "user", people["ids"]["Ben"])) == (0, 100)
    # The purchase's own pack still links to its receipt and says where its credits went.
    fragment = client.get(f"/packs/{pack_id}/history?fragment=1").text
    assert f'href="/sms/purchases/{purchase_id}"' in fragment
    assert "Ben" in fragment


def test_members_see_only_the_sms_packs_of_their_scope_in_the_back_office(web, db, people):
    """F1 (reads): the credits report and a pack page show SMS packs as sms.scope_of does."""
    with db.read() as session:
        pool_pack = next(p for p in sms.list_purchases(session, actor=Actor.system(people["ws"]), limit=10).items
                         if p.for_kind == "workspace").pack_id
    cat = logged_in(web, people["emails"]["Cat"])
    assert cat.get(f"/packs/{pool_pack}").status_code == 404
    assert pool_pack not in cat.get("/credits").text
    master = logged_in(web, people["emails"]["master"])
    assert master.get(f"/packs/{pool_pack}").status_code == 200


def test_a_frozen_user_with_nobody_to_send_to_is_told_who_can_move_the_credits(web, db, people):
    """Cat (South, no team) loses send_sms: no dead end, the page names who may move her credits."""
    ids = people["ids"]
    from creditdesk.sms import schemas as s

    def freeze(session):
        master = parties.actor_for_user(session, session.get(User, ids["master"]))
        sms.create_purchase(session, s.PurchaseCreate.model_validate({
            "for": {"kind": "user", "id": ids["Cat"]}, "quantity": 12,
            "billing": {"name": "X", "address": "Y", "email": "x@example.com"}}), actor=master)
        parties.update_user(session, ids["Cat"], ps.UserUpdate(permissions=[]), actor=master)
    db.write(freeze)
    cat = logged_in(web, people["emails"]["Cat"])
    page = cat.get(f"/sms/transfer?account={ids['Cat']}&direction=from").text
    assert "There is no account you may transfer to" in page
    helpers = page.split('id="transfer-helpers"', 1)[1].split("</p>", 1)[0]
    assert "Mona Master" in helpers and "Mia" not in helpers  # Mia manages North and East, not South
    # Eve's office manager (Mia, East) is named for Eve, with the master.
    with db.read() as session:
        from creditdesk.credits import governance
        names = [u.name for u in governance.who_can_move_for(session, people["ws"], ids["Eve"])]
    assert names == ["Mia", "Mona Master"]
