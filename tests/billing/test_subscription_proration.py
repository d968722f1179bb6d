"""Subscriptions (seed 002): proration rounded once per line on quantity x price x days / period days, on every
path (a bill's preview, a bill, the billing run's set-wise path, a service added mid-period, a service removed
inside an unbilled period); removing a service inside a billed period credits the days not used at once (one
transaction, audited, the credit notes' numbers in the removal's audit; terminate the same); a suspended or
terminated account takes no new subscription; a service's price per period is the price plan's amount."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from creditdesk.audit import AuditEvent
from creditdesk.billing import accounts, billing_runs, credit_notes, lifecycle, subscriptions
from creditdesk.billing import schemas as bs
from creditdesk.billing import subscription_schemas as ss
from creditdesk.billing.invoice_models import Invoice, InvoiceLine
from creditdesk.billing.subscription_models import Subscription
from creditdesk.billing.subscriptions import Piece, bill_line
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from creditdesk.catalog.lines import compute_line
from creditdesk.errors import Conflict
from creditdesk.ledger import service as ledger
from tests.billing.factories import configure
from tests.parties.factories import make_customer, master_actor


def exact_half_up(value: Fraction) -> int:
    """The rule's rounding, computed independently of the code under test (exact fractions, half away from 0)."""
    return int((Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP)) \
        if value.denominator != 1 else value.numerator


def _piece(days: int, period_days: int) -> Piece:
    full_start = date(2027, 1, 1)
    return Piece(full_start, full_start + timedelta(days=days), full_start, full_start + timedelta(days=period_days))


# --- the rule, over quantities, prices and day counts ----------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(price=st.integers(min_value=0, max_value=10**9), quantity=st.integers(min_value=1, max_value=10_000),
       period_days=st.sampled_from([28, 29, 30, 31, 89, 90, 91, 92, 365, 366]), data=st.data())
def test_a_prorated_line_is_rounded_once_on_quantity_times_price_times_days(price, quantity, period_days, data):
    days = data.draw(st.integers(min_value=1, max_value=period_days))
    svc = SimpleNamespace(quantity=quantity, pay_with_credits=False)
    line = bill_line(svc, SimpleNamespace(name="Support"), _piece(days, period_days), price)
    expected = exact_half_up(Fraction(quantity * price * days, period_days))
    # The money the invoice line makes of it (no tax: net = the line amount), exactly once rounded.
    assert compute_line(line.unit_price, Decimal(line.quantity)).net == expected
    if days == period_days:  # a full period: the service's quantity at its unit price
        assert (line.quantity, line.unit_price) == (quantity, price)
    else:
        assert line.quantity == 1
        assert ("× " + str(quantity) in line.description) == (quantity > 1)
        assert line.description.endswith(f"({days}/{period_days} days)")


def test_the_seeded_case_499_times_2_for_11_of_30_days():
    svc = SimpleNamespace(quantity=2, pay_with_credits=False)
    line = bill_line(svc, SimpleNamespace(name="Monthly support"), _piece(11, 30), 49900)
    assert (line.quantity, line.unit_price) == (1, 36593)  # 998 x 11/30 = 365.933 -> 365.93, never 2 x 182.97
    assert line.description == "Monthly support × 2, 2027-01-01 to 2027-01-11 (11/30 days)"


def test_a_line_paid_with_credits_keeps_a_price_per_unit():
    # A credit pays one unit: such a line keeps the quantity, each unit prorated (README says why).
    svc = SimpleNamespace(quantity=3, pay_with_credits=True)
    line = bill_line(svc, SimpleNamespace(name="Calls"), _piece(11, 30), 1000)
    assert (line.quantity, line.unit_price) == (3, 367)


# --- the world -------------------------------------------------------------------------------------------------

def _world(db, workspace, *, tax_bp=0):
    actor = master_actor(db, workspace.id)
    configure(db, actor=actor)

    def catalogue(session):
        plan = catalog.create_price_plan(session, cs.PricePlanCreate(code="aud", name="AUD", currency="AUD",
                                                                     is_default=True), actor=actor)
        kw = {}
        if tax_bp:
            catalog.create_tax_class(session, cs.TaxClassCreate(code="gst", name="GST"), actor=actor)
            catalog.create_tax_rate(session, cs.TaxRateCreate(tax_class="gst", rate_bp=tax_bp,
                                                              valid_from=date(2020, 1, 1)), actor=actor)
            kw["tax_class"] = "gst"
        for code, name, price in (("support", "Monthly support", 49900), ("tv", "TV pack", 1999)):
            catalog.create_product(session, cs.ProductCreate(code=code, name=name, kind="subscription_service",
                                                             unit="month", **kw), actor=actor)
            catalog.set_price(session, plan.id, cs.PriceSet(product=code, unit_price=price), actor=actor)
    db.write(catalogue)
    return actor


