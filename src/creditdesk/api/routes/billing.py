"""Billing: customers' addresses, billing settings, conversion rates, accounts (balance, statement) and
accounting periods."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from creditdesk import csvexport, currencies
from creditdesk.api.deps import (AccountId, Cursor, CustomerId, Limit, WriteContext, get_actor, get_db, read_session,
                                 status_query, statuses, write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.billing import accounts, addresses, credit_control, periods, settings
from creditdesk.billing import schemas as s
from creditdesk.db import Database

router = APIRouter()

ACCOUNT_STATUSES = get_args(s.AccountStatus)
AddressId = Annotated[str, Path(description="The id of the address, one of this customer's (as its `id` gives it).")]


# --- addresses ---

@router.get("/customers/{customer_id}/addresses", response_model=ListOf[s.AddressOut], tags=["addresses"])
def list_addresses(customer_id: CustomerId, actor: Actor = Depends(get_actor),
                   session: Session = Depends(read_session)):
    """The customer's address book (primary addresses first). Not paginated: a customer has a handful."""
    return list_of(addresses.list_addresses(session, customer_id, actor=actor), None, s.AddressOut.model_validate)


@router.post("/customers/{customer_id}/addresses", status_code=201, response_model=s.AddressOut, tags=["addresses"])
def create_address(customer_id: CustomerId, body: s.AddressCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.AddressOut.model_validate(
        addresses.create_address(db, customer_id, body, actor=actor)), status_code=201)


@router.patch("/customers/{customer_id}/addresses/{address_id}", response_model=s.AddressOut, tags=["addresses"])
def update_address(customer_id: CustomerId, address_id: AddressId, body: s.AddressUpdate,
                   ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.AddressOut.model_validate(
        addresses.update_address(db, customer_id, address_id, body, actor=actor)))


# --- settings and rates ---

