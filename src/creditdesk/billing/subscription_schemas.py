"""Request and answer bodies of subscriptions, bills and billing runs (billing.subscriptions, billing_runs)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from creditdesk.parties.schemas import Input

Frequency = Literal["monthly", "quarterly", "yearly"]


class ServiceIn(Input):
    product: str = Field(min_length=1, max_length=100, description="A subscription_service product (id or code).")
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    unit_price: int | None = Field(default=None, ge=0, le=10**15, description=(
        "An agreed price per period, minor units; omitted: the price plan's when billed (the account's pricing "
        "agreement, else the currency's default plan)."))
    start_on: date | None = Field(default=None, description="Default: the subscription's start (or today once "
                                                            "it is active).")
    pay_with_credits: bool = Field(default=False, description=(
        "Usage-style: each bill line of the service is paid first with the customer's credits from packs covering "
        "the product (one credit per unit), as far as they go; the rest is billed."))


class SubscriptionCreate(Input):
    account_id: str = Field(min_length=1, max_length=40)
    name: str = Field(default="", max_length=200)
    frequency: Frequency = "monthly"
    billing_day: int = Field(default=1, ge=1, le=28, description="Periods start on this day of the month.")
    services: list[ServiceIn] = Field(default_factory=list, max_length=100)
    activate_on: date | None = Field(default=None, description="Activate at once from this day (a fund-using "
                                                               "event); omitted: the subscription stays a draft.")


class Activate(Input):
    on: date | None = Field(default=None, description="Default: today.")


class ServiceRemove(Input):
    service_id: str = Field(min_length=1, max_length=40)
    action: Literal["remove"] = Field(default="remove", description="The seed's action type: Remove Service.")
    effective_on: date | None = Field(default=None, description=(
        "The first day without the service (default: today; a day before the service starts: it never runs). "
        "A day inside a period already billed is taken: the days billed from it on are credited at once, by a "
        "credit note on each bill concerned (the line's amount x the days not used / the days it billed, rounded "
        "half up once), in the same transaction."))


class QuantityChange(Input):
    service_id: str = Field(min_length=1, max_length=40)
    quantity: int = Field(ge=1, le=1_000_000)


class DatedAction(Input):
    on: date | None = Field(default=None, description="Default: today.")
    note: str = Field(default="", max_length=500)


class BillAsOf(Input):
    as_of: date = Field(description="Bill everything due for the subscription up to this day (periods bill in "
                                    "advance: a period that has started is due).")


class ServiceOut(BaseModel):
    id: str
    product_id: str
    product_code: str
    name: str
    quantity: int
    unit_price: int | None
    start_on: date
    end_on: date | None
    pay_with_credits: bool = False
    removed_at: datetime | None
    price: int | None = Field(default=None, description=(
        "The price per period of one unit, as billed now, in the account's currency (minor units): the agreed "
        "`unit_price`, else the price plan's (the account's pricing agreement, else the currency's default plan); "
        "null when no plan prices it (billing it would be refused: no_price)."))
    price_source: Literal["agreed", "price_plan"] | None = Field(default=None, description=(
        "Where `price` comes from."))
    price_plan_id: str | None = Field(default=None, description="The price plan `price` comes from, if any.")


class SubscriptionOut(BaseModel):
    id: str
    object: Literal["subscription"] = "subscription"
    number: str
    name: str
    account_id: str
    customer_id: str
    status: Literal["draft", "active", "suspended", "terminated"]
    frequency: Frequency
    billing_day: int
    started_on: date | None
    billed_through: date | None
    next_bill_on: date | None = Field(description="The day the next period starts (it is due then).")
    suspended_on: date | None
    terminated_on: date | None
    services: list[ServiceOut]
    created_at: datetime
    updated_at: datetime


class BillLineOut(BaseModel):
    product_code: str
    description: str
    quantity: int
    unit_price: int
    period_start: date
    period_end: date
    days: int
    period_days: int


class BillPreviewOut(BaseModel):
    object: Literal["bill_preview"] = "bill_preview"
    subscription_id: str
    as_of: date
    period_start: date | None
    period_end: date | None
    currency: str
    lines: list[dict] = Field(description="The invoice lines the bill would have, priced and taxed.")
    subtotal: int
    tax_total: int
    total: int
    nothing_due: bool


class BillingRunIn(Input):
    as_of: date


class BillingRunOut(BaseModel):
    id: str
    object: Literal["billing_run"] = "billing_run"
    as_of: date
    status: str
    subscriptions_billed: int
    bills: int
    refused: int
    started_at: datetime
    finished_at: datetime | None
