"""Purchases (seed 003 "Purchase Individual User SMS Credits"): who may buy for whom, credits applied
only on successful payment, receipt numbers, price and tax."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from creditdesk.credits.models import CreditType, Pack
from creditdesk.errors import Conflict, InvalidInput, NotPermitted
from creditdesk.sms import schemas as s
from creditdesk.sms import service as sms
from creditdesk.sms.models import SmsPurchase
from tests.api.helpers import audit_rows


def packs_of(world, name) -> list[Pack]:
    with world.db.read() as session:
        rows = list(session.scalars(select(Pack).where(Pack.workspace_id == world.ws, Pack.holder_id == (
            world.ws if name == "pool" else world.ids[name]))))
        session.expunge_all()
        return rows


# --- who may buy for whom ------------------------------------------------------------------------------

def test_master_buys_for_the_pool_and_for_any_user(world):
    pool = world.buy("master", "workspace", None, 1000)
    assert (pool.status, pool.for_kind, pool.for_id) == ("paid", "workspace", world.ws)
    assert world.balance("pool")["available"] == 1000
    cat = world.buy("master", "user", "Cat", 50)  # South: in no office of the master, no matter
    assert cat.status == "paid" and world.balance("Cat")["available"] == 50


def test_sms_credit_type_is_created_on_first_purchase_and_freezes_without_send_sms(world):
    world.buy("master", "user", "Ann", 5)
    with world.db.read() as session:
        ct = session.scalar(select(CreditType).where(CreditType.workspace_id == world.ws, CreditType.code == "sms"))
        assert (ct.required_permission, ct.scale) == ("send_sms", 0)
    (pack,) = packs_of(world, "Ann")
    assert (pack.source, pack.quantity, pack.is_paid, pack.unit) == ("purchase", 5, True, "sms")


@pytest.mark.parametrize("recipient", ["Ann", "Ben", "Eve", "Mia", "Max"])
def test_office_manager_buys_for_any_user_of_their_offices_primary_and_additional(world, recipient):
    purchase = world.buy("Mia", "user", recipient, 20)
    assert purchase.status == "paid"
    assert world.balance(recipient)["available"] == 20


def test_office_manager_cannot_buy_outside_their_offices_nor_for_the_pool(world):
    with pytest.raises(NotPermitted):
        world.buy("Mia", "user", "Cat", 20)
    with pytest.raises(NotPermitted) as exc:
        world.buy("Mia", "workspace", None, 20)
    assert exc.value.code == "pool_master_only"
    assert world.balance("Cat")["available"] == 0 and world.balance("pool")["available"] == 0


@pytest.mark.parametrize("recipient", ["Ann", "Ben"])
def test_member_buys_for_self_and_team_members(world, recipient):
    assert world.buy("Ann", "user", recipient, 10).status == "paid"
    assert world.balance(recipient)["available"] == 10


@pytest.mark.parametrize("recipient", ["Cat", "Eve", "Mia"])
def test_member_cannot_buy_for_users_outside_their_teams(world, recipient):
    with pytest.raises(NotPermitted):
        world.buy("Ann", "user", recipient, 10)
    assert world.balance(recipient)["available"] == 0


def test_member_cannot_buy_for_the_pool(world):
    with pytest.raises(NotPermitted):
        world.buy("Ann", "workspace", None, 10)


def test_manager_without_manage_office_credits_follows_the_member_rules(world):
    # Max is a manager in North, but without manage_office_credits he only has himself (no team).
    assert world.buy("Max", "user", "Max", 5).status == "paid"
    for other in ("Ann", "Ben"):
        with pytest.raises(NotPermitted):
            world.buy("Max", "user", other, 5)


@pytest.mark.parametrize("who", ["master", "Mia", "Ann"])
def test_credits_only_for_users_with_send_sms(world, who):
    # Dan is in Ann's team and Mia's office, but lacks send_sms.
    with pytest.raises(InvalidInput) as exc:
        world.buy(who, "user", "Dan", 10)
    assert exc.value.code == "recipient_cannot_send_sms"
    assert packs_of(world, "Dan") == []


@pytest.mark.parametrize("who", ["master", "Mia"])
def test_credits_only_for_active_users(world, who):
    with pytest.raises(InvalidInput) as exc:
        world.buy(who, "user", "Ian", 10)
    assert exc.value.code == "recipient_cannot_send_sms" and "deactivated" in exc.value.message


def test_refused_purchase_leaves_no_row(world):
    with pytest.raises(NotPermitted):
        world.buy("Ann", "user", "Cat", 10)
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(SmsPurchase)
                              .where(SmsPurchase.workspace_id == world.ws)) == 0


# --- applied only on successful payment ------------------------------------------------------------------

def test_declined_payment_applies_nothing_and_issues_no_receipt(world, test_payment_methods):
    purchase = world.buy("Ann", "user", "Ann", 10, method="test_declined")
    assert (purchase.status, purchase.number, purchase.pack_id) == ("failed", None, None)
    assert purchase.failure_reason == "Card declined"
    assert world.balance("Ann")["available"] == 0 and packs_of(world, "Ann") == []
    with pytest.raises(Conflict) as exc:
        world.write(lambda session: sms.purchase_receipt(session, purchase.id, actor=world.actor("Ann")))
    assert exc.value.code == "receipt_not_available"
    actions = [row.action for row in audit_rows(world.db, world.ws, object_id=purchase.id)]
    assert actions == ["sms_purchase.create", "sms_purchase.payment_failed"]


def test_a_gateway_that_raises_is_a_failed_payment(world, test_payment_methods):
    purchase = world.buy("Ann", "user", "Ann", 10, method="test_exploding")
    assert purchase.status == "failed" and "gateway unreachable" in purchase.failure_reason
    assert world.balance("Ann")["available"] == 0


def test_pending_payment_applies_credits_only_when_settled_paid(world, test_payment_methods):
    purchase = world.buy("Ann", "user", "Ben", 30, method="test_pending")
    assert (purchase.status, purchase.number, purchase.pack_id) == ("pending", None, None)
    assert world.balance("Ben")["available"] == 0

    with pytest.raises(NotPermitted):  # only masters record payment outcomes
        world.write(lambda session: sms.settle_purchase(session, purchase.id, s.PaymentOutcome(status="paid"),
                                                        actor=world.actor("Ann")))
    paid = world.write(lambda session: sms.settle_purchase(
        session, purchase.id, s.PaymentOutcome(status="paid", reference="bank:4711"), actor=world.actor("master")))
    assert (paid.status, paid.number, paid.payment_reference) == ("paid", 1, "bank:4711")
    assert world.balance("Ben")["available"] == 30
    with pytest.raises(Conflict) as exc:  # never twice
        world.write(lambda session: sms.settle_purchase(session, purchase.id, s.PaymentOutcome(status="paid"),
                                                        actor=world.actor("master")))
    assert exc.value.code == "purchase_not_pending"
    assert world.balance("Ben")["available"] == 30


def test_a_purchase_key_taken_by_a_user_first_still_grants_the_buyer(world, test_payment_methods):
    """F11: internal keys (`sms_purchase:<id>`) live apart from the keys users give their grants. A manager
    who granted a pack under the key of a pending purchase no longer takes the paid purchase's credits."""
    from creditdesk.credits import schemas as cs
    from creditdesk.credits import credit_types, packs

    world.write(lambda session: credit_types.create_credit_type(session, cs.CreditTypeCreate(code="credits", name="C"),
                                                                actor=world.actor("master")))
    purchase = world.buy("Ann", "user", "Ben", 30, method="test_pending")
    squat = world.write(lambda session: packs.grant_pack(session, cs.PackCreate(
        holder={"kind": "user", "id": world.ids["Max"]}, credit_type="credits", quantity=1, name="squat",
        idempotency_key=f"sms_purchase:{purchase.id}"), actor=world.actor("Max")).id)
    paid = world.write(lambda session: sms.settle_purchase(
        session, purchase.id, s.PaymentOutcome(status="paid"), actor=world.actor("master")))
    assert paid.pack_id != squat
    assert world.balance("Ben")["available"] == 30
    [pack] = packs_of(world, "Ben")
    assert (pack.id, pack.source, pack.external_ref, pack.idempotency_key, pack.internal_key) == (
        paid.pack_id, "purchase", purchase.id, None, f"sms_purchase:{purchase.id}")


