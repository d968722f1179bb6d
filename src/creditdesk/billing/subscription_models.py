"""Subscriptions and billing runs (seed 002).

- `subscriptions`: an account's subscription: number (SUB-000001 per workspace), status (draft, active,
  suspended, terminated), billing frequency (monthly, quarterly, yearly) and billing day (1-28), the day it
  was activated (`started_on`) and `billed_through`: every day before it is billed (periods bill in advance).
- `subscription_services`: its services (catalogue products of kind subscription_service), each with a
  quantity, an optional agreed unit price (else the price plan's at billing), and the days it runs:
  `start_on` to `end_on` (exclusive; None: until removed), and its own `billed_through` (a service added
  in the middle of a billed period is billed from its start on the next bill). Removing a service sets
  `end_on` and `removed_at`. The subscription's `billed_through` is the earliest day a service still has
  to bill: the billing run's "due" question.
- `billing_runs`: one row per run of `billing_runs.run` (as of a date): what it billed, for the summary.
A bill is an invoice with `subscription_id` and its period (billing.invoice_models.Invoice).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, UTCDateTime

SUBSCRIPTION_STATUSES = ("draft", "active", "suspended", "terminated")
FREQUENCIES = {"monthly": 1, "quarterly": 3, "yearly": 12}  # months per period


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        CheckConstraint("status IN ('draft', 'active', 'suspended', 'terminated')", name="status_known"),
        CheckConstraint("frequency IN ('monthly', 'quarterly', 'yearly')", name="frequency_known"),
        CheckConstraint("billing_day >= 1 AND billing_day <= 28", name="billing_day_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default="draft")
    frequency: Mapped[str] = mapped_column(String(10))
    billing_day: Mapped[int] = mapped_column(Integer)
    started_on: Mapped[date | None] = mapped_column(Date)
    billed_through: Mapped[date | None] = mapped_column(Date)
    suspended_on: Mapped[date | None] = mapped_column(Date)
    terminated_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The billing run's question: active subscriptions billed through a day before the run's date.
Index("ix_subscriptions_due", Subscription.status, Subscription.billed_through, Subscription.id)
Index("ix_subscriptions_account", Subscription.workspace_id, Subscription.account_id)


class SubscriptionService(Base):
    __tablename__ = "subscription_services"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("end_on IS NULL OR end_on >= start_on", name="ends_after_start"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int | None] = mapped_column(BigInteger)  # agreed; None: the price plan's at billing
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date | None] = mapped_column(Date)
    billed_through: Mapped[date | None] = mapped_column(Date)  # every day before it is billed; None: nothing yet
    # Usage-style: its bill lines are paid first with the customer's credits of packs covering the product.
    pay_with_credits: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_subscription_services_subscription", SubscriptionService.subscription_id)


class BillingRun(Base):
    __tablename__ = "billing_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id"))
    as_of: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="running")
    subscriptions_billed: Mapped[int] = mapped_column(Integer, default=0)
    bills: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of the bills' totals (mixed currencies: count)
    actor_id: Mapped[str | None] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
