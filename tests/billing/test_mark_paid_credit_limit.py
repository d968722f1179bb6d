"""Mark as paid on a draft posts and pays in one transaction: the debt never exists, so the credit limit does
not refuse it (a cash sale to a customer at their limit). Posting without payment still meets the limit; the
money adds up either way."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from creditdesk.audit import AuditEvent
from creditdesk.billing import credit_control, payments
from creditdesk.billing import credit_schemas as cs
from creditdesk.billing.verify import verify_invoices
from creditdesk.errors import Conflict
from creditdesk.ledger import service as ledger
from tests.billing.factories import Shop


@pytest.fixture
def shop(db):
    shop = Shop(db)
    shop.acct = shop.account()
    # Over their limit: 165.00 owed, then a limit of 100.00.
    shop.posted(shop.acct, [("hours", "1")])
    data = cs.CreditTermsChange.model_validate({"credit_limit": 10_000})
    db.write(lambda s: credit_control.change_credit_terms(s, shop.acct.id, data, actor=shop.actor))
    return shop


def sound(db, shop):
    with db.read() as s:
        assert verify_invoices(s, workspace_id=shop.ws.id)[1] == []
        assert ledger.verify(s, workspace_id=shop.ws.id).ok


def test_posting_without_payment_meets_the_limit_but_mark_as_paid_does_not(db, shop):
    draft = shop.invoice(shop.acct, [("hours", "4")])  # 660.00 more
    with pytest.raises(Conflict) as exc:
        shop.post(draft)
    assert exc.value.code == "credit_limit_exceeded"
    assert shop.get(draft).status == "draft"
    pay = db.write(lambda s: payments.mark_paid(s, draft.id, actor=shop.actor, method="cash"))
    inv = shop.get(draft)
    assert (inv.status, inv.amount_due, inv.amount_paid, pay.amount, pay.method) == ("settled", 0, 66_000,
                                                                                     66_000, "cash")
    with db.read() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "invoice.post",
                                                     AuditEvent.object_id == draft.id)).all()
        assert event.after["credit_limit_check"] == "not applied: posted and paid at once"
        # No override was needed, so none was recorded.
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "account.credit_limit_override",
                                                  AuditEvent.object_id == shop.acct.id)).all() == []
    sound(db, shop)
    # The rule still stands for the next posting without payment.
    with pytest.raises(Conflict) as exc:
        shop.post(shop.invoice(shop.acct, [("hours", "1")]))
    assert exc.value.code == "credit_limit_exceeded"


def test_the_cash_sale_leaves_the_balance_where_it_was(db, shop):
    """Posted and paid at once: the account's balance (what the limit is about) is the same before and after,
    so the limit has nothing to guard; over the limit already, the account stays exactly as far over."""
    from creditdesk.billing import accounts
    from creditdesk.billing.models import BillingAccount

    def balance():
        with db.read() as s:
            return accounts.account_balance(s, s.get(BillingAccount, shop.acct.id)).balance

    before = balance()
    sale = shop.invoice(shop.acct, [("widget", "3")])
    db.write(lambda s: payments.mark_paid(s, sale.id, actor=shop.actor, method="cash"))
    assert balance() == before and shop.get(sale).status == "settled"
    sound(db, shop)