def _account(db, actor, name="Acme"):
    customer_id = make_customer(db, actor=actor, name=name)
    return db.write(lambda s: accounts.create_account(s, bs.AccountCreate(customer_id=customer_id, name="Main"),
                                                      actor=actor))


def _subscribe(db, actor, account_id, *, start, services, billing_day=1):
    return db.write(lambda s: subscriptions.create_subscription(s, ss.SubscriptionCreate(
        account_id=account_id, billing_day=billing_day, activate_on=date.fromisoformat(start),
        services=[ss.ServiceIn(product=p, quantity=q) for p, q in services]), actor=actor))


def _lines(db, sub_id):
    with db.read() as session:
        bills = session.scalars(select(Invoice).where(Invoice.subscription_id == sub_id).order_by(Invoice.id))
        return [(line.description, line.quantity_milli // 1000, line.unit_price, line.net)
                for inv in bills
                for line in session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == inv.id)
                                            .order_by(InvoiceLine.position))]


# --- every path of proration ------------------------------------------------------------------------------------

def test_activation_mid_period_bills_the_line_rounded_once_on_every_path(db, workspace):
    actor = _world(db, workspace)
    as_of = date(2027, 1, 20)
    # Billing day 1, activated on 20 November (a month of 30 days): 20-30 November, 11 days of 30.
    start = "2026-11-20"
    one = _subscribe(db, actor, _account(db, actor, "One").id, start=start, services=[("support", 2)])
    preview = db.write(lambda s: subscriptions.preview_bill(s, one.id, ss.BillAsOf(as_of=as_of), actor=actor))
    assert [(line["description"], line["net"]) for line in preview.lines][0] == \
        ("Monthly support × 2, 2026-11-20 to 2026-11-30 (11/30 days)", 36593)
    db.write(lambda s: subscriptions.bill(s, one.id, ss.BillAsOf(as_of=as_of), actor=actor))
    # The billing run's set-wise path (a plain account) bills the same lines.
    two = _subscribe(db, actor, _account(db, actor, "Two").id, start=start, services=[("support", 2)])
    run = billing_runs.run(db, as_of, workspace_id=workspace.id, actor_for=lambda ws: actor)
    assert run.bills == 1
    expected = [("Monthly support × 2, 2026-11-20 to 2026-11-30 (11/30 days)", 1, 36593, 36593),
                ("Monthly support, 2026-12-01 to 2026-12-31", 2, 49900, 99800),
                ("Monthly support, 2027-01-01 to 2027-01-31", 2, 49900, 99800)]
    assert _lines(db, one.id) == _lines(db, two.id) == expected


def test_a_service_added_or_ended_mid_period_is_rounded_once(db, workspace):
    actor = _world(db, workspace)
    sub = _subscribe(db, actor, _account(db, actor).id, start="2027-04-01", services=[("tv", 1)])
    # Added on 20 April (11 of April's 30 days), quantity 2; removed from 12 May, not billed yet (11 of 31).
    db.write(lambda s: subscriptions.add_service(s, sub.id, ss.ServiceIn(product="support", quantity=2,
                                                                          start_on=date(2027, 4, 20)), actor=actor))
    with db.read() as session:
        svc_id = next(r.id for r in subscriptions.services_of(session, sub.id) if r.quantity == 2)
    db.write(lambda s: subscriptions.remove_service(s, sub.id, ss.ServiceRemove(
        service_id=svc_id, effective_on=date(2027, 5, 12)), actor=actor))
    db.write(lambda s: subscriptions.bill(s, sub.id, ss.BillAsOf(as_of=date(2027, 5, 1)), actor=actor))
    support = [line for line in _lines(db, sub.id) if line[0].startswith("Monthly support")]
    assert support == [
        ("Monthly support × 2, 2027-04-20 to 2027-04-30 (11/30 days)", 1, 36593, 36593),
        ("Monthly support × 2, 2027-05-01 to 2027-05-11 (11/31 days)", 1, exact_half_up(Fraction(99800 * 11, 31)),
         exact_half_up(Fraction(99800 * 11, 31)))]