@router.get("/billing/settings", response_model=s.BillingSettingsOut, tags=["billing settings"])
def get_billing_settings(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return settings.settings_out(settings.get_settings(session, actor.workspace_id))


@router.patch("/billing/settings", response_model=s.BillingSettingsOut, tags=["billing settings"])
def update_billing_settings(body: s.BillingSettingsUpdate, ctx: WriteContext = Depends(write_context)):
    """Masters only. The first change needs `default_currency`. `accounting_periods` is set once."""
    return ctx.run(lambda db, actor: settings.settings_out(settings.update_settings(db, body, actor=actor)))


@router.get("/conversion-rates", response_model=ListOf[s.ConversionRateOut], tags=["billing settings"])
def list_conversion_rates(limit: int | None = Limit, cursor: str | None = Cursor,
                          from_currency: str | None = Query(default=None, max_length=3, description=(
                              "Only rates converting from this currency (ISO 4217 code, any case).")),
                          to_currency: str | None = Query(default=None, max_length=3, description=(
                              "Only rates converting to this currency (ISO 4217 code, any case).")),
                          actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = settings.list_rates(session, actor=actor, limit=limit, cursor=cursor, from_currency=from_currency,
                               to_currency=to_currency)
    return list_of(page.items, page.next_cursor, settings.rate_out)


@router.post("/conversion-rates", status_code=201, response_model=s.ConversionRateOut, tags=["billing settings"])
def create_conversion_rate(body: s.ConversionRateCreate, ctx: WriteContext = Depends(write_context)):
    """Masters only. A rate is never changed: add one valid from a later date."""
    return ctx.run(lambda db, actor: settings.rate_out(settings.create_rate(db, body, actor=actor)), status_code=201)


# --- accounts ---

@router.post("/accounts", status_code=201, response_model=s.AccountOut, tags=["accounts"])
def create_account(body: s.AccountCreate, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. The number is the next of the workspace (ACC-000001, ...), without gaps."""
    return ctx.run(lambda db, actor: accounts.account_out(accounts.create_account(db, body, actor=actor)),
                   status_code=201)


@router.get("/accounts", response_model=ListOf[s.AccountOut], tags=["accounts"])
def list_accounts(limit: int | None = Limit, cursor: str | None = Cursor,
                  customer_id: str | None = Query(default=None, max_length=40, description=(
                      "Only the accounts of this customer (its id).")),
                  status: list[str] | None = status_query(ACCOUNT_STATUSES, what="accounts"),
                  currency: str | None = Query(default=None, max_length=3, description=(
                      "Only accounts in this currency (ISO 4217 code, any case).")),
                  credit_limit_status: Literal["exceeded", "not_exceeded"] | None = Query(default=None, description=(
                      "`exceeded`: only accounts whose posted balance is above their credit limit (their own, "
                      "else their rating's); `not_exceeded`: only the others, accounts without a limit included.")),
                  actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = accounts.list_accounts(session, actor=actor, limit=limit, cursor=cursor, customer_id=customer_id,
                                  status=statuses(status, ACCOUNT_STATUSES), currency=currency,
                                  credit_limit_status=credit_limit_status)
    credit = credit_control.credit_states(session, page.items)
    return list_of(page.items, page.next_cursor, lambda a: accounts.account_out(a, credit[a.id]))


@router.get("/accounts/{account_id}", response_model=s.AccountOut, tags=["accounts"])
def get_account(account_id: AccountId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return accounts.account_out(accounts.get_account(session, actor.workspace_id, account_id))


@router.patch("/accounts/{account_id}", response_model=s.AccountOut, tags=["accounts"])
def update_account(account_id: AccountId, body: s.AccountUpdate, ctx: WriteContext = Depends(write_context)):
    """The currency never changes (409 currency_immutable); the credit period (masters) stays inside the
    default credit terms' proximity range (422 credit_period_out_of_range)."""
    return ctx.run(lambda db, actor: accounts.account_out(accounts.update_account(db, account_id, body, actor=actor)))


@router.get("/accounts/{account_id}/balance", response_model=s.BalanceOut, tags=["accounts"])
def get_balance(account_id: AccountId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Balance = opening balance of the latest closed accounting period + everything posted since."""
    return accounts.balance_out(session, accounts.get_account(session, actor.workspace_id, account_id))


@router.get("/accounts/{account_id}/statement", response_model=s.StatementOut, tags=["accounts"])
def get_statement(account_id: AccountId, limit: int | None = Limit, cursor: str | None = Cursor,
                  actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """The account's posted ledger entries, oldest first, each with the balance after it."""
    account = accounts.get_account(session, actor.workspace_id, account_id)
    lines, next_cursor = accounts.statement_page(session, account, limit=limit, cursor=cursor)
    return s.StatementOut(account_id=account.id, currency=account.currency, data=lines, next_cursor=next_cursor)


STATEMENT_COLUMNS = ["posted_at", "kind", "reference_kind", "reference_id", "debit", "credit", "balance", "currency",
                     "transfer_id"]


def statement_csv_rows(account, lines) -> Iterator[list]:
    scale = currencies.minor_units(account.currency)
    for line in lines:
        yield [line.posted_at.isoformat(), line.kind, line.reference_kind, line.reference_id,
               csvexport.amount(line.debit, scale), csvexport.amount(line.credit, scale),
               csvexport.amount(line.balance, scale), account.currency, line.transfer_id]


@router.get("/accounts/{account_id}/statement.csv", response_class=StreamingResponse, tags=["accounts"],
            responses={200: {"description": "CSV, UTF-8, with a header row; amounts in major units.",
                             "content": {"text/csv": {"schema": {"type": "string"}}}}})
def statement_csv(account_id: AccountId, actor: Actor = Depends(get_actor), db: Database = Depends(get_db)):
    # Found (and allowed) before streaming: an error after the first byte could not be a proper answer.
    with db.read() as session:
        account = accounts.get_account(session, actor.workspace_id, account_id)
        session.expunge(account)

    def rows() -> Iterator[list]:
        with db.read() as session:
            yield from statement_csv_rows(account, accounts.statement_rows(session, account))

    return csvexport.response(STATEMENT_COLUMNS, rows(), filename=f"statement-{account.number}.csv")


# --- accounting periods ---

@router.get("/accounting-periods", response_model=ListOf[s.PeriodOut], tags=["accounting periods"])
def list_periods(limit: int | None = Limit, cursor: str | None = Cursor, actor: Actor = Depends(get_actor),
                 session: Session = Depends(read_session)):
    """Closed accounting periods, latest first."""
    page = periods.list_periods(session, actor=actor, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, s.PeriodOut.model_validate)


@router.post("/accounting-periods/close", response_model=s.CloseResult, tags=["accounting periods"])
def close_period(ctx: WriteContext = Depends(write_context)):
    """Masters only. Closes the earliest period that is over and not closed yet (`closed: null` when none
    is due): every account's balance at its end is stored as the next period's opening balance."""
    def run(db, actor):
        period = periods.close_due_period(db, actor.workspace_id, actor=actor)
        return s.CloseResult(closed=s.PeriodOut.model_validate(period) if period else None)
    return ctx.run(run)
