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


def verify_invoices(session: Session, *, workspace_id: str | None = None) -> tuple[int, list[str]]:
    """(invoices checked, problems): each invoice's amount due is its total less its allocations and credit
    notes, paid/credited/status agree with them; each payment's unallocated amount is its amount less its
    allocations and refund parts, each refund the sum of its parts; and per account, what the documents posted
    (invoices, credit notes, payments, refunds) is what its
    entries say, and its entries' balance is its ledger balance (recomputed from the transfers)."""
    from creditdesk.billing.invoice_models import CreditNote, Invoice, Payment, PaymentAllocation, Refund, RefundPart
    from creditdesk.billing.models import AccountEntry

    problems: list[str] = []
    scope = [Invoice.workspace_id == workspace_id] if workspace_id else []
    paid = dict(session.execute(select(PaymentAllocation.invoice_id, func.sum(PaymentAllocation.amount))
                                .group_by(PaymentAllocation.invoice_id)).tuples().all())
    credited = dict(session.execute(select(CreditNote.invoice_id, func.sum(CreditNote.amount))
                                    .group_by(CreditNote.invoice_id)).tuples().all())
    checked = 0
    billed: dict[str, int] = {}
    written_off: dict[str, int] = {}  # per account: what its invoices say was written off
    for inv in session.scalars(select(Invoice).where(*scope).order_by(Invoice.id)).yield_per(1000):
        checked += 1
        p, c = int(paid.get(inv.id) or 0), int(credited.get(inv.id) or 0)
        name = f"invoice {inv.number or inv.id}"
        w = inv.amount_written_off
        if inv.amount_due != inv.total - p - c - w or (inv.amount_paid, inv.amount_credited) != (p, c):
            problems.append(f"{name}: amount due {inv.amount_due} (paid {inv.amount_paid}, credited "
                            f"{inv.amount_credited}, written off {w}); its allocations say paid {p}, its credit "
                            f"notes {c}, so {inv.total - p - c - w} due")
        written_off[inv.account_id] = written_off.get(inv.account_id, 0) + w
        if inv.status in ("posted", "settled"):
            billed[inv.account_id] = billed.get(inv.account_id, 0) + inv.total
            if (inv.status == "settled") != (inv.amount_due == 0):
                problems.append(f"{name} is {inv.status} with {inv.amount_due} due")
        elif p or c:
            problems.append(f"{name} is {inv.status} but has payments or credit notes")
    pscope = [Payment.workspace_id == workspace_id] if workspace_id else []
    allocated = dict(session.execute(select(PaymentAllocation.payment_id, func.sum(PaymentAllocation.amount))
                                     .group_by(PaymentAllocation.payment_id)).tuples().all())
    refunded = dict(session.execute(select(RefundPart.payment_id, func.sum(RefundPart.amount))
                                    .group_by(RefundPart.payment_id)).tuples().all())
    received: dict[str, int] = {}
    for pay in session.scalars(select(Payment).where(*pscope)).yield_per(1000):
        received[pay.account_id] = received.get(pay.account_id, 0) + pay.amount
        left = pay.amount - int(allocated.get(pay.id) or 0) - int(refunded.get(pay.id) or 0)
        if pay.unallocated != left:
            problems.append(f"payment {pay.id}: unallocated {pay.unallocated}, but {pay.amount} less its "
                            f"allocations and refunds is {left}")
    rscope = [Refund.workspace_id == workspace_id] if workspace_id else []
    parts = dict(session.execute(select(RefundPart.refund_id, func.sum(RefundPart.amount))
                                 .group_by(RefundPart.refund_id)).tuples().all())
    refunds: dict[str, int] = {}
    for refund in session.scalars(select(Refund).where(*rscope)).yield_per(1000):
        refunds[refund.account_id] = refunds.get(refund.account_id, 0) + refund.amount
        if int(parts.get(refund.id) or 0) != refund.amount:
            problems.append(f"refund {refund.id}: {refund.amount}, but its parts add up to "
                            f"{int(parts.get(refund.id) or 0)}")
    noted = dict(session.execute(select(CreditNote.account_id, func.sum(CreditNote.amount)).where(
        *([CreditNote.workspace_id == workspace_id] if workspace_id else [])).group_by(CreditNote.account_id))
        .tuples().all())
    t, e = LedgerTransfer, AccountEntry
    ascope = [BillingAccount.workspace_id == workspace_id] if workspace_id else []
    for acc_id, number, la in session.execute(select(BillingAccount.id, BillingAccount.number,
                                                     BillingAccount.ledger_account_id).where(*ascope)).all():
        by_kind = dict(session.execute(
            select(e.kind, func.sum(case((e.direction == "debit", e.amount), else_=-e.amount)))
            .where(e.account_id == acc_id).group_by(e.kind)).tuples().all())
        by_kind = {k: int(v or 0) for k, v in by_kind.items()}
        expected = {"invoices": billed.get(acc_id, 0), "credit notes": -int(noted.get(acc_id) or 0),
                    "payments": -received.get(acc_id, 0), "refunds": refunds.get(acc_id, 0)}
        posted = {"invoices": by_kind.get("invoice", 0) + by_kind.get("invoice_tax", 0),
                  "credit notes": by_kind.get("credit_note", 0) + by_kind.get("credit_note_tax", 0),
                  "payments": by_kind.get("payment", 0), "refunds": by_kind.get("refund", 0)}
        for what, amount in expected.items():
            if posted[what] != amount:
                problems.append(f"account {number}: its {what} add up to {amount}, its entries to {posted[what]}")
        # A write-off closes the whole debt; its invoices' part of it can be less (debt outside invoices), never more.
        entries_written_off = -by_kind.get("write_off", 0)
        if written_off.get(acc_id, 0) > entries_written_off:
            problems.append(f"account {number}: its invoices say {written_off[acc_id]} was written off, its "
                            f"write-off entries {entries_written_off}")
        ledger_balance = int(session.scalar(
            select(func.coalesce(func.sum(case((t.debit_account_id == la, t.amount), else_=-t.amount)), 0))
            .where((t.debit_account_id == la) | (t.credit_account_id == la),
                   t.phase.in_(("posted", "post_pending")))) or 0)
        if sum(by_kind.values()) != ledger_balance:
            problems.append(f"account {number}: its entries add up to {sum(by_kind.values())}, its ledger balance "
                            f"is {ledger_balance}")
    return checked, problems