# --- removal inside a billed period: a credit note, at once -------------------------------------------------

def _bill(db, actor, sub_id, as_of):
    return db.write(lambda s: subscriptions.bill(s, sub_id, ss.BillAsOf(as_of=as_of), actor=actor))


def _notes(db, invoice_id):
    with db.read() as session:
        return [(n.amount, n.tax, list(n.lines), n.reason) for n in credit_notes.notes_of(session, invoice_id)]


@pytest.mark.parametrize("day, unused", [(1, 30), (2, 29), (12, 19), (30, 1)])
def test_removal_inside_a_billed_period_credits_the_unused_days_of_its_line(db, workspace, day, unused):
    actor = _world(db, workspace, tax_bp=1000)
    sub = _subscribe(db, actor, _account(db, actor).id, start="2027-06-01", services=[("support", 2), ("tv", 1)])
    bill = _bill(db, actor, sub.id, date(2027, 6, 1))  # June (30 days) in advance
    with db.read() as session:
        line = session.scalar(select(InvoiceLine).where(InvoiceLine.invoice_id == bill.id,
                                                        InvoiceLine.product_code == "support"))
        svc_id = next(r.id for r in subscriptions.services_of(session, sub.id) if r.quantity == 2)
        line = SimpleNamespace(id=line.id, gross=line.gross)
    assert line.gross == 99800 + 9980
    _, notes = db.write(lambda s: subscriptions.remove_service_credited(s, sub.id, ss.ServiceRemove(
        service_id=svc_id, effective_on=date(2027, 6, day)), actor=actor))
    credit = exact_half_up(Fraction(line.gross * unused, 30))  # the line's amount x days not used / days billed
    [(amount, tax, lines, reason)] = _notes(db, bill.id)
    assert (amount, lines) == (credit, [{"line_id": line.id, "amount": credit}])
    assert "Monthly support removed from 2027-06-%02d" % day in reason and [n.number for n in notes] == ["CN-000001"]
    with db.read() as session:
        invoice = session.get(Invoice, bill.id)
        assert invoice.amount_due == invoice.total - credit and invoice.amount_credited == credit
        removal = session.scalar(select(AuditEvent).where(AuditEvent.object_id == sub.id,
                                                          AuditEvent.action == "subscription.service_remove"))
        assert [n["number"] for n in removal.after["credit_notes"]] == ["CN-000001"]
        assert ledger.verify(session, workspace_id=workspace.id).ok
    # Nothing more of it is billed, and the next bill has only the TV.
    nxt = _bill(db, actor, sub.id, date(2027, 7, 1))
    assert [d for d, *_ in _lines(db, sub.id)][-1] == "TV pack, 2027-07-01 to 2027-07-31" and nxt is not None
    assert len(_lines(db, sub.id)) == 3


def test_removal_from_the_end_of_the_billed_days_or_later_credits_nothing(db, workspace):
    actor = _world(db, workspace)
    sub = _subscribe(db, actor, _account(db, actor).id, start="2027-06-01", services=[("support", 1)])
    bill = _bill(db, actor, sub.id, date(2027, 6, 1))
    svc_id = sub_service(db, sub.id)
    db.write(lambda s: subscriptions.remove_service(s, sub.id, ss.ServiceRemove(
        service_id=svc_id, effective_on=date(2027, 7, 1)), actor=actor))
    assert _notes(db, bill.id) == []


def sub_service(db, sub_id):
    with db.read() as session:
        return subscriptions.services_of(session, sub_id)[0].id


def test_removal_across_several_billed_periods_credits_each_bill(db, workspace):
    actor = _world(db, workspace)
    sub = _subscribe(db, actor, _account(db, actor).id, start="2027-06-01", services=[("support", 1)])
    june = _bill(db, actor, sub.id, date(2027, 6, 1))
    july = _bill(db, actor, sub.id, date(2027, 7, 1))
    svc_id = sub_service(db, sub.id)
    db.write(lambda s: subscriptions.remove_service(s, sub.id, ss.ServiceRemove(
        service_id=svc_id, effective_on=date(2027, 6, 21)), actor=actor))
    assert [n[0] for n in _notes(db, june.id)] == [exact_half_up(Fraction(49900 * 10, 30))]
    assert [n[0] for n in _notes(db, july.id)] == [49900]  # all of July, not used at all


