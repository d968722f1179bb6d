"""Catalogue services: prices with their fallback, the rate in force, credit package expiry, the database's
own guard on default plans."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from creditdesk.audit import Actor
from creditdesk.catalog import schemas as s
from creditdesk.catalog import service as catalog
from creditdesk.catalog.models import PricePlan, Product
from creditdesk.credits import schemas as cs
from creditdesk.credits import credit_types
from creditdesk.errors import InvalidInput, NotFound, NotPermitted
from creditdesk.ids import new_id
from tests.parties.factories import make_user, master_actor, actor_of


@pytest.fixture
def master(db, workspace) -> Actor:
    return master_actor(db, workspace.id)


@pytest.fixture
def products(db, master):
    """Products hours (GST) and widget (no tax class); plans aud (default), aud-vip, aud-old (inactive), eur
    (not default); hours costs 150.00 in aud and 120.00 in aud-vip; widget 10.00 in aud only."""
    def fn(session):
        catalog.create_tax_class(session, s.TaxClassCreate(code="gst", name="GST"), actor=master)
        hours = catalog.create_product(session, s.ProductCreate(code="hours", name="Hours", kind="service",
                                                                unit="hour", tax_class="gst"), actor=master)
        widget = catalog.create_product(session, s.ProductCreate(code="widget", name="Widget", kind="physical_good",
                                                                 unit="each"), actor=master)
        plans = {}
        for code, currency, default, active in (("aud", "AUD", True, True), ("aud-vip", "AUD", False, True),
                                                ("aud-old", "AUD", False, False), ("eur", "EUR", False, True)):
            plans[code] = catalog.create_price_plan(session, s.PricePlanCreate(
                code=code, name=code.upper(), currency=currency, is_default=default, active=active), actor=master).id
        for plan, product, price in (("aud", "hours", 15000), ("aud-vip", "hours", 12000), ("aud", "widget", 1000),
                                     ("aud-old", "widget", 500)):
            catalog.set_price(session, plans[plan], s.PriceSet(product=product, unit_price=price), actor=master)
        return {"hours": hours.id, "widget": widget.id, **plans}
    return db.write(fn)


def quote(db, workspace, product, currency, plan=None):
    with db.read() as session:
        return catalog.price_of(session, workspace.id, product, currency, plan)


def test_price_of_the_named_plan_then_the_default(db, workspace, products):
    vip = quote(db, workspace, "hours", "AUD", products["aud-vip"])
    assert (vip.unit_price, vip.price_plan_id, vip.from_default) == (12000, products["aud-vip"], False)
    # No price in the named plan: the currency's default plan's.
    widget = quote(db, workspace, products["widget"], "aud", products["aud-vip"])
    assert (widget.unit_price, widget.price_plan_id, widget.from_default) == (1000, products["aud"], True)
    assert quote(db, workspace, "hours", "AUD").unit_price == 15000
    # An inactive plan is passed over for the default.
    assert quote(db, workspace, "widget", "AUD", products["aud-old"]).unit_price == 1000


def test_price_of_without_a_price_is_a_clear_error(db, workspace, products):
    with pytest.raises(InvalidInput) as err:
        quote(db, workspace, "hours", "EUR", products["eur"])
    assert err.value.code == "no_price"
    assert "'hours'" in err.value.message and "'eur'" in err.value.message
    assert "no default EUR price plan" in err.value.message
    with pytest.raises(InvalidInput) as err:
        quote(db, workspace, "hours", "USD")
    assert err.value.code == "no_price"
    with pytest.raises(InvalidInput) as err:
        quote(db, workspace, "hours", "AUD", products["eur"])
    assert err.value.code == "currency_mismatch"
    with pytest.raises(InvalidInput) as err:
        quote(db, workspace, "hours", "XYZ")
    assert err.value.code == "unknown_currency"
    with pytest.raises(NotFound):
        quote(db, workspace, "ghost", "AUD")


def test_price_of_another_workspace_finds_nothing(db, workspace, other_workspace, products):
    with pytest.raises(NotFound):
        quote(db, other_workspace, "hours", "AUD")
    with pytest.raises(NotFound):
        quote(db, other_workspace, products["hours"], "AUD")


def test_rate_in_force_is_the_latest_valid_from(db, workspace, master, products):
    def fn(session):
        for rate, day in ((1000, date(2020, 1, 1)), (1500, date(2027, 7, 1))):
            catalog.create_tax_rate(session, s.TaxRateCreate(tax_class="gst", rate_bp=rate, valid_from=day),
                                    actor=master)
    db.write(fn)
    with db.read() as session:
        hours = session.get(Product, products["hours"])
        widget = session.get(Product, products["widget"])
        assert catalog.tax_of(session, hours, date(2019, 12, 31)) is None
        assert catalog.tax_of(session, hours, date(2020, 1, 1)).rate_bp == 1000
        assert catalog.tax_of(session, hours, date(2027, 6, 30)).rate_bp == 1000
        assert catalog.tax_of(session, hours, date(2027, 7, 1)).rate_bp == 1500
        assert catalog.tax_of(session, widget, date(2027, 7, 1)) is None


@pytest.mark.parametrize("policy,bought,expires", [
    ({"kind": "fixed_date", "month": 12, "day": 31}, date(2027, 3, 1), date(2027, 12, 31)),
    ({"kind": "fixed_date", "month": 12, "day": 31}, date(2027, 12, 31), date(2028, 12, 31)),
    ({"kind": "fixed_date", "month": 6, "day": 30}, date(2027, 7, 1), date(2028, 6, 30)),
    ({"kind": "months_after_purchase", "months": 1}, date(2027, 1, 31), date(2027, 2, 28)),
    ({"kind": "months_after_purchase", "months": 12}, date(2028, 2, 29), date(2029, 2, 28)),
    ({"kind": "months_after_purchase", "months": 14}, date(2027, 11, 15), date(2029, 1, 15)),
    ({"kind": "none"}, date(2027, 1, 1), None),
])
def test_credit_package_expiry(db, master, policy, bought, expires):
    def fn(session):
        credit_types.create_credit_type(session, cs.CreditTypeCreate(code="sms", name="SMS"), actor=master)
        catalog.create_product(session, s.ProductCreate(code="msg", name="Message", kind="service", unit="message"),
                               actor=master)
        return catalog.create_product(session, s.ProductCreate.model_validate({
            "code": "bundle", "name": "Bundle", "kind": "credit_package", "unit": "bundle", "credit_package": {
                "credit_type": "sms", "credit_quantity": 100, "applicable_product_codes": ["msg"],
                "expiry": policy}}), actor=master)
    product = db.write(fn)
    assert catalog.package_expiry(product, bought) == expires


def test_one_default_plan_per_currency_is_enforced_by_the_database(db, workspace, products):
    now = datetime.now(UTC)

    def second_default(session):
        session.add(PricePlan(id=new_id("plan"), workspace_id=workspace.id, code="sneaky", name="Sneaky",
                              currency="AUD", is_default=True, active=True, created_at=now, updated_at=now))
        session.flush()
    with pytest.raises(IntegrityError):
        db.write(second_default)

    def other_currency_default(session):
        session.add(PricePlan(id=new_id("plan"), workspace_id=workspace.id, code="nzd", name="NZD",
                              currency="NZD", is_default=True, active=True, created_at=now, updated_at=now))
    db.write(other_currency_default)  # one default per currency: another currency has its own


def test_moving_the_default_keeps_one(db, workspace, master, products):
    db.write(lambda session: catalog.update_price_plan(session, products["aud-vip"],
                                                       s.PricePlanUpdate(is_default=True), actor=master))
    with db.read() as session:
        assert session.get(PricePlan, products["aud-vip"]).is_default
        assert not session.get(PricePlan, products["aud"]).is_default
    with pytest.raises(InvalidInput) as err:
        quote(db, workspace, "widget", "AUD")
    assert err.value.code == "no_price"


def test_only_masters_write(db, workspace, master, products):
    manager = actor_of(db, make_user(db, actor=master, name="Manager", role="manager",
                                     permissions=["manage_packs", "manage_users"]))
    with pytest.raises(NotPermitted):
        db.write(lambda session: catalog.set_price(session, products["aud"], s.PriceSet(product="hours",
                                                                                        unit_price=1), actor=manager))
    with pytest.raises(NotPermitted):
        db.write(lambda session: catalog.create_tax_class(session, s.TaxClassCreate(code="x", name="X"),
                                                          actor=manager))
    assert catalog.can_write_catalogue(master) and not catalog.can_write_catalogue(manager)
