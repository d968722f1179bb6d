"""Customer accounts: open, change, list; balance, outstanding amount and statement.

Who may (README "Accounts"): every staff user reads accounts; masters and managers open accounts and
change their name, classification and billing address (managers already create and change customers);
changing an account's credit period is for masters (finance), inside the default credit terms'
proximity range. Customer contacts never log in (parties: users without `is_staff` have no session and
no API key), so no caller is limited to one customer's accounts.

Every account has its own ledger account (unit = the account's currency), opened in the same
transaction; its money is only ever there (see billing.postings)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, object_session

from creditdesk import audit, clock, currencies
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import schemas
from creditdesk.billing.models import AccountingPeriod, BillingAccount, CustomerAddress, PeriodBalance
from creditdesk.billing.settings import allowed_currencies, require_finance, require_settings
from creditdesk.errors import Conflict, InvalidInput
from creditdesk.ids import new_id
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import POST_PENDING, POSTED, LedgerTransfer
from creditdesk.pagination import Page, paginate
from creditdesk.parties.models import Customer
from creditdesk.parties.service import require_manager
from creditdesk.repository import get_in_workspace, one_of

NUMBER_PREFIX = "ACC-"
LEDGER_CODE = "billing_account"


def format_number(sequence: int) -> str:
    return f"{NUMBER_PREFIX}{sequence:06d}"


def get_account(session: Session, workspace_id: str, account_id: str, *, for_update: bool = False) -> BillingAccount:
    return get_in_workspace(session, BillingAccount, workspace_id, account_id, label="account", for_update=for_update)


def _billing_address(session: Session, workspace_id: str, customer_id: str, address_id: str | None) -> str | None:
    if not address_id:
        return None
    owner = session.scalar(select(CustomerAddress.customer_id).where(
        CustomerAddress.id == address_id, CustomerAddress.workspace_id == workspace_id))
    if owner != customer_id:
        raise InvalidInput("The billing address must be one of the account's customer's addresses.",
                           code="address_not_of_customer", field="billing_address_id")
    return address_id


def check_credit_period(settings, days: int) -> int:
    """Inside the default credit terms' proximity range, or 422 `credit_period_out_of_range`."""
    low, high = settings.credit_period_min_days, settings.credit_period_max_days
    if not low <= days <= high:
        raise InvalidInput(f"The credit period must be between {low} and {high} days (the default credit terms' "
                           f"proximity range); {days} is not.", code="credit_period_out_of_range",
                           field="credit_period_days", min_days=low, max_days=high)
    return days


def check_account_currency(settings, code: str) -> str:
    currency = currencies.check_currency(code)
    if currency in allowed_currencies(settings):
        return currency
    if not settings.multi_currency:
        raise InvalidInput(f"Multi-currency is off: accounts are in {settings.default_currency}.",
                           code="multi_currency_disabled", field="currency")
    raise InvalidInput(f"{currency} is not an enabled currency of this workspace "
                       f"({', '.join(allowed_currencies(settings))}).", code="currency_not_enabled", field="currency")


def create_account(session: Session, data: schemas.AccountCreate, *, actor: Actor) -> BillingAccount:
    require_manager(actor, "open accounts")
    ws = actor.workspace_id
    customer = get_in_workspace(session, Customer, ws, data.customer_id)
    # The settings row is the lock of the workspace's account numbers: taken before the number is read,
    # held to the commit, so numbers are gap-free and never handed out twice.
    settings = require_settings(session, ws, for_update=True)
    currency = check_account_currency(settings, data.currency or settings.default_currency)
    address_id = _billing_address(session, ws, customer.id, data.billing_address_id)
    days = settings.credit_period_days
    if data.credit_period_days is not None and data.credit_period_days != days:
        require_finance(actor, "give an account a credit period other than the default")
        days = check_credit_period(settings, data.credit_period_days)
    rating_id = None
    if data.credit_rating_id:
        from creditdesk.billing.credit_control import get_rating  # credit_control builds on this module

        require_finance(actor, "give an account a credit rating")
        rating_id = get_rating(session, ws, data.credit_rating_id).id
    now = clock.now()
    op = ledger.Operation(ws, actor_id=actor.user_id)
    ledger_account_id = op.open_account(unit=currency, code=LEDGER_CODE, at=now)
    ledger.one_shot(session, op)
    number = settings.next_account_number
    settings.next_account_number = number + 1
    account = BillingAccount(id=new_id("acc"), workspace_id=ws, number=format_number(number), customer_id=customer.id,
                             name=data.name, currency=currency, classification=data.classification or None,
                             billing_address_id=address_id, credit_period_days=days, status="active",
                             credit_rating_id=rating_id, ledger_account_id=ledger_account_id, created_at=now,
                             updated_at=now)
    session.add(account)
    session.flush()
    audit.record(session, actor=actor, action="account.create", object_type="account", object_id=account.id,
                 after=snapshot(account))
    return account