def test_two_services_of_the_same_product_each_credit_their_own_line(db, workspace):
    actor = _world(db, workspace)
    sub = _subscribe(db, actor, _account(db, actor).id, start="2027-06-01", services=[("support", 1), ("support", 3)])
    bill = _bill(db, actor, sub.id, date(2027, 6, 1))
    with db.read() as session:
        rows = subscriptions.services_of(session, sub.id)
        rows = [r.id for r in rows]
        lines = list(session.scalars(select(InvoiceLine.id).where(InvoiceLine.invoice_id == bill.id)
                                     .order_by(InvoiceLine.position)))
    db.write(lambda s: subscriptions.remove_service(s, sub.id, ss.ServiceRemove(
        service_id=rows[1], effective_on=date(2027, 6, 16)), actor=actor))  # the quantity 3 one
    [(amount, _tax, note_lines, _)] = _notes(db, bill.id)
    assert note_lines == [{"line_id": lines[1], "amount": 149700 // 2}] and amount == 74850


def test_a_refused_credit_leaves_the_service_as_it_was(db, workspace, monkeypatch):
    actor = _world(db, workspace)
    sub = _subscribe(db, actor, _account(db, actor).id, start="2027-06-01", services=[("support", 1)])
    bill = _bill(db, actor, sub.id, date(2027, 6, 1))

    def refuse(*a, **kw):
        raise Conflict("no", code="refused_for_the_test")
    monkeypatch.setattr(credit_notes, "create_credit_note", refuse)
    svc_id = sub_service(db, sub.id)
    with pytest.raises(Conflict):
        db.write(lambda s: subscriptions.remove_service(s, sub.id, ss.ServiceRemove(
            service_id=svc_id, effective_on=date(2027, 6, 10)), actor=actor))
    with db.read() as session:
        [svc] = subscriptions.services_of(session, sub.id)
        assert svc.end_on is None and svc.removed_at is None  # all or nothing
    assert _notes(db, bill.id) == []


def test_terminate_inside_a_billed_period_credits_every_service_on_one_note(db, workspace):
    actor = _world(db, workspace)
    sub = _subscribe(db, actor, _account(db, actor).id, start="2027-06-01", services=[("support", 2), ("tv", 1)])
    bill = _bill(db, actor, sub.id, date(2027, 6, 1))
    db.write(lambda s: subscriptions.terminate(s, sub.id, ss.DatedAction(on=date(2027, 6, 21)), actor=actor))
    [(amount, _tax, lines, _)] = _notes(db, bill.id)
    assert [item["amount"] for item in lines] == [exact_half_up(Fraction(99800 * 10, 30)),
                                                   exact_half_up(Fraction(1999 * 10, 30))]


# --- suspended accounts, prices ------------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["suspended", "terminated"])
def test_an_account_not_active_takes_no_new_subscription(db, workspace, status):
    actor = _world(db, workspace)
    account = _account(db, actor)

    def close(session):
        if status == "suspended":
            lifecycle.suspend(session, account.id, "dispute", actor=actor)
        else:
            lifecycle.terminate(session, account.id, actor=actor)
    db.write(close)
    for activate_on in (None, date(2027, 1, 1)):  # a draft too
        with pytest.raises(Conflict) as refused:
            db.write(lambda s: subscriptions.create_subscription(s, ss.SubscriptionCreate(
                account_id=account.id, activate_on=activate_on, services=[ss.ServiceIn(product="tv")]), actor=actor))
        assert refused.value.code == f"account_{status}" and refused.value.details["field"] == "account_id"
    with db.read() as session:
        assert session.scalar(select(Subscription.id).where(Subscription.account_id == account.id)) is None


def test_a_services_price_per_period_is_the_price_plans_amount(db, workspace):
    actor = _world(db, workspace)
    account = _account(db, actor)
    sub = db.write(lambda s: subscriptions.create_subscription(s, ss.SubscriptionCreate(
        account_id=account.id, services=[ss.ServiceIn(product="support", quantity=2),
                                                     ss.ServiceIn(product="tv", unit_price=1500)]), actor=actor))
    with db.read() as session:
        out = subscriptions.subscription_out(session, session.get(Subscription, sub.id))
    assert [(s.price, s.price_source) for s in out.services] == [(49900, "price_plan"), (1500, "agreed")]
