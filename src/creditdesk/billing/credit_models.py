"""Credit control tables (seed 004): credit ratings with a credit limit per currency, and the override
credit limit rules. The account's own columns (rating, own limit, suspension reason) are on
billing.models.BillingAccount."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

# Fund-using events the credit limit applies to (README "Credit control"); override rules name them.
SPEND_EVENTS = ("invoice_post", "purchase", "subscription_activate", "service_add", "wallet_debit",
                "credit_consume_on_account")
SUSPENSION_REASONS = ("dispute", "credit_check")


class CreditRating(Base):
    """A workspace's credit rating ("A", "B", ...): the default credit terms give each a limit per currency."""

    __tablename__ = "credit_ratings"
    __table_args__ = (UniqueConstraint("workspace_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CreditRatingLimit(Base):
    """The credit limit of a rating in one currency, in that currency's minor units. A currency without a
    row has no limit for accounts of that rating (unless an account has its own)."""

    __tablename__ = "credit_rating_limits"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_not_negative"),)

    rating_id: Mapped[str] = mapped_column(ForeignKey("credit_ratings.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    amount: Mapped[int] = mapped_column(BigInteger)


class OverrideRule(Base):
    """An override credit limit rule: for the named events, an account matching every non-empty condition
    (its classification, its credit rating, its customer's KYC profile) may go over its credit limit."""

    __tablename__ = "credit_override_rules"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    name: Mapped[str] = mapped_column(String(200))
    events: Mapped[list] = mapped_column(JSONType, default=list)
    # Conditions; an empty list means any. Classifications and KYC profiles compare case-insensitively.
    classifications: Mapped[list] = mapped_column(JSONType, default=list)
    credit_rating_ids: Mapped[list] = mapped_column(JSONType, default=list)
    kyc_profiles: Mapped[list] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_credit_ratings_ws_id", CreditRating.workspace_id, CreditRating.id)
Index("ix_credit_override_rules_ws_id", OverrideRule.workspace_id, OverrideRule.id)