def update_account(session: Session, account_id: str, data: schemas.AccountUpdate, *, actor: Actor) -> BillingAccount:
    account = get_account(session, actor.workspace_id, account_id, for_update=True)
    require_manager(actor, "change accounts")
    fields = data.model_fields_set
    if "currency" in fields and (data.currency or "").strip().upper() != account.currency:
        raise Conflict(f"An account's currency is fixed when it is opened ({account.currency}); open another "
                       "account for another currency.", code="currency_immutable", field="currency")
    before = snapshot(account)
    if "name" in fields:
        if data.name is None:
            raise InvalidInput("name cannot be null.", code="field_not_nullable", field="name")
        account.name = data.name
    if "classification" in fields:
        account.classification = data.classification or None
    if "billing_address_id" in fields:
        account.billing_address_id = _billing_address(session, actor.workspace_id, account.customer_id,
                                                      data.billing_address_id)
    if "credit_period_days" in fields and data.credit_period_days != account.credit_period_days:
        if data.credit_period_days is None:
            raise InvalidInput("credit_period_days cannot be null.", code="field_not_nullable",
                               field="credit_period_days")
        require_finance(actor, "change an account's credit period")
        settings = require_settings(session, actor.workspace_id)
        account.credit_period_days = check_credit_period(settings, data.credit_period_days)
    account.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="account.update", object_type="account", object_id=account.id,
                 before=before, after=snapshot(account))
    return account


def list_accounts(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
                  customer_id: str | None = None, status: str | Sequence[str] | None = None,
                  currency: str | None = None, credit_limit_status: str | None = None) -> Page[BillingAccount]:
    stmt = select(BillingAccount).where(BillingAccount.workspace_id == actor.workspace_id)
    if credit_limit_status:
        from creditdesk.billing import credit_control

        stmt = stmt.where(credit_control.limit_status_clause(credit_limit_status))
    if customer_id:
        stmt = stmt.where(BillingAccount.customer_id == customer_id)
    if status:
        stmt = stmt.where(one_of(BillingAccount.status, status))
    if currency:
        stmt = stmt.where(BillingAccount.currency == currency.upper())
    return paginate(session, stmt, id_column=BillingAccount.id, limit=limit, cursor=cursor)


def due_date(account: BillingAccount, issued_on: date) -> date:
    """When something billed to the account on `issued_on` is due: its credit period later."""
    return issued_on + timedelta(days=account.credit_period_days)


# --- balance ---------------------------------------------------------------------------------------------

def period_end_instant(end_date: date) -> datetime:
    """A period ending on `end_date` (UTC) ends at the start of the next day: transfers before it are in."""
    return datetime.combine(end_date + timedelta(days=1), time(0, 0), tzinfo=UTC)


@dataclass(frozen=True)
class Balance:
    account_id: str
    currency: str
    opening_balance: int
    opening_as_of: datetime | None
    debits_since: int
    credits_since: int

    @property
    def balance(self) -> int:
        """What the customer owes (debits increase it); negative when the account is in credit."""
        return self.opening_balance + self.debits_since - self.credits_since


def opening_of(session: Session, account_id: str) -> tuple[PeriodBalance, AccountingPeriod] | None:
    """The account's balance at the end of the latest closed period (None before the first close)."""
    row = session.execute(
        select(PeriodBalance, AccountingPeriod).join(AccountingPeriod, AccountingPeriod.id == PeriodBalance.period_id)
        .where(PeriodBalance.account_id == account_id).order_by(AccountingPeriod.end_date.desc()).limit(1)).first()
    return (row[0], row[1]) if row else None


def account_balance(session: Session, account: BillingAccount) -> Balance:
    """Opening balance of the latest closed period + everything posted to the account since, from the
    ledger. Two rows: the latest period balance (cumulative totals at the period's end) and the ledger
    account's posted totals, which the ledger keeps with every transfer in the same transaction (and
    `ledger verify` re-derives from the transfers); what was posted since is their difference."""
    totals = ledger.account_totals(session, [account.ledger_account_id], lock=False)[account.ledger_account_id]
    opening = opening_of(session, account.id)
    debits_before = credits_before = balance_before = 0
    as_of = None
    if opening is not None:
        row, period = opening
        debits_before, credits_before, balance_before = row.debits, row.credits, row.balance
        as_of = period_end_instant(period.end_date)
    return Balance(account.id, account.currency, balance_before, as_of, totals.debits_posted - debits_before,
                   totals.credits_posted - credits_before)


