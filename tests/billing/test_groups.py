"""Group accounts and pricing agreements (billing.groups): every condition of seed 004 with its own code and
nothing written, full and partial funding (a funded charge lands on the parent, the rest on the member), the
pricing agreement pricing invoices (and a member's), and the parent's lifecycle applied to its members."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from creditdesk.billing import accounts, groups, invoices, lifecycle
from creditdesk.billing import group_schemas as gs
from creditdesk.billing.group_models import GroupMember
from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.models import BillingAccount
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from creditdesk.errors import Conflict, InvalidInput, NotPermitted
from tests.api.helpers import audit_rows
from tests.billing.factories import Shop, make_account
from tests.parties.factories import actor_of, make_customer, make_user


class Group(Shop):
    """A Shop with a second customer (the members' owner), a product type `fuel` (product `diesel`, 5.00) and
    a family `travel` (product `ticket`, 20.00), a parent account (Acme) and a candidate member (Bus driver)."""

    def __init__(self, db, **kw):
        super().__init__(db, **kw)
        actor = self.actor

        def fn(s):
            catalog.create_product_type(s, cs.ProductTypeCreate(code="fuel", name="Fuel", kind="service"),
                                        actor=actor)
            catalog.create_product_family(s, cs.ProductFamilyCreate(code="travel", name="Travel"), actor=actor)
            catalog.create_product(s, cs.ProductCreate(code="diesel", name="Diesel", type="fuel", unit="litre"),
                                   actor=actor)
            catalog.create_product(s, cs.ProductCreate(code="ticket", name="Ticket", kind="service", family="travel",
                                                       unit="each"), actor=actor)
            for product, price in (("diesel", 500), ("ticket", 2000)):
                catalog.set_price(s, self.plans["AUD"], cs.PriceSet(product=product, unit_price=price), actor=actor)
        db.write(fn)
        self.other_customer = make_customer(db, actor=actor, name="Bus driver")
        self.parent = self.account(name="Fleet")
        self.member = make_account(db, actor=actor, customer_id=self.other_customer, name="Driver")

    def add(self, member=None, parent=None, actor=None, **funding):
        funding = funding or {"scope": "full"}
        data = gs.MemberAdd.model_validate({"member_id": (member or self.member).id, "funding": funding})
        return self.db.write(lambda s: groups.add_member(s, (parent or self.parent).id, data,
                                                         actor=actor or self.actor))

    def agree(self, account, plan_id):
        return self.db.write(lambda s: groups.set_pricing_agreement(
            s, account.id, gs.PricingAgreementIn(price_plan_id=plan_id), actor=self.actor))

    def plan(self, code, prices, currency="AUD"):
        def fn(s):
            plan = catalog.create_price_plan(s, cs.PricePlanCreate(code=code, name=code, currency=currency),
                                             actor=self.actor)
            for product, price in prices.items():
                catalog.set_price(s, plan.id, cs.PriceSet(product=product, unit_price=price), actor=self.actor)
            return plan.id
        return self.db.write(fn)


def refused(db, code, fn, error=Conflict):
    with db.read() as s:
        before = s.scalar(select(func.count()).select_from(GroupMember))
    with pytest.raises(error) as exc:
        fn()
    assert exc.value.code == code, exc.value.message
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(GroupMember)) == before  # nothing written


def invoices_of(db, account) -> list[Invoice]:
    with db.read() as s:
        rows = list(s.scalars(select(Invoice).where(Invoice.account_id == account.id).order_by(Invoice.created_at)))
        for row in rows:
            s.expunge(row)
        return rows


def balance(db, account) -> int:
    with db.read() as s:
        return accounts.account_balance(s, s.get(BillingAccount, account.id)).balance


def test_add_and_remove_a_member_audited(db):
    g = Group(db)
    row = g.add(scope="partial", products=["hours"], product_types=["fuel"], product_families=["travel"])
    assert (row.parent_id, row.member_id, row.funding_scope) == (g.parent.id, g.member.id, "partial")
    with db.read() as s:
        out = groups.group_out(s, s.get(BillingAccount, g.parent.id))
        assert [m.member_id for m in out.members] == [g.member.id]
        assert groups.group_out(s, s.get(BillingAccount, g.member.id)).parent_id == g.parent.id
    [added] = audit_rows(db, g.ws.id, action="account.member_add")
    assert (added.before["members"], added.after["members"]) == ([], [g.member.id])
    db.write(lambda s: groups.remove_member(s, g.parent.id, g.member.id, actor=g.actor))
    [removed] = audit_rows(db, g.ws.id, action="account.member_remove")
    assert (removed.before["members"], removed.after["members"]) == ([g.member.id], [])


def test_parent_conditions(db):
    g = Group(db)
    other_parent = make_account(db, actor=g.actor, customer_id=g.other_customer, name="Other parent")
    g.add(member=g.parent, parent=other_parent)  # the Fleet account is now a member of another group
    third = make_account(db, actor=g.actor, customer_id=make_customer(db, actor=g.actor, name="C"), name="C")
    refused(db, "parent_is_member", lambda: g.add(member=third))
    system = g.account(name="System", classification="system")
    refused(db, "parent_is_system_account", lambda: g.add(member=third, parent=system))
    suspended = g.account(name="Suspended")
    db.write(lambda s: lifecycle.suspend(s, suspended.id, "dispute", actor=g.actor))
    refused(db, "parent_not_active", lambda: g.add(member=third, parent=suspended))


def test_member_conditions(db):
    g = Group(db)
    mk = lambda name, **kw: make_account(db, actor=g.actor, customer_id=g.other_customer, name=name, **kw)  # noqa
    refused(db, "member_is_parent_account", lambda: g.add(member=g.parent))
    inactive = mk("Inactive")
    db.write(lambda s: lifecycle.suspend(s, inactive.id, "dispute", actor=g.actor))
    refused(db, "member_not_active", lambda: g.add(member=inactive))
    g.add()
    other_parent = g.account(name="Other parent")
    refused(db, "member_already_in_group", lambda: g.add(parent=other_parent))
    refused(db, "member_is_parent", lambda: g.add(member=g.parent, parent=other_parent))
    refused(db, "member_is_system_account", lambda: g.add(member=mk("Sys", classification="System")))
    refused(db, "member_currency_mismatch", lambda: g.add(member=mk("Euro", currency="EUR")))
    refused(db, "member_same_owner", lambda: g.add(member=g.account(name="Same owner")))
    corporate = mk("Corporate", classification="corporate")
    g.agree(corporate, g.plan("corp", {"hours": 9000}))
    refused(db, "member_has_own_pricing", lambda: g.add(member=corporate))
    g.agree(corporate, None)  # cleared: now it may join, and may not take its own pricing back
    g.add(member=corporate)
    with pytest.raises(Conflict) as exc:
        g.agree(corporate, g.plans["AUD"])
    assert exc.value.code == "member_pricing_not_allowed"


def test_funding_scope_is_checked(db):
    g = Group(db)
    refused(db, "funding_scope_empty", lambda: g.add(scope="partial"), error=InvalidInput)
    refused(db, "funding_scope_codes_with_full", lambda: g.add(scope="full", products=["hours"]), error=InvalidInput)
    refused(db, "unknown_product", lambda: g.add(scope="partial", products=["nope"]), error=InvalidInput)
    refused(db, "unknown_product_type", lambda: g.add(scope="partial", product_types=["nope"]), error=InvalidInput)
    refused(db, "unknown_product_family", lambda: g.add(scope="partial", product_families=["nope"]),
            error=InvalidInput)


def test_who_may_manage_groups(db):
    g = Group(db)
    reader = actor_of(db, make_user(db, actor=g.actor, name="Member"))
    with pytest.raises(NotPermitted):
        g.add(actor=reader)
    manager = actor_of(db, make_user(db, actor=g.actor, name="Manager", role="manager"))
    g.add(actor=manager)


def test_full_funding_bills_the_parent(db):
    g = Group(db)
    g.add()
    inv = g.posted(g.member, lines=(("widget", "3"),))
    assert (inv.account_id, inv.customer_id, inv.status, inv.total) == (g.parent.id, g.customer_id, "posted", 3000)
    assert balance(db, g.parent) == 3000 and balance(db, g.member) == 0
    assert audit_rows(db, g.ws.id, action="invoice.billed_to_parent")
    # The invoice says why it is the parent's.
    assert f"Charges of member account {g.member.number}, funded by its group" in inv.notes


def test_partial_funding_splits_the_invoice(db):
    g = Group(db)
    g.add(scope="partial", product_types=["fuel"], product_families=["travel"])
    inv = g.posted(g.member, lines=(("diesel", "10"), ("widget", "1"), ("ticket", "2")))
    assert (inv.account_id, inv.total, [line.product_code for line in invoices_lines(db, inv)]) == (
        g.member.id, 1000, ["widget"])
    [funded] = invoices_of(db, g.parent)
    assert (funded.status, funded.total, funded.customer_id) == ("posted", 5000 + 4000, g.customer_id)
    assert sorted(line.product_code for line in invoices_lines(db, funded)) == ["diesel", "ticket"]
    # The member's invoice says where its funded lines went.
    assert f"billed to the parent account {g.parent.number} on invoice {funded.number}" in inv.notes
    assert balance(db, g.parent) == 9000 and balance(db, g.member) == 1000
    # Nothing funded: the member's invoice is its own.
    own = g.posted(g.member, lines=(("widget", "2"),))
    assert (own.account_id, len(invoices_of(db, g.parent))) == (g.member.id, 1)


def invoices_lines(db, invoice):
    with db.read() as s:
        rows = invoices.lines_of(s, invoice.id)
        for row in rows:
            s.expunge(row)
        return rows


def test_pricing_agreement_prices_invoices_and_members(db):
    g = Group(db)
    hotel = g.plan("hotel", {"hours": 9000})
    with pytest.raises(InvalidInput) as exc:
        g.agree(g.parent, g.plans["EUR"])
    assert exc.value.code == "currency_mismatch"
    g.agree(g.parent, hotel)
    inv = g.invoice(g.parent, lines=(("hours", "1"), ("widget", "1")))
    # hours from the agreement, widget (not in it) from the AUD default plan
    assert [line.unit_price for line in invoices_lines(db, inv)] == [9000, 1000]
    assert inv.price_plan_id == hotel
    g.add(scope="partial", products=["widget"])
    member_inv = g.invoice(g.member, lines=(("hours", "1"),))
    assert [line.unit_price for line in invoices_lines(db, member_inv)] == [9000]  # the parent's agreement
    with db.read() as s:
        out = groups.agreement_out(s, s.get(BillingAccount, g.member.id))
        assert (out.price_plan_id, out.effective_price_plan_id, out.source) == (None, hotel, "parent")
    assert audit_rows(db, g.ws.id, action="account.pricing_agreement")
    g.agree(g.parent, None)
    assert [line.unit_price for line in invoices_lines(db, g.invoice(g.parent))] == [15000]


def test_lifecycle_of_the_parent_applies_to_members(db):
    g = Group(db)
    g.add()
    alone = make_account(db, actor=g.actor, customer_id=g.other_customer, name="Own dispute")
    g.add(member=alone)
    db.write(lambda s: lifecycle.suspend(s, alone.id, "dispute", actor=g.actor))
    db.write(lambda s: lifecycle.suspend(s, g.parent.id, "credit_check", actor=g.actor))
    with db.read() as s:
        assert s.get(BillingAccount, g.member.id).status == "suspended"
    db.write(lambda s: lifecycle.reactivate(s, g.parent.id, actor=g.actor))
    with db.read() as s:
        assert s.get(BillingAccount, g.member.id).status == "active"
        assert s.get(BillingAccount, alone.id).status == "suspended"  # its own suspension stays
    suspends = audit_rows(db, g.ws.id, action="account.suspend")
    assert {row.object_id for row in suspends} == {g.parent.id, g.member.id, alone.id}
    # A member with a draft stops the parent's termination: nothing changes.
    draft = g.invoice(g.member, lines=(("widget", "1"),))
    with pytest.raises(Conflict) as exc:
        db.write(lambda s: lifecycle.terminate(s, g.parent.id, actor=g.actor))
    assert exc.value.code == "account_has_pending_transactions"
    with db.read() as s:
        assert s.get(BillingAccount, g.parent.id).status == "active"
    db.write(lambda s: invoices.void_invoice(s, draft.id, actor=g.actor))
    db.write(lambda s: lifecycle.terminate(s, g.parent.id, actor=g.actor))
    with db.read() as s:
        assert {s.get(BillingAccount, a.id).status for a in (g.parent, g.member, alone)} == {"terminated"}


def test_demo_group_with_a_partly_funded_member_made_once(db):
    from creditdesk import demo

    info = db.write(demo.create_demo)
    db.write(demo.ensure_demo)  # a second start adds nothing
    with db.read() as s:
        [row] = s.scalars(select(GroupMember).where(GroupMember.workspace_id == info.workspace_id)).all()
        parent, member = s.get(BillingAccount, row.parent_id), s.get(BillingAccount, row.member_id)
        assert (row.funding_scope, row.funded_product_types) == ("partial", ["consulting"])
        assert groups.agreed_price_plan(s, member) is not None  # the parent's agreement
        [funded] = s.scalars(select(Invoice).where(Invoice.account_id == parent.id)).all()
        [own] = s.scalars(select(Invoice).where(Invoice.account_id == member.id)).all()
        assert [line.product_code for line in invoices.lines_of(s, funded.id)] == ["consulting-hour"]
        assert [line.unit_price for line in invoices.lines_of(s, funded.id)] == [15000]
        assert [line.product_code for line in invoices.lines_of(s, own.id)] == ["sms-modem"]
        assert accounts.account_balance(s, parent).balance == funded.total
