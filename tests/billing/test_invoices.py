"""Invoices, credit notes and payments through the services: numbering without gaps, immutability, totals,
credit notes, allocation, settlement, outstanding, the bad input list of issue 12, verify."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from creditdesk.billing import accounts, invoices, payments, postings
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing.invoice_models import CreditNote, Invoice, InvoiceLine, Payment, PaymentAllocation
from creditdesk.billing.models import AccountEntry, BillingSettings
from creditdesk.billing.verify import verify_invoices
from creditdesk.errors import Conflict, InvalidInput, NotFound, NotPermitted
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerTransfer
from tests.billing.factories import Shop
from tests.parties.factories import actor_of, make_user


def ledger_balance(db, account) -> int:
    with db.read() as s:
        dp, cp, _, _ = ledger.recomputed_totals(s, account_ids=[account.ledger_account_id]).get(
            account.ledger_account_id, (0, 0, 0, 0))
    return dp - cp


def balance_and_outstanding(db, account, on=None):
    with db.read() as s:
        return accounts.account_balance(s, account).balance, accounts.account_outstanding(s, account, on)


def verified(db, shop):
    with db.read() as s:
        checked, problems = verify_invoices(s, workspace_id=shop.ws.id)
        assert problems == []
        assert ledger.verify(s, workspace_id=shop.ws.id).ok
    return checked


def counts(db, ws_id) -> tuple:
    with db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(m).where(m.workspace_id == ws_id))
                     for m in (Invoice, InvoiceLine, CreditNote, Payment, PaymentAllocation, AccountEntry,
                               LedgerTransfer))


def test_lines_are_priced_taxed_and_summed(db):
    shop = Shop(db)
    account = shop.account()
    inv = shop.invoice(account, [("hours", "1.5"), ("widget", 3)])
    with db.read() as s:
        out = invoices.invoice_out(s, invoices.get_invoice(s, shop.ws.id, inv.id))
    hours, widget = out.lines
    assert (hours.quantity, hours.unit_price, hours.net, hours.tax, hours.gross) == ("1.5", 15000, 22500, 2250, 24750)
    assert (widget.quantity, widget.net, widget.tax, widget.gross) == ("3", 3000, 0, 3000)
    assert (out.subtotal, out.tax_total, out.total, out.amount_due) == (25500, 2250, 27750, 27750)
    assert out.status == "draft" and out.number is None
    assert out.due_date == out.issue_date + timedelta(days=30)


def test_posting_numbers_without_gaps_and_debits_the_ledger(db):
    shop = Shop(db)
    account = shop.account()
    first = shop.posted(account)
    draft = shop.invoice(account)
    second = shop.posted(account, [("widget", 1)])
    assert (first.number, second.number) == ("INV-000001", "INV-000002")
    assert shop.get(draft).number is None
    assert first.status == "posted" and first.total == 33000
    assert balance_and_outstanding(db, account) == (34000, 0)
    assert ledger_balance(db, account) == 34000
    with db.read() as s:
        kinds = sorted(s.scalars(select(AccountEntry.kind).where(AccountEntry.account_id == account.id)))
    assert kinds == ["invoice", "invoice", "invoice_tax"]
    assert verified(db, shop) == 3


def test_a_failed_posting_leaves_no_number_and_nothing_written(db, monkeypatch):
    shop = Shop(db)
    account = shop.account()
    inv = shop.invoice(account)
    before = counts(db, shop.ws.id)
    real = postings.post_account_entry
    calls = []

    def fails_on_tax(session, *args, **kw):
        calls.append(args[3])
        if args[3] == "invoice_tax":  # after the number and the revenue entry were written
            raise Conflict("boom", code="boom")
        return real(session, *args, **kw)
    monkeypatch.setattr(postings, "post_account_entry", fails_on_tax)
    with pytest.raises(Conflict):
        shop.post(inv)
    assert calls == ["invoice", "invoice_tax"]
    monkeypatch.setattr(postings, "post_account_entry", real)
    assert counts(db, shop.ws.id) == before
    assert shop.get(inv).status == "draft"
    with db.read() as s:
        assert s.get(BillingSettings, shop.ws.id).next_invoice_number == 1
    assert shop.post(inv).number == "INV-000001"
    assert ledger_balance(db, account) == 33000


def test_a_posted_invoice_never_changes(db):
    shop = Shop(db)
    account = shop.account()
    inv = shop.posted(account)
    with db.read() as s:
        line_id = invoices.lines_of(s, inv.id)[0].id
    attempts = [
        lambda s: invoices.update_invoice(s, inv.id, ins.InvoiceUpdate(notes="x"), actor=shop.actor),
        lambda s: invoices.add_line(s, inv.id, ins.LineCreate(product="widget", quantity=1), actor=shop.actor),
        lambda s: invoices.update_line(s, inv.id, line_id, ins.LineUpdate(unit_price=1), actor=shop.actor),
        lambda s: invoices.delete_line(s, inv.id, line_id, actor=shop.actor),
        lambda s: invoices.post_invoice(s, inv.id, actor=shop.actor),
        lambda s: invoices.void_invoice(s, inv.id, actor=shop.actor),
    ]
    before = counts(db, shop.ws.id)
    for attempt in attempts:
        with pytest.raises(Conflict) as exc:
            db.write(attempt)
        assert exc.value.code == "invoice_not_draft"
    assert counts(db, shop.ws.id) == before


def test_void_a_draft(db):
    shop = Shop(db)
    account = shop.account()
    inv = shop.invoice(account)
    voided = db.write(lambda s: invoices.void_invoice(s, inv.id, actor=shop.actor))
    assert voided.status == "void" and voided.number is None and voided.voided_at is not None
    assert balance_and_outstanding(db, account) == (0, 0)
    nxt = shop.posted(account)
    assert nxt.number == "INV-000001"  # a voided draft never took a number


def test_draft_edits_reprice_and_retax(db):
    shop = Shop(db)
    account = shop.account()
    inv = shop.invoice(account)
    with db.read() as s:
        line_id = invoices.lines_of(s, inv.id)[0].id
    inv = db.write(lambda s: invoices.update_line(s, inv.id, line_id, ins.LineUpdate.model_validate(
        {"quantity": "3", "unit_price": 10000, "discount": {"kind": "percent", "value": 1000}}), actor=shop.actor))
    assert (inv.subtotal, inv.tax_total, inv.total) == (27000, 2700, 29700)
    inv = db.write(lambda s: invoices.update_line(s, inv.id, line_id, ins.LineUpdate(product="widget"),
                                                 actor=shop.actor))
    assert (inv.subtotal, inv.tax_total) == (2700, 0)  # re-priced at 10.00, 3 x 10.00 less 10 %, no tax


def test_credit_notes_full_amount_and_lines(db):
    shop = Shop(db)
    account = shop.account()
    inv = shop.posted(account, [("hours", 2), ("widget", 5)])  # 300 + 30 GST + 50 = 380.00
    assert inv.total == 38000
    note = shop.credit(inv, amount=11000, reason="goodwill")
    assert (note.number, note.amount, note.tax) == ("CN-000001", 11000, 868)  # 3000/38000 of 11000
    with db.read() as s:
        widget_line = invoices.lines_of(s, inv.id)[1].id
    by_line = shop.credit(inv, lines=[{"line_id": widget_line, "amount": 2000}])
    assert (by_line.number, by_line.amount, by_line.tax) == ("CN-000002", 2000, 158)
    with pytest.raises(InvalidInput) as exc:
        shop.credit(inv, lines=[{"line_id": widget_line, "amount": 3001}])
    assert exc.value.code == "credit_note_exceeds_line"
    with pytest.raises(InvalidInput) as exc:
        shop.credit(inv, amount=25001)
    assert exc.value.code == "credit_note_exceeds_due"
    rest = shop.credit(inv, full=True)
    assert (rest.amount, rest.tax) == (25000, 3000 - 868 - 158)
    inv = shop.get(inv)
    assert (inv.status, inv.amount_due, inv.amount_credited) == ("settled", 0, 38000)
    assert balance_and_outstanding(db, account) == (0, 0) and ledger_balance(db, account) == 0
    with pytest.raises(InvalidInput):
        shop.credit(inv, amount=1)
    draft = shop.invoice(account)
    with pytest.raises(Conflict) as exc:
        shop.credit(draft, full=True)
    assert exc.value.code == "invoice_not_posted"
    with pytest.raises(InvalidInput) as exc:
        shop.credit(inv, full=True, amount=5)
    assert exc.value.code == "invalid_credit_note"
    verified(db, shop)


def test_payments_oldest_due_first_remainder_credit_and_settlement(db, frozen_clock):
    shop = Shop(db)
    account = shop.account()
    older = shop.posted(account, [("widget", 10)], issue_date=date(2026, 1, 1))  # 100.00, due 31 Jan
    newer = shop.posted(account, [("widget", 5)], issue_date=date(2026, 1, 10))  # 50.00, due 9 Feb
    pay = shop.pay(account, 12000, method="card", reference="R1")
    assert (shop.get(older).status, shop.get(older).amount_due) == ("settled", 0)
    assert (shop.get(newer).status, shop.get(newer).amount_due) == ("posted", 3000)
    assert pay.unallocated == 0
    big = shop.pay(account, 5000)
    assert big.unallocated == 2000  # 30.00 settles the newer one, 20.00 stays as the account's credit
    assert shop.get(newer).status == "settled"
    assert balance_and_outstanding(db, account) == (-2000, 0) == (ledger_balance(db, account), 0)
    # The credit is not spent by a later posting; it is allocated when the user asks.
    third = shop.posted(account, [("widget", 3)])
    assert shop.get(third).amount_due == 3000
    again = db.write(lambda s: payments.allocate_payment(s, big.id, ins.PaymentAllocate(), actor=shop.actor))
    assert again.unallocated == 0 and shop.get(third).amount_due == 1000
    with pytest.raises(Conflict) as exc:
        db.write(lambda s: payments.allocate_payment(s, big.id, ins.PaymentAllocate(), actor=shop.actor))
    assert exc.value.code == "payment_fully_allocated"
    verified(db, shop)


def test_chosen_allocations_and_overpayment(db):
    shop = Shop(db)
    account = shop.account()
    a = shop.posted(account, [("widget", 10)])
    b = shop.posted(account, [("widget", 5)])
    before = counts(db, shop.ws.id)
    with pytest.raises(InvalidInput) as exc:
        shop.pay(account, 6000, allocations=[(b.id, 5001)])
    assert exc.value.code == "overpayment"
    with pytest.raises(InvalidInput) as exc:
        shop.pay(account, 1000, allocations=[(b.id, 500), (a.id, 600)])
    assert exc.value.code == "allocation_exceeds_payment"
    draft = shop.invoice(account)
    with pytest.raises(Conflict) as exc:
        shop.pay(account, 1000, allocations=[(draft.id, 500)])
    assert exc.value.code == "invoice_not_open"
    assert counts(db, shop.ws.id)[2:] == before[2:]  # the draft made an invoice and a line, nothing else
    paid = shop.pay(account, 6000, allocations=[(b.id, 5000)])
    assert paid.unallocated == 1000
    assert shop.get(b).status == "settled" and shop.get(a).amount_due == 10000
    other = shop.account(name="Other")
    inv_other = shop.posted(other, [("widget", 1)])
    with pytest.raises(InvalidInput) as exc:
        shop.pay(account, 100, allocations=[(inv_other.id, 100)])
    assert exc.value.code == "invoice_not_of_account"
    verified(db, shop)


def test_mark_as_paid(db):
    shop = Shop(db)
    account = shop.account()
    inv = shop.posted(account)
    pay = db.write(lambda s: payments.mark_paid(s, inv.id, actor=shop.actor, method="cash"))
    assert (pay.amount, pay.unallocated, pay.method) == (33000, 0, "cash")
    assert shop.get(inv).status == "settled"
    with pytest.raises(Conflict):
        db.write(lambda s: payments.mark_paid(s, inv.id, actor=shop.actor))


def test_outstanding_is_posted_past_due_not_settled(db, frozen_clock):
    frozen_clock.set(datetime(2026, 3, 1, 12, tzinfo=UTC))
    shop = Shop(db)
    account = shop.account()
    overdue = shop.posted(account, [("widget", 10)], issue_date=date(2026, 1, 1))  # due 31 Jan
    shop.posted(account, [("widget", 7)], issue_date=date(2026, 2, 20))  # due 22 Mar: not yet
    shop.invoice(account, [("widget", 99)], issue_date=date(2026, 1, 1))  # a draft: never
    assert balance_and_outstanding(db, account) == (17000, 10000)
    assert balance_and_outstanding(db, account, date(2026, 1, 31)) == (17000, 0)  # due that day: not past due
    shop.pay(account, 4000, allocations=[(overdue.id, 4000)])
    assert balance_and_outstanding(db, account) == (13000, 6000)
    assert balance_and_outstanding(db, account, date(2026, 3, 23)) == (13000, 13000)
    with db.read() as s:
        page = invoices.list_invoices(s, actor=shop.actor, overdue=True)
        assert [i.id for i in page.items] == [overdue.id]
        assert invoices.invoice_out(s, page.items[0]).overdue is True
        due_soon = invoices.list_invoices(s, actor=shop.actor, due_after=date(2026, 3, 1), status="posted")
        assert len(due_soon.items) == 1


def test_foreign_currency_account(db):
    shop = Shop(db)
    account = shop.account(currency="EUR")
    inv = shop.posted(account)
    assert (inv.currency, inv.total) == ("EUR", 28600)
    shop.pay(account, 28600, currency="EUR")
    assert shop.get(inv).status == "settled"
    assert balance_and_outstanding(db, account) == (0, 0)
    with db.read() as s:
        transfers = s.scalars(select(LedgerTransfer).where(
            LedgerTransfer.debit_account_id == account.ledger_account_id)).all()
        assert {t.unit for t in transfers} == {"EUR"}
    verified(db, shop)


# --- the bad input list of issue 12: each refused with a code, nothing written ---

def test_bad_input_is_refused_with_a_code_and_nothing_written(db):
    shop = Shop(db)
    account = shop.account()
    eur = shop.account(currency="EUR", name="EUR account")
    posted = shop.posted(account)
    empty = shop.invoice(account, [])
    from creditdesk.catalog import schemas as cs
    from creditdesk.catalog import service as catalog
    db.write(lambda s: catalog.create_product(s, cs.ProductCreate(code="unpriced", name="U", kind="service",
                                                                  unit="each"), actor=shop.actor))
    before = counts(db, shop.ws.id)

    def create(body):
        return lambda s: invoices.create_invoice(s, ins.InvoiceCreate.model_validate(body), actor=shop.actor)

    cases = [
        (create({"account_id": account.id, "lines": [{"product": "hours", "quantity": 1, "currency": "EUR"}]}),
         "currency_mismatch"),
        (create({"account_id": account.id, "price_plan_id": shop.plans["EUR"]}), "currency_mismatch"),
        (create({"account_id": eur.id, "lines": [{"product": "widget", "quantity": 1}]}), "no_price"),
        (create({"account_id": account.id, "lines": [{"product": "unpriced", "quantity": 1}]}), "no_price"),
        (create({"account_id": account.id, "lines": [{"product": "hours", "quantity": "-1"}]}), "invalid_quantity"),
        (create({"account_id": account.id, "lines": [{"product": "hours", "quantity": "0"}]}), "invalid_quantity"),
        (create({"account_id": account.id, "lines": [{"product": "hours", "quantity": "1.0001"}]}),
         "invalid_quantity"),
        (lambda s: invoices.post_invoice(s, empty.id, actor=shop.actor), "invoice_empty"),
        (lambda s: invoices.add_line(s, posted.id, ins.LineCreate(product="hours", quantity=1), actor=shop.actor),
         "invoice_not_draft"),
        (lambda s: payments.record_payment(s, ins.PaymentCreate(account_id=account.id, amount=40000, allocations=[
            ins.AllocationIn(invoice_id=posted.id, amount=33001)]), actor=shop.actor), "overpayment"),
        (lambda s: payments.record_payment(s, ins.PaymentCreate(account_id=account.id, amount=100, currency="EUR"),
                                           actor=shop.actor), "currency_mismatch"),
        (lambda s: accounts.update_account(s, account.id, __import__("creditdesk.billing.schemas", fromlist=["x"])
                                           .AccountUpdate(currency="EUR"), actor=shop.actor), "currency_immutable"),
    ]
    for fn, code in cases:
        with pytest.raises((InvalidInput, Conflict)) as exc:
            db.write(fn)
        assert exc.value.code == code, (code, exc.value.message)
    assert counts(db, shop.ws.id) == before
    with db.read() as s:
        assert s.get(BillingSettings, shop.ws.id).next_invoice_number == 2


def test_members_read_managers_write(db):
    shop = Shop(db)
    account = shop.account()
    member = actor_of(db, make_user(db, actor=shop.actor, role="member", name="Member"))
    manager = actor_of(db, make_user(db, actor=shop.actor, role="manager", name="Manager"))
    with pytest.raises(NotPermitted):
        shop.invoice(account, actor=member)
    inv = shop.invoice(account, actor=manager)
    with pytest.raises(NotPermitted):
        shop.post(inv, actor=member)
    shop.post(inv, actor=manager)
    with pytest.raises(NotPermitted):
        shop.pay(account, 100, actor=member)
    with pytest.raises(NotPermitted):
        shop.credit(inv, actor=member, amount=100)
    with db.read() as s:
        assert invoices.list_invoices(s, actor=member).items


def test_another_workspace_sees_nothing(db):
    shop, other = Shop(db), Shop(db, name="Other")
    inv = shop.posted(shop.account())
    with pytest.raises(NotFound):
        shop_other_post = other.post(inv)  # noqa: F841
    with pytest.raises(NotFound):
        other.pay(shop.account(), 100)  # another workspace's account
    with db.read() as s:
        assert invoices.list_invoices(s, actor=other.actor).items == []


def test_balance_and_outstanding_agree_with_the_ledger_across_a_period_close(db, frozen_clock):
    """Invoices, a credit note and payments in AUD and EUR, a period closed between them: the balance is
    the stored opening balance plus what was posted since, equal to the ledger's; outstanding counts only
    what is past due and unpaid, before and after the close."""
    from creditdesk.billing import periods

    frozen_clock.set(datetime(2026, 1, 5, 9, tzinfo=UTC))
    shop = Shop(db, periods={"frequency": "monthly", "start_date": "2026-01-01"})
    aud, eur = shop.account(), shop.account(currency="EUR", name="EUR account")
    january_aud = shop.posted(aud, [("hours", "2")])            # 330.00, due 30 days later (Feb 4)
    january_eur = shop.posted(eur, [("hours", "1")])            # 143.00 EUR
    shop.pay(aud, 10000, allocations=[(january_aud.id, 10000)])  # 100.00 of it
    shop.credit(january_eur, amount=4300, reason="goodwill")   # 43.00 EUR off
    assert balance_and_outstanding(db, aud) == (23000, 0)       # not yet due
    assert balance_and_outstanding(db, eur) == (10000, 0)

    frozen_clock.set(datetime(2026, 2, 10, 9, tzinfo=UTC))     # January is over, the invoices past due
    closed = db.write(lambda s: periods.close_due_period(s, shop.ws.id, actor=shop.actor))
    assert (closed.start_date, closed.end_date) == (date(2026, 1, 1), date(2026, 1, 31))
    assert balance_and_outstanding(db, aud) == (23000, 23000)
    assert balance_and_outstanding(db, eur) == (10000, 10000)

    shop.posted(aud, [("widget", 4)])                            # February: 40.00, not due
    shop.pay(aud, 5000)                                          # oldest due first: January's invoice
    shop.pay(eur, 10000, currency="EUR")                         # settles the EUR invoice
    with db.read() as s:
        opening = accounts.account_balance(s, aud)
    assert (opening.opening_balance, opening.debits_since, opening.credits_since) == (23000, 4000, 5000)
    assert balance_and_outstanding(db, aud) == (22000, 18000)
    assert balance_and_outstanding(db, eur) == (0, 0)
    assert shop.get(january_eur).status == "settled"
    for account in (aud, eur):
        assert balance_and_outstanding(db, account)[0] == ledger_balance(db, account)
    verified(db, shop)


def test_posting_is_a_fund_using_event_under_credit_control(db):
    """Seed 004: an account over its credit limit cannot post an invoice (nothing written, no number taken)
    unless an override rule for invoice_post matches, and the audit row names the rule; an account with a
    draft invoice cannot be terminated."""
    from creditdesk.audit import AuditEvent
    from creditdesk.billing import credit_control, lifecycle
    from creditdesk.billing import credit_schemas as ccs

    shop = Shop(db)
    account = shop.account(classification="VIP")
    db.write(lambda s: credit_control.change_credit_terms(s, account.id, ccs.CreditTermsChange(credit_limit=30000),
                                                          actor=shop.actor))
    shop.posted(account, [("hours", "1")])                       # 165.00: within 300.00
    second = shop.invoice(account, [("hours", "1")])             # would make 330.00
    before = counts(db, shop.ws.id)
    with pytest.raises(Conflict) as refused:
        shop.post(second)
    assert refused.value.code == "credit_limit_exceeded"
    assert counts(db, shop.ws.id) == before and shop.get(second).number is None

    rule = db.write(lambda s: credit_control.create_rule(s, ccs.OverrideRuleCreate(
        name="VIP invoices", events=["invoice_post"], classifications=["vip"]), actor=shop.actor))
    posted = shop.post(second)
    assert posted.number == "INV-000002"                       # no number was lost to the refusal
    with db.read() as s:
        overrides = [e for e in s.scalars(select(AuditEvent).where(AuditEvent.workspace_id == shop.ws.id))
                     if rule.id in str(e.after or {})]
    assert overrides, "the audit names the override rule that let the invoice through"

    shop.invoice(account, [("widget", 1)])                       # a draft: a transaction not yet posted
    with pytest.raises(Conflict) as pending:
        db.write(lambda s: lifecycle.terminate(s, account.id, actor=shop.actor))
    assert pending.value.code == "account_has_pending_transactions"
    verified(db, shop)