def test_pending_payment_settled_failed_grants_nothing(world, test_payment_methods):
    purchase = world.buy("master", "workspace", None, 30, method="test_pending")
    failed = world.write(lambda session: sms.settle_purchase(
        session, purchase.id, s.PaymentOutcome(status="failed", reason="Never arrived"), actor=world.actor("master")))
    assert (failed.status, failed.failure_reason, failed.number) == ("failed", "Never arrived", None)
    assert world.balance("pool")["available"] == 0


def test_unknown_payment_method_is_refused(world):
    with pytest.raises(InvalidInput) as exc:
        world.buy("Ann", "user", "Ann", 10, method="bitcoin")
    assert exc.value.code == "unknown_payment_method"


# --- receipt numbers, price, tax -----------------------------------------------------------------------

def test_receipt_numbers_are_sequential_per_workspace_without_gaps(world, test_payment_methods, db):
    from tests.conftest import make_workspace
    from tests.sms.conftest import build_sms_world

    first = world.buy("master", "workspace", None, 1)
    world.buy("Ann", "user", "Ann", 1, method="test_declined")  # takes no number
    second = world.buy("Ann", "user", "Ben", 1)
    other = build_sms_world(db, make_workspace(db, name="Other").id)
    elsewhere = other.buy("master", "workspace", None, 1)
    third = world.buy("Mia", "user", "Eve", 1)
    assert [first.number, second.number, third.number] == [1, 2, 3]
    assert sms.receipt_number(third) == "SMS-000003"
    assert elsewhere.number == 1  # numbering is per workspace


