"""Credit packages sold on invoices (issue 13, seed 001): the pack is made when the invoice is paid, once;
its expiry from the package's policy; product_not_covered vs insufficient credits; free grants; the
customer's packages and their audited corrections."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from creditdesk import clock
from creditdesk.audit import AuditEvent
from creditdesk.billing import invoices, packages, payments
from creditdesk.billing import invoice_schemas as ins
from creditdesk.catalog import schemas as cats
from creditdesk.catalog import service as catalog
from creditdesk.credits import credit_types
from creditdesk.credits import schemas as cs
from creditdesk.credits.models import Pack
from creditdesk.errors import CreditdeskError, InvalidInput
from tests.billing.factories import Shop


@pytest.fixture
def shop(db):
    shop = Shop(db)
    actor = shop.actor

    def fn(s):
        credit_types.create_credit_type(s, cs.CreditTypeCreate(code="massage", name="Massages"), actor=actor)
        for code, name, price in (("massage", "Massage", 9000), ("facial", "Facial", 7000)):
            catalog.create_product(s, cats.ProductCreate(code=code, name=name, kind="service", unit="each"),
                                   actor=actor)
            catalog.set_price(s, shop.plans["AUD"], cats.PriceSet(product=code, unit_price=price), actor=actor)
        catalog.create_product(s, cats.ProductCreate.model_validate({
            "code": "massage-10", "name": "10 massages", "kind": "credit_package", "unit": "pack",
            "credit_package": {"credit_type": "massage", "credit_quantity": 10, "applicable_product_codes": ["massage"],
                               "expiry": {"kind": "months_after_purchase", "months": 3}}}), actor=actor)
        catalog.set_price(s, shop.plans["AUD"], cats.PriceSet(product="massage-10", unit_price=80000), actor=actor)
    db.write(fn)
    shop.acct = shop.account()
    return shop


def pack_of(db, invoice):
    with db.read() as s:
        found = packages.packs_of_invoice(s, invoices.get_invoice(s, invoice.workspace_id, invoice.id))
        for p in found:
            s.expunge(p)
        return found


def mark_paid(db, shop, invoice):
    return db.write(lambda s: payments.mark_paid(s, invoice.id, actor=shop.actor))


def test_the_pack_is_made_when_the_invoice_is_paid_and_only_once(db, shop):
    inv = shop.posted(shop.acct, [("massage-10", "1")])
    assert pack_of(db, inv) == []
    mark_paid(db, shop, inv)
    [pack] = pack_of(db, inv)
    assert (pack.holder_kind, pack.holder_id, pack.quantity, pack.source, pack.is_paid) == (
        "customer", shop.customer_id, 10, "purchase", True)
    assert pack.price_paid == shop.get(inv).total and pack.product_codes == ["massage"]
    with db.read() as s:
        line_id = invoices.lines_of(s, inv.id)[0].id
    assert pack.external_ref == line_id
    # Settling again (the hook run twice) answers with the same pack.
    again = db.write(lambda s: [p.id for p in packages.grant_for_settled_invoice(
        s, invoices.get_invoice(s, shop.ws.id, inv.id), actor=shop.actor)])
    assert again == [pack.id]
    with db.read() as s:
        assert s.scalar(select(Pack.id).where(Pack.workspace_id == shop.ws.id).limit(5)) == pack.id
        assert len(list(s.scalars(select(Pack).where(Pack.workspace_id == shop.ws.id)))) == 1


def test_a_payment_in_part_makes_no_pack_the_rest_does(db, shop):
    inv = shop.posted(shop.acct, [("massage-10", "1")])
    shop.pay(shop.acct, 1000, allocations=[(inv.id, 1000)])
    assert pack_of(db, inv) == []
    shop.pay(shop.acct, shop.get(inv).amount_due, allocations=[(inv.id, shop.get(inv).amount_due)])
    assert len(pack_of(db, inv)) == 1


def test_expiry_is_the_purchase_date_plus_the_policy_months(db, shop):
    inv = shop.posted(shop.acct, [("massage-10", "1")])
    mark_paid(db, shop, inv)
    settled = shop.get(inv).settled_at
    [pack] = pack_of(db, inv)
    day = settled.date()
    month0 = day.month - 1 + 3
    import calendar
    y, m = day.year + month0 // 12, month0 % 12 + 1
    want = date(y, m, min(day.day, calendar.monthrange(y, m)[1]))
    # The end of that day where the business is (this workspace: UTC).
    assert clock.aware(pack.expires_at) == datetime(want.year, want.month, want.day, 23, 59, 59, tzinfo=timezone.utc)


def test_two_packages_on_a_line_and_a_chosen_office(db, shop):
    from tests.parties.factories import make_office

    office = make_office(db, actor=shop.actor, customer_id=shop.customer_id, name="North")
    data = ins.InvoiceCreate.model_validate({"account_id": shop.acct.id, "lines": [
        {"product": "massage-10", "quantity": "2", "package_holder": {"kind": "office", "id": office}}]})
    inv = db.write(lambda s: invoices.create_invoice(s, data, actor=shop.actor))
    shop.post(inv)
    mark_paid(db, shop, inv)
    [pack] = pack_of(db, inv)
    assert (pack.holder_kind, pack.holder_id, pack.quantity) == ("office", office, 20)


def test_crediting_a_paid_package_voids_what_is_unused_and_leaves_the_money_as_account_credit(db, shop):
    """Seed 001: voiding the invoice voids the unused pack. The invoice is paid (that made the pack); a
    credit note of the whole invoice voids the 7 credits left, keeps the 3 used, and the payment's money
    goes back to the account as its credit."""
    inv = shop.posted(shop.acct, [("massage-10", "1")])
    pay = mark_paid(db, shop, inv)
    consume(db, shop, "massage", 3)
    note = shop.credit(inv, full=True, reason="customer cancelled")
    total = shop.get(inv).total
    assert note.amount == total
    [pack] = pack_of(db, inv)
    assert pack.status == "voided"
    with db.read() as s:
        [row] = [r for r in packages.customer_packages(s, actor=shop.actor, customer_id=shop.customer_id)
                 if r.pack.id == pack.id]
        assert (row.bought, row.used, row.remaining, row.status) == (10, 3, 0, "voided")
        assert payments.get_payment(s, shop.ws.id, pay.id).unallocated == total  # the account's credit
    inv = shop.get(inv)
    assert (inv.status, inv.amount_due, inv.amount_paid, inv.amount_credited) == ("settled", 0, 0, total)
    with pytest.raises(InvalidInput) as exc:  # nothing is left to credit
        shop.credit(inv, amount=1)
    assert exc.value.code == "credit_note_exceeds_due"


def test_crediting_the_package_line_of_a_paid_invoice_voids_only_that_pack(db, shop):
    inv = shop.posted(shop.acct, [("massage-10", "1"), ("facial", "1")])
    mark_paid(db, shop, inv)
    with db.read() as s:
        package_line, facial_line = [line.id for line in invoices.lines_of(s, inv.id)]
    shop.credit(inv, lines=[{"line_id": facial_line}])
    [pack] = pack_of(db, inv)
    assert pack.status == "active"  # the facial was credited, not the package
    shop.credit(inv, lines=[{"line_id": package_line}])
    [pack] = pack_of(db, inv)
    assert pack.status == "voided"


def test_a_package_credited_in_full_before_payment_makes_no_pack(db, shop):
    inv = shop.posted(shop.acct, [("massage-10", "1")])
    shop.credit(inv, full=True, reason="cancelled")
    assert shop.get(inv).status == "settled"
    assert pack_of(db, inv) == []


def consume(db, shop, product, amount):
    from creditdesk.credits import consumptions

    data = cs.ConsumeRequest.model_validate({"context": {"kind": "customer", "id": shop.customer_id},
                                             "credit_type": "massage", "amount": amount, "product_code": product})
    return db.write(lambda s: consumptions.consume(s, data, actor=shop.actor))


def test_product_not_covered_is_not_insufficient(db, shop):
    inv = shop.posted(shop.acct, [("massage-10", "1")])
    mark_paid(db, shop, inv)
    with pytest.raises(CreditdeskError) as exc:
        consume(db, shop, "facial", 1)
    assert exc.value.code == "product_not_covered" and exc.value.http_status == 409
    assert "facial" in exc.value.message and "massage" in exc.value.message
    consume(db, shop, "massage", 9)
    with pytest.raises(CreditdeskError) as exc:
        consume(db, shop, "massage", 2)
    assert exc.value.code == "insufficient_credits" and "1 available" in exc.value.message


def test_invoice_line_credits_refuse_the_uncovered_line_and_too_many(db, shop):
    inv = shop.posted(shop.acct, [("massage-10", "1")])
    mark_paid(db, shop, inv)
    consume(db, shop, "massage", 9)
    draft = shop.invoice(shop.acct, [("massage", "2"), ("facial", "1")])
    with db.read() as s:
        massage_line, facial_line = [line.id for line in invoices.lines_of(s, draft.id)]

    def apply(line_id, quantity):
        body = ins.LineCredits.model_validate({"context": {"kind": "customer", "id": shop.customer_id},
                                               "credit_type": "massage", "quantity": quantity})
        return db.write(lambda s: invoices.apply_line_credits(s, draft.id, line_id, body, actor=shop.actor))

    with pytest.raises(CreditdeskError) as exc:
        apply(facial_line, "1")
    assert exc.value.code == "product_not_covered"
    with pytest.raises(CreditdeskError) as exc:
        apply(massage_line, "2")
    assert exc.value.code == "insufficient_credits" and "1 available" in exc.value.message
    with pytest.raises(InvalidInput):
        apply(massage_line, "3")
    done = apply(massage_line, "1")
    assert done.credits_value == 9000
    with db.read() as s:
        choices = packages.packs_covering(s, workspace_id=shop.ws.id, customer_id=shop.customer_id,
                                          product_code="massage")
        assert choices == []  # the last credit is used
        rows = packages.customer_packages(s, actor=shop.actor, customer_id=shop.customer_id)
        [row] = rows
        assert (row.bought, row.used, row.remaining) == (10, 10, 0)
        assert row.bought_on.id == inv.id and [i.id for i in row.spent_on] == [draft.id]


def test_free_grant_is_recorded_as_free(db, shop):
    pack = db.write(lambda s: packages.grant_free(s, "massage-10", cs.Holder(kind="customer", id=shop.customer_id),
                                                  actor=shop.actor))
    assert (pack.source, pack.is_paid, pack.price_paid, pack.quantity) == ("promotion", False, 0, 10)
    with pytest.raises(InvalidInput) as exc:
        db.write(lambda s: packages.grant_free(s, "facial", cs.Holder(kind="customer", id=shop.customer_id),
                                               actor=shop.actor))
    assert exc.value.code == "not_a_credit_package"


def test_edit_changes_expiry_label_notes_and_corrects_remaining_audited(db, shop):
    inv = shop.posted(shop.acct, [("massage-10", "1")])
    mark_paid(db, shop, inv)
    [pack] = pack_of(db, inv)
    db.write(lambda s: packages.edit_package(s, pack.id, actor=shop.actor, expires_on=date(2099, 1, 31),
                                             status_label="VIP", notes="gift", remaining=7, reason="2 used on paper"))
    with pytest.raises(InvalidInput) as exc:
        db.write(lambda s: packages.edit_package(s, pack.id, actor=shop.actor, remaining=5, reason=" "))
    assert exc.value.code == "reason_required"
    db.write(lambda s: packages.edit_package(s, pack.id, actor=shop.actor, remaining=12, reason="goodwill"))
    with db.read() as s:
        [row] = packages.customer_packages(s, actor=shop.actor, customer_id=shop.customer_id)
        assert row.remaining == 12 and row.pack.status_label == "VIP" and row.pack.notes == "gift"
        assert clock.aware(row.pack.expires_at).date() == date(2099, 1, 31)
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.object_id == pack.id,
                                                         AuditEvent.action == "pack.correct")
                                .order_by(AuditEvent.id)))
        assert [(e.before["remaining"], e.after["remaining"], e.after["reason"]) for e in events] == [
            (10, 7, "2 used on paper"), (7, 12, "goodwill")]


def test_demo_has_the_massage_package_and_an_invoice_with_massage_and_facial_lines(db):
    from creditdesk import demo
    from creditdesk.billing.invoice_models import Invoice
    from creditdesk.catalog.models import Product

    info = db.write(demo.create_demo)
    db.write(demo.ensure_demo)  # again: nothing more is made
    with db.read() as s:
        package = s.scalar(select(Product).where(Product.workspace_id == info.workspace_id,
                                                 Product.code == "massage-10"))
        assert (package.kind, package.credit_quantity, package.applicable_product_codes) == (
            "credit_package", 10, ["massage"])
        drafts = [i for i in s.scalars(select(Invoice).where(Invoice.workspace_id == info.workspace_id,
                                                             Invoice.status == "draft"))
                  if sorted(line.product_code for line in invoices.lines_of(s, i.id)) == ["facial", "massage"]]
        assert len(drafts) == 1
        assert s.scalar(select(func.count()).select_from(Product).where(
            Product.workspace_id == info.workspace_id, Product.code == "massage-10")) == 1


def test_a_governed_package_is_billed_but_makes_no_pack(db, shop):
    actor = shop.actor

    def fn(s):
        credit_types.create_credit_type(s, cs.CreditTypeCreate(code="sms", name="SMS", required_permission="send_sms"),
                                        actor=actor)
        catalog.create_product(s, cats.ProductCreate.model_validate({
            "code": "sms-100", "name": "100 SMS", "kind": "credit_package", "unit": "pack",
            "credit_package": {"credit_type": "sms", "credit_quantity": 100, "applicable_product_codes": ["massage"],
                               "expiry": {"kind": "none"}}}), actor=actor)
        catalog.set_price(s, shop.plans["AUD"], cats.PriceSet(product="sms-100", unit_price=500), actor=actor)
    db.write(fn)
    inv = shop.posted(shop.acct, [("sms-100", "1")])
    mark_paid(db, shop, inv)
    assert shop.get(inv).status == "settled" and pack_of(db, inv) == []
