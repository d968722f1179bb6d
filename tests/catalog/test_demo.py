"""The catalogue demo: products of every kind with AUD and EUR prices, made once."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from creditdesk import demo
from creditdesk.catalog import service as catalog
from creditdesk.catalog.lines import compute_line
from creditdesk.catalog.models import Product
from creditdesk.credits import schemas as cs
from creditdesk.credits import credit_types
from tests.parties.factories import master_actor


def test_catalogue_demo_is_complete_and_made_once(db, workspace):
    actor = master_actor(db, workspace.id)

    def fn(session):
        for code, scale in (("hours", 2), ("sms", 0)):
            credit_types.create_credit_type(session, cs.CreditTypeCreate(code=code, name=code, scale=scale), actor=actor)
        demo._catalogue_demo(session, actor)
        demo._catalogue_demo(session, actor)  # idempotent: the second call adds nothing
    db.write(fn)
    with db.read() as session:
        products = list(session.scalars(select(Product).where(Product.workspace_id == workspace.id)))
        assert {p.kind for p in products} == {"service", "credit_package", "subscription_service", "physical_good",
                                              "one_time_service"}
        assert len(products) == session.scalar(select(func.count(func.distinct(Product.code)))
                                                .where(Product.workspace_id == workspace.id))
        bundle = catalog.get_product(session, workspace.id, "sms-bundle-500")
        assert catalog.package_expiry(bundle, date(2027, 3, 1)) == date(2027, 12, 31)
        for currency in ("AUD", "EUR"):
            for product in products:
                assert catalog.price_of(session, workspace.id, product.code, currency).unit_price > 0
        hour = catalog.get_product(session, workspace.id, "consulting-hour")
        rate = catalog.tax_of(session, hour, date(2027, 1, 1))
        price = catalog.price_of(session, workspace.id, hour.id, "AUD").unit_price
        line = compute_line(price, "2.5", rate_bp=rate.rate_bp, inclusive=rate.inclusive)
        assert (line.net, line.tax, line.gross) == (45000, 4500, 49500)
