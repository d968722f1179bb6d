"""What a tester walking seed 003 found, on the services and the API (SQLite and PostgreSQL):

1. back in individual mode, office pools still holding credits are leftover pools: listed, and moved to the pool
   or to users who may send SMS on every path (/v1/sms/transfers, /v1/transfers, change of holder);
2. one log line per transfer per account (the sum), with its memo, in the log, the API and the CSV;
4. the test payment (stays pending) only for master users, who alone can settle it;
6. who may not send SMS is told why, and who can change it, before typing;
7. amounts with thousands separators, "SMS", references in words and receipt numbers, one name for the pool.
"""

from __future__ import annotations

import csv
import io

import pytest

from creditdesk.credits import governance, transfers
from creditdesk.credits import schemas as cs
from creditdesk.credits.errors import CreditsFrozen, InsufficientCredits
from creditdesk.credits.models import CreditType, Pack
from creditdesk.credits.packs import HolderRef
from creditdesk.errors import InvalidInput, NotPermitted
from creditdesk.sms import schemas as s
from creditdesk.sms import service as sms
from tests.api.credits_world import Api, assert_ledger_clean, problem
from tests.api.helpers import auth
from tests.parties.factories import make_api_key, master_actor
from tests.sms.conftest import BILLING


def _mode(world, mode):
    world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(
        credit_mode=mode, confirm_mode_change=True), actor=world.actor("master")))


def _ref(world, name):
    if name == "pool":
        return {"kind": "workspace"}
    if name in world.offices:
        return {"kind": "office", "id": world.offices[name]}
    return {"kind": "user", "id": world.ids[name]}


def _buy(world, who, name, quantity):
    body = s.PurchaseCreate.model_validate({"for": _ref(world, name), "quantity": quantity, "billing": BILLING})
    return world.write(lambda session: sms.create_purchase(session, body, actor=world.actor(who)))


def _move(world, who, source, to, quantity, memo=""):
    body = s.SmsTransferCreate.model_validate({"from": _ref(world, source), "to": _ref(world, to),
                                               "quantity": quantity, "agree_to_conditions": True, "memo": memo})
    return world.write(lambda session: sms.transfer(session, body, actor=world.actor(who)))


def _box(world, who):
    with world.db.read() as session:
        return {(r.kind, r.name): r for r in sms.list_accounts(session, actor=world.actor(who))}


@pytest.fixture
def leftover(world):
    """Shared mode: 50 bought for North's pool, 20 for East's; then back to individual credits."""
    _mode(world, "shared")
    _buy(world, "master", "North", 50)
    _buy(world, "master", "East", 20)
    _mode(world, "individual")
    return world


# --- 1. leftover office pools in individual mode ----------------------------------------------------------

def test_leftover_pools_are_listed_to_those_who_may_move_them(leftover):
    world = leftover
    north = _box(world, "master")[("office", "North")]
    assert (north.leftover, north.available, north.frozen, north.can_send_sms) == (True, 0, 50, False)
    assert north.actions == ["transfer_from", "logs"]
    assert ("office", "South") not in _box(world, "master")  # holds nothing: not listed
    # An office manager sees the leftover pools of her offices (North and East); a member none.
    assert {k for k in _box(world, "Mia") if k[0] == "office"} == {("office", "North"), ("office", "East")}
    assert not [k for k in _box(world, "Ann") if k[0] == "office"]
    # The home page's "needs attention": the leftover pools, in the viewer's reach.
    with world.db.read() as session:
        assert {r.name for r in sms.leftover_credits(session, actor=world.actor("master"))} == {"North", "East"}
        assert sms.leftover_credits(session, actor=world.actor("Ann")) == []


