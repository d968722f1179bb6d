"""Request and answer bodies of billing: addresses, settings, conversion rates, accounts, balances,
statements and accounting periods. Requests refuse unknown fields (parties.schemas.Input)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from creditdesk.parties.schemas import Input, Output

AddressType = Literal["billing", "postal", "office", "delivery", "other"]
AccountStatus = Literal["active", "suspended", "terminated"]
Frequency = Literal["monthly", "quarterly", "yearly"]

Country = Field(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$",
                description="ISO 3166-1 alpha-2 country code, e.g. AU.")
CurrencyCode = Field(min_length=3, max_length=3, description="ISO 4217 code, e.g. AUD.")
Days = Field(ge=0, le=3650, description="Days.")
RateText = Field(min_length=1, max_length=40, pattern=r"^[0-9]+(\.[0-9]+)?$",
                 description="A decimal string, e.g. \"1.6350\" (1 from-currency = 1.6350 to-currency); "
                             "at most 12 decimals, kept exactly.")


class AddressCreate(Input):
    type: AddressType = "billing"
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    postcode: str | None = Field(default=None, max_length=20)
    country: str = Country
    is_primary: bool = False


class AddressUpdate(Input):
    type: AddressType | None = None
    line1: str | None = Field(default=None, min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, min_length=1, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    postcode: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")
    is_primary: bool | None = None


class AddressOut(Output):
    id: str
    object: Literal["address"] = "address"
    customer_id: str
    type: str
    line1: str
    line2: str | None
    city: str
    region: str | None
    postcode: str | None
    country: str
    is_primary: bool
    created_at: datetime
    updated_at: datetime


class CreditTerms(BaseModel):
    credit_period_days: int
    min_days: int
    max_days: int


class CreditTermsIn(Input):
    credit_period_days: int = Days
    min_days: int = Days
    max_days: int = Days


class AccountingPeriodSettings(Input):
    frequency: Frequency
    start_date: date


class BillingSettingsUpdate(Input):
    default_currency: str | None = Field(default=None, min_length=3, max_length=3, description="ISO 4217 code.")
    multi_currency: bool | None = None
    enabled_currencies: list[str] | None = Field(default=None, max_length=50)
    credit_terms: CreditTermsIn | None = None
    accounting_periods: AccountingPeriodSettings | None = Field(
        default=None, description="Set once; a second attempt is refused (409 period_settings_locked).")

    @field_validator("default_currency")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise ValueError("default_currency cannot be null")
        return value


class PeriodSettingsOut(BaseModel):
    frequency: str
    start_date: date


class BillingSettingsOut(BaseModel):
    object: Literal["billing_settings"] = "billing_settings"
    configured: bool
    default_currency: str | None
    multi_currency: bool
    enabled_currencies: list[str]
    credit_terms: CreditTerms | None
    accounting_periods: PeriodSettingsOut | None


class ConversionRateCreate(Input):
    from_currency: str = CurrencyCode
    to_currency: str = CurrencyCode
    rate: str = RateText
    valid_from: date


class ConversionRateOut(BaseModel):
    id: str
    object: Literal["conversion_rate"] = "conversion_rate"
    from_currency: str
    to_currency: str
    rate: str
    valid_from: date
    created_at: datetime


class AccountCreate(Input):
    customer_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    currency: str | None = Field(default=None, min_length=3, max_length=3,
                                 description="Fixed for the account's life. Default: the workspace's default "
                                             "currency.")
    classification: str | None = Field(default=None, max_length=100)
    billing_address_id: str | None = Field(default=None, max_length=40,
                                           description="One of the customer's addresses.")
    credit_period_days: int | None = Field(default=None, ge=0, le=3650,
                                           description="Default: the default credit terms' period; must stay "
                                                       "inside their proximity range.")
    credit_rating_id: str | None = Field(default=None, max_length=40, description=(
        "A credit rating (/v1/credit-ratings) whose limit in the account's currency applies from the start, as "
        "the credit terms are set at creation from the selected rating. Masters only; later changes: "
        "POST /v1/accounts/{id}/credit-terms."))


class AccountUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    classification: str | None = Field(default=None, max_length=100)
    billing_address_id: str | None = Field(default=None, max_length=40)
    credit_period_days: int | None = Field(default=None, ge=0, le=3650)
    currency: str | None = Field(default=None, max_length=3,
                                 description="Never changes: any other value is refused (409 currency_immutable).")


class AccountOut(Output):
    id: str
    object: Literal["account"] = "account"
    number: str
    customer_id: str
    name: str
    currency: str
    classification: str | None
    billing_address_id: str | None
    credit_period_days: int
    status: str
    created_at: datetime
    updated_at: datetime
    # Credit control (billing.credit_control): set by the Change credit terms and lifecycle actions.
    suspension_reason: str | None = None
    credit_rating_id: str | None = None
    credit_limit: int | None = Field(default=None, description="The account's own limit (minor units); null: "
                                                               "the rating's.")
    effective_credit_limit: int | None = Field(default=None, description="The limit in force: the account's own, "
                                                                         "else its rating's; null: no limit.")
    credit_limit_status: Literal["exceeded", "not_exceeded"] = Field(
        default="not_exceeded", description="exceeded when the balance is over the limit in force.")


class BalanceOut(BaseModel):
    object: Literal["account_balance"] = "account_balance"
    account_id: str
    currency: str
    balance: int = Field(description="What the customer owes, in minor units (negative: in credit).")
    opening_balance: int = Field(description="At the end of the latest closed accounting period (0 if none).")
    opening_as_of: datetime | None
    debits_since: int
    credits_since: int
    outstanding: int = Field(description="Posted debits not settled and past their due date.")


class StatementLine(BaseModel):
    transfer_id: str
    posted_at: datetime
    kind: str
    reference_kind: str | None
    reference_id: str | None
    debit: int
    credit: int
    balance: int


class StatementOut(BaseModel):
    object: Literal["list"] = "list"
    account_id: str
    currency: str
    data: list[StatementLine]
    next_cursor: str | None = None


class PeriodOut(Output):
    id: str
    object: Literal["accounting_period"] = "accounting_period"
    start_date: date
    end_date: date
    accounts_closed: int
    closed_at: datetime


class CloseResult(BaseModel):
    object: Literal["period_close"] = "period_close"
    closed: PeriodOut | None = Field(description="The period closed now; null when none was due.")