def test_price_and_tax_come_from_the_workspace_settings_with_integer_rounding(world):
    world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(
        unit_price=7, currency="EUR", tax_rate_bp=1000, tax_label="VAT"), actor=world.actor("master")))
    purchase = world.buy("Ann", "user", "Ann", 15)
    # 15 x 7 = 105 cents; 10 % of it is 10.5, rounded half up to 11.
    assert (purchase.currency, purchase.unit_price, purchase.subtotal, purchase.tax, purchase.total) == (
        "EUR", 7, 105, 11, 116)
    assert (purchase.tax_rate_bp, purchase.tax_label) == (1000, "VAT")
    (pack,) = packs_of(world, "Ann")
    assert (pack.price_paid, pack.currency) == (105, "EUR")  # the credits' cost is net of tax


def test_default_price_and_tax(world):
    purchase = world.buy("Ann", "user", "Ann", 100)
    assert (purchase.currency, purchase.unit_price, purchase.subtotal, purchase.tax, purchase.total) == (
        "AUD", 10, 1000, 100, 1100)
    assert purchase.seller["name"] == "Test workspace"


@pytest.mark.parametrize(("subtotal", "rate", "tax"), [(0, 1000, 0), (1, 1000, 0), (5, 1000, 1), (4, 1250, 1),
                                                       (3, 1250, 0), (99_999, 1500, 15_000), (10**12, 10_000, 10**12)])
def test_tax_rounds_half_up_in_integers(subtotal, rate, tax):
    assert sms.compute_tax(subtotal, rate) == tax


def test_later_price_changes_do_not_rewrite_a_purchase(world):
    purchase = world.buy("Ann", "user", "Ann", 10)
    world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(unit_price=99, tax_rate_bp=0),
                                                    actor=world.actor("master")))
    with world.db.read() as session:
        again = sms.get_purchase(session, purchase.id, actor=world.actor("Ann"))
        assert (again.unit_price, again.total) == (10, 110)


def test_purchases_are_audited(world):
    purchase = world.buy("Ann", "user", "Ben", 10)
    rows = audit_rows(world.db, world.ws, object_id=purchase.id)
    assert [r.action for r in rows] == ["sms_purchase.create", "sms_purchase.paid"]
    assert all(r.actor_id == world.ids["Ann"] for r in rows)
    assert rows[1].after["pack_id"] == purchase.pack_id and rows[1].after["number"] == 1
    pack_rows = audit_rows(world.db, world.ws, action="pack.create", object_id=purchase.pack_id)
    assert pack_rows and pack_rows[0].actor_id == world.ids["Ann"]


def test_purchases_are_visible_to_the_buyer_and_managers_of_the_account_only(world):
    from creditdesk.errors import NotFound

    purchase = world.buy("Ann", "user", "Ben", 10)
    for who in ("Ann", "Ben", "Mia", "master"):
        with world.db.read() as session:
            assert sms.get_purchase(session, purchase.id, actor=world.actor(who)).id == purchase.id
    for who in ("Cat", "Eve", "Max"):
        with world.db.read() as session, pytest.raises(NotFound):
            sms.get_purchase(session, purchase.id, actor=world.actor(who))
        with world.db.read() as session:
            assert sms.list_purchases(session, actor=world.actor(who)).items == []


def test_individual_purchases_need_individual_mode(world):
    world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate(
        credit_mode="shared", confirm_mode_change=True), actor=world.actor("master")))
    with pytest.raises(Conflict) as exc:
        world.buy("Ann", "user", "Ann", 10)
    assert exc.value.code == "sms_credit_mode_shared"
    assert world.buy("master", "workspace", None, 10).status == "paid"  # the pool is there in both modes
