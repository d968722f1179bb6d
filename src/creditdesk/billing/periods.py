"""Accounting periods: the calendar the settings give (monthly, quarterly or yearly from a start date,
set once) and the closing of a period.

Closing the earliest due period (its last day is over, UTC) stores, for every account of the workspace,
its totals at the period's end: the closing balance, which is the next period's opening balance. Under
the billing settings row's lock (PostgreSQL FOR UPDATE; SQLite's write lock), so two closings, or a
closing and a back-dated posting, never interleave; a period closed already is never closed again, so
running it twice does nothing. A period is closed whole in one transaction.

The totals are cumulative sums of the account's posted transfers dated before the period's end, read
from the ledger transfers in one grouped query per chunk of accounts."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.billing.accounts import period_end_instant
from creditdesk.billing.models import AccountingPeriod, BillingAccount, BillingSettings, PeriodBalance
from creditdesk.billing.settings import get_settings, require_finance
from creditdesk.ids import new_id
from creditdesk.ledger.models import POST_PENDING, POSTED, LedgerTransfer
from creditdesk.pagination import Page, paginate

MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
_CHUNK = 500


def add_months(day: date, months: int) -> date:
    """The same day `months` later, on the month's last day when it has fewer days (Jan 31 + 1 = Feb 28)."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_after(frequency: str, anchor: date, previous_end: date | None) -> tuple[date, date]:
    """(first day, last day) of the period after the one ending `previous_end` (None: the first period).
    Every boundary is counted from the anchor, so short months never shift the later periods."""
    step = MONTHS[frequency]
    start = anchor if previous_end is None else previous_end + timedelta(days=1)
    index = ((start.year - anchor.year) * 12 + start.month - anchor.month) // step
    return start, add_months(anchor, (index + 1) * step) - timedelta(days=1)


def latest_closed(session: Session, workspace_id: str) -> AccountingPeriod | None:
    return session.scalar(select(AccountingPeriod).where(AccountingPeriod.workspace_id == workspace_id)
                          .order_by(AccountingPeriod.end_date.desc()).limit(1))


def next_due(session: Session, settings: BillingSettings) -> tuple[date, date] | None:
    """The earliest period not closed yet whose end has passed, or None."""
    if not settings.period_frequency:
        return None
    last = latest_closed(session, settings.workspace_id)
    start, end = period_after(settings.period_frequency, settings.period_start, last.end_date if last else None)
    return (start, end) if period_end_instant(end) <= clock.now() else None


def count_due(session: Session, settings: BillingSettings) -> int:
    """How many periods are due to close (for a progress bar)."""
    if not settings.period_frequency:
        return 0
    last = latest_closed(session, settings.workspace_id)
    previous, count, now = (last.end_date if last else None), 0, clock.now()
    while True:
        _, end = period_after(settings.period_frequency, settings.period_start, previous)
        if period_end_instant(end) > now:
            return count
        count, previous = count + 1, end


def cumulative_totals(session: Session, ledger_account_ids: list[str], before) -> dict[str, tuple[int, int]]:
    """Per ledger account: (debits, credits) of its posted transfers dated before `before`."""
    t = LedgerTransfer
    out: dict[str, tuple[int, int]] = {}
    posted = t.phase.in_((POSTED, POST_PENDING))
    for start in range(0, len(ledger_account_ids), _CHUNK):
        chunk = ledger_account_ids[start:start + _CHUNK]
        for column, side in ((t.debit_account_id, 0), (t.credit_account_id, 1)):
            for account_id, total in session.execute(
                    select(column, func.sum(t.amount)).where(column.in_(chunk), posted, t.created_at < before)
                    .group_by(column)):
                sums = list(out.get(account_id, (0, 0)))
                sums[side] = int(total or 0)
                out[account_id] = (sums[0], sums[1])
    return out


def close_due_period(session: Session, workspace_id: str, *, actor: Actor,
                     progress: Callable[[int], None] | None = None) -> AccountingPeriod | None:
    """Close the earliest due period of the workspace; None when none is due (or no period settings)."""
    require_finance(actor, "close accounting periods")
    settings = get_settings(session, workspace_id, for_update=True)
    if settings is None:
        return None
    due = next_due(session, settings)
    if due is None:
        return None
    start, end = due
    cutoff = period_end_instant(end)
    accounts = session.execute(select(BillingAccount.id, BillingAccount.ledger_account_id).where(
        BillingAccount.workspace_id == workspace_id).order_by(BillingAccount.id)).all()
    period = AccountingPeriod(id=new_id("per"), workspace_id=workspace_id, start_date=start, end_date=end,
                              accounts_closed=len(accounts), closed_at=clock.now(), closed_by=actor.user_id)
    session.add(period)
    session.flush()
    for n in range(0, len(accounts), _CHUNK):
        chunk = accounts[n:n + _CHUNK]
        totals = cumulative_totals(session, [la for _, la in chunk], cutoff)
        rows = []
        for account_id, la in chunk:
            debits, credits = totals.get(la, (0, 0))
            rows.append({"period_id": period.id, "account_id": account_id, "workspace_id": workspace_id,
                         "debits": debits, "credits": credits, "balance": debits - credits})
        session.execute(insert(PeriodBalance), rows)
        if progress:
            progress(len(chunk))
    audit.record(session, actor=actor, action="accounting_period.close", object_type="accounting_period",
                 object_id=period.id, after=snapshot(period))
    return period


def list_periods(session: Session, *, actor: Actor, limit: int | None = None,
                 cursor: str | None = None) -> Page[AccountingPeriod]:
    stmt = select(AccountingPeriod).where(AccountingPeriod.workspace_id == actor.workspace_id)
    return paginate(session, stmt, id_column=AccountingPeriod.id, limit=limit, cursor=cursor, descending=True)


def workspaces_with_periods(session: Session) -> list[str]:
    return list(session.scalars(select(BillingSettings.workspace_id).where(
        BillingSettings.period_frequency.is_not(None)).order_by(BillingSettings.workspace_id)))