def test_masters_move_a_leftover_pool_to_the_pool_or_users_who_may_send(leftover):
    world = leftover
    _move(world, "master", "North", "pool", 10, memo="back to the pool")
    _move(world, "master", "North", "Ann", 5)
    assert world.balance("pool")["available"] == 10 and world.balance("Ann")["available"] == 5
    with pytest.raises(InvalidInput) as dan:
        _move(world, "master", "North", "Dan", 1)  # no permission to send SMS
    assert dan.value.code == "recipient_cannot_send_sms" and "Dan may not send SMS" in dan.value.message
    with pytest.raises(InvalidInput) as office:
        _move(world, "master", "North", "East", 1)  # pools do not fill pools in individual mode
    assert office.value.code == "invalid_sms_account"
    # Office managers: their offices' pools to users of their offices, never the workspace pool.
    _move(world, "Mia", "North", "Ben", 3)
    with pytest.raises(NotPermitted):
        _move(world, "Mia", "North", "pool", 1)
    with pytest.raises(NotPermitted):
        _move(world, "Mia", "North", "Cat", 1)  # South: not one of hers
    with pytest.raises(NotPermitted):
        _move(world, "Ann", "North", "Ben", 1)
    # Still not spent in individual mode: the pool sends nothing for Ann's office.
    assert _box(world, "master")[("office", "North")].frozen == 32
    # A change of holder of the office pool's pack follows the same rule.
    with world.db.read() as session:
        pack_id = session.query(Pack.id).filter(Pack.holder_kind == "office", Pack.holder_id == world.offices["East"],
                                                Pack.status == "active").scalar()
    with pytest.raises(InvalidInput):
        world.write(lambda session: transfers.change_holder(session, pack_id, cs.ChangeHolder(
            holder={"kind": "user", "id": world.ids["Dan"]}), actor=world.actor("master")))
    world.write(lambda session: transfers.change_holder(session, pack_id, cs.ChangeHolder(
        holder={"kind": "user", "id": world.ids["Eve"]}, reason="East closed its pool"), actor=world.actor("master")))
    assert world.balance("Eve")["available"] == 20
    assert ("office", "East") not in _box(world, "master")  # emptied: no longer listed
    with world.db.read() as session:
        assert [r.name for r in sms.leftover_credits(session, actor=world.actor("master"))] == ["North"]


@pytest.fixture
def api(client, world, workspace):
    master = master_actor(world.db, world.ws)
    clients = {"master": Api(client, workspace.headers)}
    for name in ("Mia", "Ann", "Dan"):
        clients[name] = Api(client, auth(make_api_key(world.db, actor=master, user_id=world.ids[name])))
    return clients


def test_every_api_path_moves_a_leftover_pool(api, leftover):
    world = leftover
    rows = {r["name"]: r for r in api["master"].get("/v1/sms/accounts").json()["data"]}
    assert rows["North"]["leftover"] is True and rows["North"]["frozen"] == 50
    assert rows["North"]["actions"] == ["transfer_from", "logs"]
    moved = api["master"].post("/v1/sms/transfers", {"from": _ref(world, "North"), "to": _ref(world, "Ann"),
                                                     "quantity": 7, "agree_to_conditions": True}, key="sms-t")
    assert moved.status_code == 201, moved.text
    moved = api["master"].post("/v1/transfers", {"from": _ref(world, "North"), "to": {"kind": "workspace"},
                                                 "credit_type": "sms", "amount": 8}, key="gen-t")
    assert moved.status_code == 201, moved.text
    problem(api["master"].post("/v1/transfers", {"from": _ref(world, "North"), "to": _ref(world, "Dan"),
                                                 "credit_type": "sms", "amount": 1}, key="gen-dan"),
            422, "recipient_cannot_send_sms")
    problem(api["Mia"].post("/v1/sms/transfers", {"from": _ref(world, "North"), "to": {"kind": "workspace"},
                                                  "quantity": 1, "agree_to_conditions": True}, key="mia-pool"),
            403, "pool_master_only")
    assert api["Mia"].post("/v1/sms/transfers", {"from": _ref(world, "North"), "to": _ref(world, "Ann"),
                                                 "quantity": 2, "agree_to_conditions": True},
                           key="mia-ann").status_code == 201
    assert api["Ann"].post("/v1/sms/transfers", {"from": _ref(world, "North"), "to": _ref(world, "Ann"),
                                                 "quantity": 1, "agree_to_conditions": True},
                           key="ann-self").status_code == 403
    assert (world.balance("Ann")["available"], world.balance("pool")["available"]) == (9, 8)
    rows = {r["name"]: r for r in api["master"].get("/v1/sms/accounts").json()["data"]}
    assert rows["North"]["frozen"] == 33
    assert_ledger_clean(world.db, world.ws)


