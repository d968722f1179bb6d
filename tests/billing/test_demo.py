"""The demo's billing part: AUD default, EUR enabled, rates, two accounts with billing addresses."""

from __future__ import annotations

from sqlalchemy import select

from creditdesk import demo
from creditdesk.billing import accounts, settings
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.verify import verify_period_balances
from creditdesk.ledger import service as ledger


def test_demo_has_two_accounts_in_two_currencies(db):
    info = db.write(demo.create_demo)
    with db.read() as s:
        billing = settings.get_settings(s, info.workspace_id)
        assert (billing.default_currency, billing.multi_currency, billing.enabled_currencies) == ("AUD", True, ["EUR"])
        rows = s.scalars(select(BillingAccount).where(BillingAccount.workspace_id == info.workspace_id)
                         .order_by(BillingAccount.number)).all()
        rows = rows[:2]  # ACC-000003 and 4: the group accounts (test_groups.py)
        assert [(a.number, a.currency) for a in rows] == [("ACC-000001", "AUD"), ("ACC-000002", "EUR")]
        assert all(a.billing_address_id for a in rows)
        # The opening amounts, then the demo invoices: each account has every state, one overdue.
        assert all(accounts.account_balance(s, a).balance > opening for a, opening in zip(rows, [125_000, 48_000]))
        from creditdesk.billing import invoices
        from creditdesk.billing.verify import verify_invoices
        for a in rows:
            states = {i.status for i in invoices.list_invoices(s, actor=_actor(s, info), account_id=a.id,
                                                               limit=50).items}
            assert states == {"draft", "posted", "settled", "void"}
            assert accounts.account_outstanding(s, a) > 0
        assert verify_invoices(s, workspace_id=info.workspace_id)[1] == []
        assert ledger.verify(s, workspace_id=info.workspace_id).ok
        assert verify_period_balances(s, workspace_id=info.workspace_id)[1] == []


def _actor(session, info):
    from creditdesk.audit import Actor

    return Actor.system(info.workspace_id)


def test_demo_invoices_are_made_once(db):
    from sqlalchemy import func

    from creditdesk.billing.invoice_models import Invoice

    info = db.write(demo.create_demo)
    db.write(demo.ensure_demo)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Invoice).where(Invoice.workspace_id == info.workspace_id)) == 13  # the group's split: 2, the massage draft: 1
def test_demo_credit_control_an_exceeded_account_with_an_override_rule(db):
    from creditdesk.billing import credit_control
    from creditdesk.billing.credit_models import CreditRating, OverrideRule

    info = db.write(demo.create_demo)
    db.write(demo.ensure_demo)  # made once: a second start adds nothing
    with db.read() as s:
        ratings = s.scalars(select(CreditRating).where(CreditRating.workspace_id == info.workspace_id)
                            .order_by(CreditRating.code)).all()
        assert [r.code for r in ratings] == ["A", "B", "C"]
        assert credit_control.limits_of(s, [ratings[2].id])[ratings[2].id] == {"AUD": 100_000, "EUR": 60_000}
        acme, globex = s.scalars(select(BillingAccount).where(BillingAccount.workspace_id == info.workspace_id)
                                 .order_by(BillingAccount.number)).all()[:2]  # then the group's
        assert credit_control.credit_state(s, acme).status() == "exceeded"
        assert credit_control.credit_state(s, globex).status() == "not_exceeded"
        assert s.scalar(select(OverrideRule.name).where(OverrideRule.workspace_id == info.workspace_id))
        invoice = credit_control.decide_spend(s, acme, "invoice_post", 1_000)
        assert invoice.allowed and invoice.override_rule is not None
        assert not credit_control.decide_spend(s, acme, "purchase", 1_000).allowed