def balances_of(session: Session, accounts: list[BillingAccount]) -> dict[str, int]:
    """Balances of many accounts (a list page): their ledger accounts' posted totals in one read. Equal to
    account_balance(...).balance, since every period balance is cumulative."""
    totals = ledger.account_totals(session, [a.ledger_account_id for a in accounts], lock=False)
    return {a.id: totals[a.ledger_account_id].debits_posted - totals[a.ledger_account_id].credits_posted
            for a in accounts}


# --- outstanding ------------------------------------------------------------------------------------------

OutstandingSource = Callable[[Session, BillingAccount, date], int]
_outstanding_sources: list[OutstandingSource] = []


def register_outstanding_source(source: OutstandingSource) -> None:
    """The hook of the invoices work: a function (session, account, on_date) -> the minor units of the
    account's posted debits that are not settled and were due before `on_date`. Registered once at import
    of the module that knows due dates and settlements (invoices); `account_outstanding` sums them."""
    if source not in _outstanding_sources:
        _outstanding_sources.append(source)


def account_outstanding(session: Session, account: BillingAccount, on_date: date | None = None) -> int:
    """Posted debits not settled and past their due date (seed 004), summed over the registered sources.

    Only a document that was issued with a due date (an invoice, due after the account's credit period)
    can be past due, and only what settles it (payments, credit notes allocated to it) can make it
    settled: both live with the invoices, which register their source here. Debits posted without such a
    document (an adjustment) have no due date and are never past due, so with no source registered the
    outstanding amount is exactly 0."""
    on_date = on_date or clock.now().date()
    return sum(source(session, account, on_date) for source in _outstanding_sources)


# --- statement --------------------------------------------------------------------------------------------

_POSTED_PHASES = (POSTED, POST_PENDING)


def _signed(ledger_account_id: str):
    """A transfer's effect on the account: + for a debit (the customer owes more), - for a credit."""
    t = LedgerTransfer
    return case((t.debit_account_id == ledger_account_id, t.amount), else_=-t.amount)


def _on_account(ledger_account_id: str):
    t = LedgerTransfer
    return and_(or_(t.debit_account_id == ledger_account_id, t.credit_account_id == ledger_account_id),
                t.phase.in_(_POSTED_PHASES))


def statement_page(session: Session, account: BillingAccount, *, limit: int | None = None,
                   cursor: str | None = None) -> tuple[list[schemas.StatementLine], str | None]:
    """The account's posted ledger transfers, oldest first, each with the running balance after it."""
    t = LedgerTransfer
    la = account.ledger_account_id
    page = paginate(session, select(t).where(_on_account(la)), id_column=t.id, limit=limit, cursor=cursor,
                    sort_column=t.created_at)
    if not page.items:
        return [], None
    first = page.items[0]
    before = session.scalar(select(func.coalesce(func.sum(_signed(la)), 0)).where(
        _on_account(la), or_(t.created_at < first.created_at, and_(t.created_at == first.created_at, t.id < first.id))))
    return list(_lines(page.items, la, int(before or 0))), page.next_cursor


def _lines(transfers, ledger_account_id: str, running: int) -> Iterator[schemas.StatementLine]:
    for tr in transfers:
        debit = tr.amount if tr.debit_account_id == ledger_account_id else 0
        credit = tr.amount - debit
        running += debit - credit
        yield schemas.StatementLine(transfer_id=tr.id, posted_at=clock.aware(tr.created_at), kind=tr.code,
                                    reference_kind=tr.reference_kind, reference_id=tr.reference_id,
                                    debit=debit, credit=credit, balance=running)


def statement_rows(session: Session, account: BillingAccount) -> Iterator[schemas.StatementLine]:
    """Every line of the statement, oldest first, read in chunks (for the CSV download)."""
    t = LedgerTransfer
    stmt = (select(t).where(_on_account(account.ledger_account_id)).order_by(t.created_at, t.id)
            .execution_options(yield_per=1000))
    yield from _lines(session.scalars(stmt), account.ledger_account_id, 0)


def account_out(account: BillingAccount, credit=None) -> schemas.AccountOut:
    """`credit`: the account's credit_control.CreditState when the caller read many at once (a list);
    read here otherwise."""
    from creditdesk.billing import credit_control

    if credit is None:
        credit = credit_control.credit_state(object_session(account), account)
    return schemas.AccountOut.model_validate(account).model_copy(update={
        "effective_credit_limit": credit.credit_limit, "credit_limit_status": credit.status()})


def balance_out(session: Session, account: BillingAccount) -> schemas.BalanceOut:
    b = account_balance(session, account)
    return schemas.BalanceOut(account_id=account.id, currency=account.currency, balance=b.balance,
                              opening_balance=b.opening_balance, opening_as_of=b.opening_as_of,
                              debits_since=b.debits_since, credits_since=b.credits_since,
                              outstanding=account_outstanding(session, account))
