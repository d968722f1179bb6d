"""Low-balance thresholds and their crossings (credits.low_balance).

- `balance_thresholds`: per workspace, credit type and holder (`holder_kind`/`holder_id`; `any`/`*` is the
  workspace default for every holder without one of its own): the threshold in the type's smallest unit, and an
  optional top-up (a credit package product, how many).
- `balance_crossings`: one row per crossing (a consumption that took a holder's balance from at or above the
  threshold to below it), with the balances, and the top-up invoice when one was made. Append-only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, UTCDateTime


class BalanceThreshold(Base):
    __tablename__ = "balance_thresholds"
    __table_args__ = (
        UniqueConstraint("workspace_id", "credit_type_id", "holder_kind", "holder_id"),
        CheckConstraint("threshold > 0", name="threshold_positive"),
        CheckConstraint("top_up_count >= 1 AND top_up_count <= 100", name="top_up_count_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id"))
    holder_kind: Mapped[str] = mapped_column(String(20))  # office, user, customer, workspace; "any": the default
    holder_id: Mapped[str] = mapped_column(String(40))  # "*" for the default
    threshold: Mapped[int] = mapped_column(BigInteger)
    top_up_product_id: Mapped[str | None] = mapped_column(ForeignKey("products.id"))
    top_up_count: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BalanceCrossing(Base):
    __tablename__ = "balance_crossings"
    __table_args__ = (UniqueConstraint("consumption_id", "holder_kind", "holder_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    threshold_id: Mapped[str] = mapped_column(ForeignKey("balance_thresholds.id"))
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id"))
    holder_kind: Mapped[str] = mapped_column(String(20))
    holder_id: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[int] = mapped_column(BigInteger)
    balance_before: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    consumption_id: Mapped[str] = mapped_column(String(40))
    top_up_invoice_id: Mapped[str | None] = mapped_column(String(40))
    top_up_note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_balance_crossings_holder", BalanceCrossing.workspace_id, BalanceCrossing.holder_kind,
      BalanceCrossing.holder_id, BalanceCrossing.id)
