"""Billing's part of `ledger verify`: every stored period balance is what the ledger says at the period's
end, and every account that existed at a closing has its row. Recomputed from the ledger transfers with
its own query; shares no code with billing.postings or billing.periods (a bug there cannot hide here)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from creditdesk.billing.models import AccountingPeriod, BillingAccount, PeriodBalance
from creditdesk.ledger.models import LedgerTransfer


def verify_period_balances(session: Session, *, workspace_id: str | None = None) -> tuple[int, list[str]]:
    """(period balances checked, problems)."""
    problems: list[str] = []
    checked = 0
    stmt = select(AccountingPeriod).order_by(AccountingPeriod.workspace_id, AccountingPeriod.end_date)
    if workspace_id:
        stmt = stmt.where(AccountingPeriod.workspace_id == workspace_id)
    t = LedgerTransfer
    for period in session.scalars(stmt).all():
        end = datetime.combine(period.end_date + timedelta(days=1), time(0, 0), tzinfo=UTC)
        stored = {row.account_id: row for row in session.scalars(
            select(PeriodBalance).where(PeriodBalance.period_id == period.id))}
        accounts = session.execute(select(BillingAccount.id, BillingAccount.number, BillingAccount.ledger_account_id,
                                          BillingAccount.created_at)
                                   .where(BillingAccount.workspace_id == period.workspace_id)).all()
        for account_id, number, la, created_at in accounts:
            row = stored.pop(account_id, None)
            if row is None:
                if created_at < period.closed_at:
                    problems.append(f"account {number} ({account_id}) has no balance for the period closed "
                                    f"{period.start_date}..{period.end_date}")
                continue
            checked += 1
            debits, credits = session.execute(
                select(func.coalesce(func.sum(case((t.debit_account_id == la, t.amount), else_=0)), 0),
                       func.coalesce(func.sum(case((t.credit_account_id == la, t.amount), else_=0)), 0))
                .where((t.debit_account_id == la) | (t.credit_account_id == la),
                       t.phase.in_(("posted", "post_pending")), t.created_at < end)).one()
            debits, credits = int(debits), int(credits)
            if (row.debits, row.credits, row.balance) != (debits, credits, debits - credits):
                problems.append(
                    f"account {number} ({account_id}): opening balance after {period.end_date} stored as "
                    f"{row.balance} (debits {row.debits}, credits {row.credits}); the ledger says "
                    f"{debits - credits} (debits {debits}, credits {credits})")
        for account_id in stored:
            problems.append(f"period {period.id} holds a balance for unknown account {account_id}")
    return checked, problems
