"""The one way billing posts money to an account: `post_account_entry`.

Each entry is one ledger transfer between the account's ledger account and a workspace system account
of the same currency (the counterpart: `control` by default; invoices may post against `revenue`, payments
against `payments`...), opened on first use. A debit increases what the customer owes, a credit
decreases it. The entry row beside the transfer says why, and, for an amount given in another currency,
which conversion rate (of the posting date) made the account's amount.

Postings are never dated inside a closed accounting period (409 `period_closed`): the balances stored at
its end would no longer be the ledger's. A back-dated posting takes the billing settings row's shared
lock, which the period close takes exclusively, so the two never interleave; postings dated now take
no lock there (no hot row)."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import clock
from creditdesk.billing import settings as billing_settings
from creditdesk.billing.accounts import period_end_instant
from creditdesk.billing.models import AccountEntry, AccountingPeriod, BillingAccount
from creditdesk.errors import Conflict, InvalidInput
from creditdesk.ids import new_id
from creditdesk.ledger import service as ledger
from creditdesk.ledger.batch import Reference, TransferSpec
from creditdesk.ledger.models import NO_CACHE

DIRECTIONS = ("debit", "credit")
COUNTERPARTS = ("control", "revenue", "payments", "tax", "adjustments")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def system_key(counterpart: str, currency: str) -> str:
    return f"billing:{counterpart}:{currency}"


def _latest_period_end(session: Session, workspace_id: str) -> datetime | None:
    end = session.scalar(select(AccountingPeriod.end_date).where(AccountingPeriod.workspace_id == workspace_id)
                         .order_by(AccountingPeriod.end_date.desc()).limit(1))
    return period_end_instant(end) if end else None


def post_account_entry(session: Session, account: BillingAccount, amount_minor: int, direction: str, kind: str,
                       reference: Reference | None = None, at: datetime | None = None, *,
                       currency: str | None = None, counterpart: str = "control", actor_id: str | None = None,
                       idempotency_key: str | None = None) -> AccountEntry:
    """Post `amount_minor` (minor units of `currency`, default the account's) to the account, as a debit
    (the customer owes more) or a credit, dated `at` (default now). An amount in another currency is
    converted with the rate valid on the posting date (UTC), rounded once half-up, and the rate is kept on
    the entry. `idempotency_key`: the same posting again returns the entry already made. Never commits."""
    if direction not in DIRECTIONS:
        raise InvalidInput("direction is debit or credit.", code="invalid_direction", field="direction")
    if counterpart not in COUNTERPARTS:
        raise InvalidInput(f"counterpart is one of {', '.join(COUNTERPARTS)}.", code="invalid_counterpart")
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise InvalidInput("kind is a short lower-case word (invoice, payment, credit_note...).", code="invalid_kind")
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise InvalidInput("Amounts are positive integers of minor units.", code="invalid_amount", field="amount")
    if account.status == "terminated":
        raise Conflict("The account is terminated: nothing more is posted to it.", code="account_terminated")
    now = clock.now()
    at = clock.aware(at) or now
    ws = account.workspace_id
    if at < now:
        billing_settings.get_settings(session, ws, for_share=True)
    closed_until = _latest_period_end(session, ws)
    if closed_until is not None and at < closed_until:
        raise Conflict(f"The accounting period up to {closed_until.date()} is closed: post at a later date.",
                       code="period_closed")
    source_amount = source_currency = None
    conversion = None
    if currency is not None and currency.upper() != account.currency:
        conversion = billing_settings.convert(session, ws, amount_minor, currency, account.currency, at.date())
        source_amount, source_currency = amount_minor, currency.upper()
        amount_minor = conversion.amount
        if amount_minor <= 0:
            raise InvalidInput("The converted amount rounds to nothing.", code="invalid_amount", field="amount")
    op = ledger.Operation(ws, actor_id=actor_id, at=at)
    key = system_key(counterpart, account.currency)
    system = ledger.system_account(session, workspace_id=ws, system_key=key)
    system_id = system.id if system is not None else op.open_account(
        unit=account.currency, code=f"billing_{counterpart}", flags=NO_CACHE, system_key=key)
    customer_side, other_side = account.ledger_account_id, system_id
    debit, credit = (customer_side, other_side) if direction == "debit" else (other_side, customer_side)
    op.post(TransferSpec(debit, credit, amount_minor, kind, reference or Reference(), idempotency_key))
    transfer = ledger.one_shot(session, op)[0]
    existing = session.scalar(select(AccountEntry).where(AccountEntry.transfer_id == transfer.id))
    if existing is not None:  # the same idempotent posting again
        return existing
    entry = AccountEntry(id=new_id("ent"), workspace_id=ws, account_id=account.id, transfer_id=transfer.id,
                         direction=direction, kind=kind, amount=amount_minor, source_amount=source_amount,
                         source_currency=source_currency, rate_id=conversion.rate_id if conversion else None,
                         rate_scaled=conversion.rate_scaled if conversion else None,
                         rate_valid_from=conversion.valid_from if conversion else None, created_at=at)
    session.add(entry)
    session.flush()
    return entry

