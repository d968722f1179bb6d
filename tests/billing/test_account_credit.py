"""The account's credit (what its payments left unallocated: an overpayment, what a credit note on a paid
invoice released): applied to open invoices on request (oldest due first, or as named), refunded through the
ledger (never more than the credit), never used silently; the API's apply and refund, idempotent; the money
invariants (verify_invoices and ledger verify) after every step."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from creditdesk.audit import AuditEvent
from creditdesk.billing import accounts, payments
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing.invoice_models import Payment, Refund
from creditdesk.billing.models import AccountEntry, BillingAccount
from creditdesk.billing.verify import verify_invoices
from creditdesk.errors import Conflict, CreditdeskError, InvalidInput, NotFound, NotPermitted
from creditdesk.ledger import service as ledger
from tests.api.test_billing_accounts import Api
from tests.billing.factories import Shop
from tests.parties.factories import actor_of, make_user


def sound(db, shop):
    """The money invariants: documents agree with each other and with the ledger."""
    with db.read() as s:
        checked, problems = verify_invoices(s, workspace_id=shop.ws.id)
        assert problems == []
        assert ledger.verify(s, workspace_id=shop.ws.id).ok


def credit(db, account):
    with db.read() as s:
        return payments.account_credit(s, account.id)


def balance(db, account):
    with db.read() as s:
        return accounts.account_balance(s, s.get(BillingAccount, account.id)).balance


def apply(db, shop, account, allocations=None, actor=None):
    data = ins.CreditApply(allocations=None if allocations is None else [
        ins.AllocationIn(invoice_id=i, amount=a) for i, a in allocations])
    return db.write(lambda s: payments.apply_credit(s, account.id, data, actor=actor or shop.actor))


def refund(db, shop, account, amount, actor=None, **extra):
    data = ins.CreditRefundCreate.model_validate({"amount": amount, "reason": "Customer asked", **extra})

    def fn(s):
        r = payments.refund_credit(s, account.id, data, actor=actor or shop.actor)
        return payments.refund_out(s, r)
    return db.write(fn)


def refused(db, fn, *args, error=CreditdeskError, code=None, **kw):
    with pytest.raises(error) as exc:
        fn(db, *args, **kw)
    if code:
        assert exc.value.code == code, exc.value.message
    return exc.value


@pytest.fixture
def shop(db):
    shop = Shop(db)
    shop.acct = shop.account()
    return shop


def test_an_overpayment_is_applied_oldest_due_first_only_when_asked(db, shop):
    a = shop.acct
    first = shop.posted(a, [("hours", "1")])   # 165.00 with GST
    shop.pay(a, 16_500 + 3_881)                 # $38.81 stays on the account as a credit
    assert credit(db, a) == 3_881 and balance(db, a) == -3_881
    second = shop.posted(a, [("widget", "2")])  # 20.00, no tax
    third = shop.posted(a, [("widget", "3")])   # 30.00
    # Decision (the seeds are silent): a later posting does not use the credit on its own.
    assert shop.get(second).amount_due == 2_000 and credit(db, a) == 3_881
    out = apply(db, shop, a)
    assert [(x.invoice_number, x.amount) for x in out.applied] == [(shop.get(second).number, 2_000),
                                                                   (shop.get(third).number, 1_881)]
    assert out.available == 0 and credit(db, a) == 0
    assert shop.get(second).status == "settled" and shop.get(third).amount_due == 3_000 - 1_881
    assert shop.get(first).status == "settled"
    assert balance(db, a) == 3_000 - 1_881  # applying moves no money: the balance already counted the payment
    sound(db, shop)
    refused(db, apply, shop, a, error=Conflict, code="credit_too_low")


def test_named_allocations_and_their_refusals_write_nothing(db, shop):
    a = shop.acct
    one = shop.posted(a, [("widget", "5")])   # 50.00
    two = shop.posted(a, [("widget", "2")])   # 20.00
    shop.pay(a, 1_000, allocations=[])         # two payments of credit, 10.00 and 40.00
    shop.pay(a, 4_000, allocations=[])
    assert credit(db, a) == 5_000
    refused(db, apply, shop, a, [(one.id, 5_001)], error=InvalidInput, code="overpayment")
    refused(db, apply, shop, a, [(one.id, 4_000), (two.id, 2_000)], error=Conflict, code="credit_too_low")
    refused(db, apply, shop, a, [(one.id, 100), (one.id, 100)], error=InvalidInput, code="duplicate_invoice")
    other = shop.account(name="Other")
    foreign = shop.posted(other, [("widget", "1")])
    refused(db, apply, shop, a, [(foreign.id, 100)], error=InvalidInput, code="invoice_not_of_account")
    assert credit(db, a) == 5_000 and shop.get(one).amount_paid == 0
    out = apply(db, shop, a, [(two.id, 2_000), (one.id, 1_500)])
    # Taken from the payments oldest first: the 10.00 one is used up, then the 40.00 one.
    with db.read() as s:
        pays = [(p.id, p.unallocated) for p in s.scalars(select(Payment).where(Payment.account_id == a.id)
                                                           .order_by(Payment.id))]
    assert [left for _, left in pays] == [0, 1_500]
    assert [(x.invoice_id, x.amount) for x in out.applied] == [(two.id, 1_000), (two.id, 1_000), (one.id, 1_500)]
    assert shop.get(two).status == "settled" and shop.get(one).amount_due == 3_500
    with db.read() as s:
        events = s.scalars(select(AuditEvent.object_id).where(
            AuditEvent.workspace_id == shop.ws.id, AuditEvent.action == "payment.allocate")).all()
    assert sorted(events) == sorted(pid for pid, _ in pays)  # each payment used: its own audit row
    sound(db, shop)


def test_no_open_invoice_and_members(db, shop):
    a = shop.acct
    shop.pay(a, 500)
    refused(db, apply, shop, a, error=Conflict, code="no_open_invoices")
    member = actor_of(db, make_user(db, actor=shop.actor, name="Member", role="member"))
    refused(db, apply, shop, a, actor=member, error=NotPermitted)
    refused(db, refund, shop, a, 100, actor=member, error=NotPermitted)
    assert credit(db, a) == 500


def test_a_refund_gives_back_the_credit_through_the_ledger(db, shop):
    a = shop.acct
    inv = shop.posted(a, [("widget", "5")])   # 50.00
    shop.pay(a, 5_000)
    shop.credit(inv, amount=2_000, reason="Two widgets broken")  # paid invoice: "Left as credit $20.00"
    assert credit(db, a) == 2_000 and balance(db, a) == -2_000
    refused(db, refund, shop, a, 2_001, error=Conflict, code="credit_too_low")
    with pytest.raises(ValidationError):  # a blank reason is refused by the request itself
        refund(db, shop, a, 100, reason="   ")
    out = refund(db, shop, a, 1_500, method="card", reference="re_123")
    assert (out.amount, out.method, out.reference, out.reason) == (1_500, "card", "re_123", "Customer asked")
    assert credit(db, a) == 500 and balance(db, a) == -500
    with db.read() as s:
        entry = s.scalar(select(AccountEntry).where(AccountEntry.account_id == a.id, AccountEntry.kind == "refund"))
        assert (entry.direction, entry.amount) == ("debit", 1_500)
        from creditdesk.ledger.models import LedgerTransfer

        transfer = s.get(LedgerTransfer, entry.transfer_id)
        assert (transfer.amount, transfer.code, transfer.debit_account_id) == (
            1_500, "refund", s.get(BillingAccount, a.id).ledger_account_id)
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "refund.create",
                                                     AuditEvent.workspace_id == shop.ws.id)).all()
        assert event.object_id == out.id and event.after["reason"] == "Customer asked"
        assert event.before["credit"] == 2_000 and event.after["credit_left"] == 500
    sound(db, shop)
    refund(db, shop, a, 500)
    assert credit(db, a) == 0 and balance(db, a) == 0
    refused(db, refund, shop, a, 1, error=Conflict, code="credit_too_low")
    sound(db, shop)


def test_a_refund_from_one_payment(db, shop):
    a, other = shop.acct, shop.account(name="Other")
    first = shop.pay(a, 700, allocations=[])
    second = shop.pay(a, 300, allocations=[])
    foreign = shop.pay(other, 100, allocations=[])
    refused(db, refund, shop, a, 301, payment_id=second.id, error=Conflict, code="credit_too_low")
    refused(db, refund, shop, a, 10, payment_id=foreign.id, error=NotFound)
    out = refund(db, shop, a, 300, payment_id=second.id)
    assert [(p.payment_id, p.amount) for p in out.parts] == [(second.id, 300)]
    out = refund(db, shop, a, 700)
    assert [(p.payment_id, p.amount) for p in out.parts] == [(first.id, 700)]
    sound(db, shop)


def test_verify_sees_a_refund_that_does_not_add_up(db, shop):
    a = shop.acct
    shop.pay(a, 1_000, allocations=[])
    out = refund(db, shop, a, 400)
    with db.read() as s:
        s.get(Refund, out.id).amount = 401
        s.flush()
        problems = verify_invoices(s, workspace_id=shop.ws.id)[1]
        assert any("parts add up" in p for p in problems) and any("refunds add up" in p for p in problems)


# --- over HTTP ---

@pytest.fixture
def api(client, shop, db):
    from tests.parties.factories import make_api_key

    key = make_api_key(db, actor=shop.actor, user_id=shop.actor.user_id)
    return Api(client, {"Authorization": f"Bearer {key}"})


def test_the_api_applies_and_refunds_idempotently(api, db, shop):
    a = shop.acct
    inv = shop.posted(a, [("widget", "2")])   # 20.00
    shop.pay(a, 2_000 + 3_881)
    got = api.get(f"/v1/accounts/{a.id}/credit")
    assert got["available"] == 3_881 and len(got["payments"]) == 1
    later = shop.posted(a, [("widget", "1")])  # 10.00
    body = {"allocations": [{"invoice_id": later.id, "amount": 1_000}]}
    out = api.post(f"/v1/accounts/{a.id}/credit/apply", body, status=200, key="apply-1")
    assert out["applied"][0]["invoice_number"] == shop.get(later).number and out["available"] == 2_881
    again = api.post(f"/v1/accounts/{a.id}/credit/apply", body, status=200, key="apply-1")
    assert again == out and api.get(f"/v1/accounts/{a.id}/credit")["available"] == 2_881
    body = {"amount": 2_881, "method": "bank_transfer", "reason": "Overpaid", "reference": "EFT back"}
    made = api.post(f"/v1/accounts/{a.id}/credit/refunds", body, key="refund-1")
    assert api.post(f"/v1/accounts/{a.id}/credit/refunds", body, key="refund-1") == made
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Refund).where(Refund.account_id == a.id)) == 1
    api.post(f"/v1/accounts/{a.id}/credit/refunds", {**body, "amount": 1}, status=422, key="refund-1")
    problem = api.post(f"/v1/accounts/{a.id}/credit/refunds", {**body, "amount": 1}, status=409, key="refund-2")
    assert problem["code"] == "credit_too_low" and problem["available"] == 0
    listed = api.get(f"/v1/accounts/{a.id}/credit/refunds")
    assert [r["id"] for r in listed["data"]] == [made["id"]]
    api.post(f"/v1/accounts/{a.id}/credit/apply", {}, status=409)
    assert shop.get(inv).status == "settled"
    sound(db, shop)
