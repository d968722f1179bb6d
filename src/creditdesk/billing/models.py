"""Billing tables: customer addresses, billing settings, conversion rates, accounts, the entries posted
to them, accounting periods and each account's balance at a closed period's end.

Balances are never kept here: an account's money is on its ledger account (`ledger_account_id`). The
period rows hold what the ledger said at a period's end, which `billing.verify` re-derives.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

ADDRESS_TYPES = ("billing", "postal", "office", "delivery", "other")
ACCOUNT_STATUSES = ("active", "suspended", "terminated")
PERIOD_FREQUENCIES = ("monthly", "quarterly", "yearly")
# Conversion rates are integers of 10**-12 units: exact, portable (SQLite has no exact decimal type).
RATE_DECIMALS = 12
RATE_SCALE = 10**RATE_DECIMALS


class CustomerAddress(Base):
    """One address of a customer's address book; an account's billing address is one of them."""

    __tablename__ = "customer_addresses"
    __table_args__ = (
        CheckConstraint("length(country) = 2", name="country_alpha2"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    type: Mapped[str] = mapped_column(String(20))
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_customer_addresses_customer", CustomerAddress.workspace_id, CustomerAddress.customer_id,
      CustomerAddress.id)


class BillingSettings(Base):
    """A workspace's billing settings (one row, made by the first change). Also the workspace's lock for
    account numbers (`next_account_number`, taken under this row's lock) and for period closing."""

    __tablename__ = "billing_settings"
    __table_args__ = (
        CheckConstraint("credit_period_min_days >= 0 AND credit_period_min_days <= credit_period_days "
                        "AND credit_period_days <= credit_period_max_days", name="credit_period_in_range"),
        CheckConstraint("next_account_number >= 1", name="next_number_positive"),
    )

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    default_currency: Mapped[str] = mapped_column(String(3))
    multi_currency: Mapped[bool] = mapped_column(Boolean, default=False)
    # Currencies new accounts may use besides the default (which is always allowed), sorted.
    enabled_currencies: Mapped[list] = mapped_column(JSONType, default=list)
    credit_period_days: Mapped[int] = mapped_column(Integer)
    credit_period_min_days: Mapped[int] = mapped_column(Integer)
    credit_period_max_days: Mapped[int] = mapped_column(Integer)
    next_account_number: Mapped[int] = mapped_column(Integer, default=1)
    # Invoice and credit note numbers, taken under this row's lock in the posting transaction (gap-free).
    next_invoice_number: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    next_credit_note_number: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    next_subscription_number: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Accounting period settings: set once (NULL until then).
    period_frequency: Mapped[str | None] = mapped_column(String(12))
    period_start: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversionRate(Base):
    """1 `from_currency` = rate `to_currency`, from `valid_from` until the next rate of the pair."""

    __tablename__ = "conversion_rates"
    __table_args__ = (
        UniqueConstraint("workspace_id", "from_currency", "to_currency", "valid_from"),
        CheckConstraint("rate_scaled > 0", name="rate_positive"),
        CheckConstraint("from_currency <> to_currency", name="distinct_currencies"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    from_currency: Mapped[str] = mapped_column(String(3))
    to_currency: Mapped[str] = mapped_column(String(3))
    rate_scaled: Mapped[int] = mapped_column(BigInteger)  # the rate in units of 10**-12
    valid_from: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BillingAccount(Base):
    __tablename__ = "billing_accounts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        UniqueConstraint("ledger_account_id"),
        CheckConstraint("status IN ('active', 'suspended', 'terminated')", name="status_known"),
        CheckConstraint("credit_period_days >= 0", name="credit_period_not_negative"),
        # Credit control (billing.credit_control, billing.lifecycle; migration 0015).
        CheckConstraint("credit_limit IS NULL OR credit_limit >= 0", name="credit_limit_not_negative"),
        CheckConstraint("(status = 'suspended' AND suspension_reason IN ('dispute', 'credit_check')) OR "
                        "(status <> 'suspended' AND suspension_reason IS NULL)", name="suspension_reason_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    number: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    classification: Mapped[str | None] = mapped_column(String(100))
    billing_address_id: Mapped[str | None] = mapped_column(ForeignKey("customer_addresses.id"))
    credit_period_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="active")
    ledger_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Credit control: the rating gives the limit in the account's currency unless the account has its own
    # (NULL: from the rating; neither: no limit). Changed by the Change credit terms action only.
    credit_rating_id: Mapped[str | None] = mapped_column(ForeignKey("credit_ratings.id"))
    credit_limit: Mapped[int | None] = mapped_column(BigInteger)
    suspension_reason: Mapped[str | None] = mapped_column(String(20))


Index("ix_billing_accounts_customer", BillingAccount.workspace_id, BillingAccount.customer_id, BillingAccount.id)
Index("ix_billing_accounts_ws_id", BillingAccount.workspace_id, BillingAccount.id)


class AccountEntry(Base):
    """Why money moved on an account: one row per ledger transfer posted by billing.postings, with the
    conversion used when the amount came in another currency."""

    __tablename__ = "billing_account_entries"
    __table_args__ = (
        UniqueConstraint("transfer_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("direction IN ('debit', 'credit')", name="direction_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    transfer_id: Mapped[str] = mapped_column(ForeignKey("ledger_transfers.id"))
    direction: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)  # in the account's currency, minor units
    source_amount: Mapped[int | None] = mapped_column(BigInteger)
    source_currency: Mapped[str | None] = mapped_column(String(3))
    rate_id: Mapped[str | None] = mapped_column(ForeignKey("conversion_rates.id"))
    rate_scaled: Mapped[int | None] = mapped_column(BigInteger)
    rate_valid_from: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_billing_account_entries_account", AccountEntry.account_id, AccountEntry.id)


class AccountingPeriod(Base):
    """A closed accounting period [start_date, end_date] (dates in UTC; the period ends at the start of
    the day after end_date)."""

    __tablename__ = "accounting_periods"
    __table_args__ = (
        UniqueConstraint("workspace_id", "start_date"),
        CheckConstraint("end_date >= start_date", name="dates_ordered"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    accounts_closed: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(40))


class PeriodBalance(Base):
    """An account's totals at the end of a closed period: its closing balance, which is the opening
    balance of the next period. Cumulative (everything posted before the period's end), so the latest
    row alone plus what was posted since gives the balance."""

    __tablename__ = "account_period_balances"

    period_id: Mapped[str] = mapped_column(ForeignKey("accounting_periods.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    debits: Mapped[int] = mapped_column(BigInteger)
    credits: Mapped[int] = mapped_column(BigInteger)
    balance: Mapped[int] = mapped_column(BigInteger)  # debits - credits: what the customer owes


Index("ix_account_period_balances_account", PeriodBalance.account_id, PeriodBalance.period_id)

# Credit control tables: loaded with the accounts, whose credit_rating_id refers to them.
from creditdesk.billing import credit_models  # noqa: F401,E402