# --- 2. one log line per transfer and account, with the memo --------------------------------------------

def test_a_transfer_of_many_packs_is_one_line_per_side_with_its_memo(world, frozen_clock):
    for quantity in (50, 20, 199, 25):  # four packs for Ann
        _buy(world, "master", "Ann", quantity)
    frozen_clock.advance(days=1)
    _move(world, "master", "Ann", "Ben", 290, memo="Ann moves to the East office")
    with world.db.read() as session:
        ann = sms.list_logs(session, actor=world.actor("master"), account=world.ids["Ann"]).items
        ben = sms.list_logs(session, actor=world.actor("master"), account=world.ids["Ben"]).items
        everyone = sms.list_logs(session, actor=world.actor("master")).items
        csv_rows = [dict(zip(sms.LOG_CSV_COLUMNS, sms.log_csv_row(e)))
                    for e in sms.iter_logs(session, actor=world.actor("master"), account=world.ids["Ann"], batch=1)]
    assert [(e.movement, e.quantity) for e in ann] == [("transfer_out", 290), ("purchase", 25), ("purchase", 199),
                                                       ("purchase", 20), ("purchase", 50)]
    assert (ann[0].memo, ann[0].counterparty.name, ann[0].reference) == ("Ann moves to the East office", "Ben",
                                                                         "Transfer")
    assert [(e.movement, e.quantity, e.memo) for e in ben] == [("transfer_in", 290, "Ann moves to the East office")]
    assert ann[0].id == ben[0].id and ann[0].id.startswith("xfer_")
    # All accounts: the two sides of the transfer, each once, receiver first.
    transfer_lines = [(e.account.name, e.direction, e.quantity) for e in everyone if e.movement.startswith("transfer")]
    assert transfer_lines == [("Ben", "in", 290), ("Ann", "out", 290)]
    # The CSV (read one line per page: a movement never straddles two pages) says the same, with the memo.
    assert [(r["movement"], r["quantity"], r["memo"]) for r in csv_rows][0] == (
        "transfer_out", "290", "Ann moves to the East office")
    assert len(csv_rows) == 5
    assert [r["reference"] for r in csv_rows[1:]] == [f"Receipt SMS-{n:06d}" for n in (4, 3, 2, 1)]


def test_a_message_paid_by_two_packs_is_one_line(world):
    _buy(world, "master", "Ann", 1)
    _buy(world, "master", "Ann", 5)
    message = world.send("Ann", "x" * 200)  # two segments: one credit from each pack
    with world.db.read() as session:
        lines = sms.list_logs(session, actor=world.actor("Ann"), account=world.ids["Ann"]).items
    sent = [e for e in lines if e.movement == "sent"]
    assert [(e.quantity, e.reference, e.reference_id) for e in sent] == [(2, "SMS to +61400000001", message.id)]


def test_logs_api_has_one_line_per_transfer_with_memo(api, world):
    for quantity in (3, 4):
        _buy(world, "master", "pool", quantity)
    assert api["master"].post("/v1/sms/transfers", {"from": {"kind": "workspace"}, "to": _ref(world, "Ann"),
                                                    "quantity": 7, "agree_to_conditions": True, "memo": "launch"},
                              key="t7").status_code == 201
    rows = api["master"].get("/v1/sms/logs", {"account": "workspace"}).json()["data"]
    assert [(r["movement"], r["quantity"], r["memo"]) for r in rows] == [
        ("transfer_out", 7, "launch"), ("purchase", 4, None), ("purchase", 3, None)]
    assert rows[0]["account"]["name"] == "System credits (unallocated)"
    table = list(csv.DictReader(io.StringIO(api["master"].get("/v1/sms/logs.csv", {"account": "workspace"}).text)))
    assert [(r["movement"], r["quantity"], r["memo"], r["account_name"]) for r in table][0] == (
        "transfer_out", "7", "launch", "System credits (unallocated)")


