"""Account assets (seed 004): physical goods an account owns, and each asset's history.

- `assets`: one row per item. `account_id` is its current owner; `ownership` is `company_sold` (bought on an
  invoice: `invoice_line_id` says which line) or `customer_owned` (imported: the customer's own item,
  registered with us, "Owned by Customer" in the seed). `status` is `active` or `returned` (back in the
  warehouse through a stock-in). The warranty end date travels with the item, unchanged, when it changes hands.
- `asset_events`: every change, append-only: acquired, imported, transferred (from and to account), returned
  (with its stock-in number), so that an item stays in the history of every account that owned it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, UTCDateTime

OWNERSHIPS = ("company_sold", "customer_owned")
ASSET_STATUSES = ("active", "returned")
EVENT_KINDS = ("acquired", "imported", "transferred", "returned")


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (
        CheckConstraint("ownership IN ('company_sold', 'customer_owned')", name="ownership_known"),
        CheckConstraint("status IN ('active', 'returned')", name="status_known"),
        # One asset per unit of a purchased line: a re-run of the posting hook makes nothing twice.
        UniqueConstraint("invoice_line_id", "unit_index"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    product_id: Mapped[str | None] = mapped_column(ForeignKey("products.id"))
    description: Mapped[str] = mapped_column(String(500))
    serial_number: Mapped[str | None] = mapped_column(String(200))
    ownership: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="active")
    warranty_ends_on: Mapped[date | None] = mapped_column(Date)
    invoice_line_id: Mapped[str | None] = mapped_column(String(40))
    unit_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_assets_account", Asset.workspace_id, Asset.account_id, Asset.id)


class AssetEvent(Base):
    __tablename__ = "asset_events"
    __table_args__ = (
        CheckConstraint("kind IN ('acquired', 'imported', 'transferred', 'returned')", name="kind_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    kind: Mapped[str] = mapped_column(String(20))
    from_account_id: Mapped[str | None] = mapped_column(ForeignKey("billing_accounts.id"))
    to_account_id: Mapped[str | None] = mapped_column(ForeignKey("billing_accounts.id"))
    stock_in_number: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(2000), default="")
    actor_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_asset_events_asset", AssetEvent.asset_id, AssetEvent.id)
Index("ix_asset_events_from", AssetEvent.workspace_id, AssetEvent.from_account_id)
