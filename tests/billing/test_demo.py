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
        assert [(a.number, a.currency) for a in rows] == [("ACC-000001", "AUD"), ("ACC-000002", "EUR")]
        assert all(a.billing_address_id for a in rows)
        assert [accounts.account_balance(s, a).balance for a in rows] == [125_000, 48_000]
        assert ledger.verify(s, workspace_id=info.workspace_id).ok
        assert verify_period_balances(s, workspace_id=info.workspace_id)[1] == []