# --- 4. the test payment -------------------------------------------------------------------------------

def test_the_test_payment_is_for_master_users_only(api, world):
    assert "test" in api["master"].get("/v1/sms/settings").json()["payment_methods"]
    assert "test" not in api["Ann"].get("/v1/sms/settings").json()["payment_methods"]
    problem(api["Ann"].post("/v1/sms/purchases", {"for": _ref(world, "Ann"), "quantity": 5, "billing": BILLING,
                                                  "payment_method": "test"}, key="ann-test"),
            403, "payment_method_not_allowed")
    pending = api["master"].post("/v1/sms/purchases", {"for": _ref(world, "Ann"), "quantity": 5, "billing": BILLING,
                                                       "payment_method": "test"}, key="m-test", status=201).json()
    assert pending["status"] == "pending"
    with world.db.read() as session:
        listed = [p.id for p in sms.list_purchases(session, actor=world.actor("master"), status="pending").items]
    assert listed == [pending["id"]]


# --- 6. who may not send -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["individual", "shared"])
def test_who_may_not_send_is_told_why_and_who_can_change_it(world, mode):
    if mode == "shared":
        _mode(world, "shared")
    with world.db.read() as session:
        assert sms.sending_refusal(session, world.actor("Ann")) is None
        dan = sms.sending_refusal(session, world.actor("Dan"))
    assert dan.startswith("You may not send SMS: you do not have permission to send SMS.")
    assert "Master can give it to you" in dan and "send_sms" not in dan
    assert ("frozen" in dan) is (mode == "individual")
    with pytest.raises(NotPermitted) as refused:
        world.send("Dan", "Hello")
    assert refused.value.message == dan
    # Bob's case: the permission removed after he was given credits.
    if mode == "individual":
        _buy(world, "master", "Ben", 5)
    world.set_permissions("Ben", [])
    with world.db.read() as session:
        assert sms.sending_refusal(session, world.actor("Ben")).startswith("You may not send SMS")
    with pytest.raises((NotPermitted, CreditsFrozen)):
        world.send("Ben", "Hello")


# --- 5. change of holder: who may hold an SMS pack ----------------------------------------------------------

def test_sms_receivers_offer_only_holders_the_rules_allow(world):
    purchase = _buy(world, "master", "Ann", 10)
    world.set_permissions("Mia", ["send_sms", "manage_office_credits", "manage_packs"])
    with world.db.read() as session:
        pack = session.get(Pack, purchase.pack_id)
        ct = session.get(CreditType, pack.credit_type_id)
        source = HolderRef("user", world.ids["Ann"])
        candidates = [HolderRef("workspace", world.ws), HolderRef("office", world.offices["North"]),
                      *(HolderRef("user", world.ids[n]) for n in ("Ann", "Ben", "Dan", "Ian", "Cat"))]
        master = {(h.kind, h.id) for h in governance.sms_receivers(session, world.actor("master"), ct, source,
                                                                   candidates)}
        mia = {(h.kind, h.id) for h in governance.sms_receivers(session, world.actor("Mia"), ct, source, candidates)}
    assert master == {("workspace", world.ws), ("user", world.ids["Ben"]), ("user", world.ids["Cat"])}
    assert mia == {("user", world.ids["Ben"])}  # her offices' users who may send; never the pool


# --- 7. words --------------------------------------------------------------------------------------------

def test_not_enough_to_transfer_is_said_with_separators_and_sms(world):
    _buy(world, "master", "pool", 6007)
    with pytest.raises(InsufficientCredits) as refused:
        _move(world, "master", "pool", "Ann", 99_999_999)
    assert refused.value.message == ("Not enough SMS credits to transfer: System credits (unallocated) has 6,007 "
                                     "available, 99,999,999 requested. Nothing was transferred.")
    assert (refused.value.details["available"], refused.value.details["requested"]) == (6007, 99_999_999)
