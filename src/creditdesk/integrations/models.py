"""Packs from CRM deals: the workspace's HubSpot settings, the mappings from HubSpot ids to creditdesk
objects, the webhook events received (deduplication by event id), and the review queue of deals that could
not become a pack.

- `crm_integrations`: one row per workspace and CRM (today `hubspot`): the app's client secret (the key of
  the v3 webhook signature; never shown again once stored), the deal stage that makes a pack (HubSpot's
  `closedwon` by default), an optional deal property naming the holder (a customer or office id), enabled.
- `crm_mappings`: `company` (a HubSpot company id -> a customer or office of the workspace), `product` (a
  HubSpot product id) and `sku` (a line item's SKU) -> a credit_package product of the catalogue. One row
  per (workspace, CRM, kind, external id).
- `crm_events`: every webhook event once, by its event id (HubSpot retries deliveries): what became of it.
- `crm_review_items`: one row per deal that could not become a pack (unknown company or product, mixed
  packages, a deal changed after its pack was made): open until retried with success (resolved, with the
  pack) or dismissed. The deal as received is kept, so a retry needs nothing from HubSpot.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

CRMS = ("hubspot", "import")
MAPPING_KINDS = ("company", "product", "sku")
REVIEW_STATUSES = ("open", "resolved", "dismissed")


class CrmIntegration(Base):
    __tablename__ = "crm_integrations"
    __table_args__ = (UniqueConstraint("workspace_id", "crm"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    crm: Mapped[str] = mapped_column(String(20))
    client_secret: Mapped[str | None] = mapped_column(String(200))
    won_stage: Mapped[str] = mapped_column(String(100), default="closedwon")
    holder_property: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CrmMapping(Base):
    __tablename__ = "crm_mappings"
    __table_args__ = (
        UniqueConstraint("workspace_id", "crm", "kind", "external_id"),
        CheckConstraint("kind IN ('company', 'product', 'sku')", name="kind_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    crm: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    # company: the holder (customer or office); product / sku: the credit package.
    holder_kind: Mapped[str | None] = mapped_column(String(20))
    holder_id: Mapped[str | None] = mapped_column(String(40))
    product_id: Mapped[str | None] = mapped_column(ForeignKey("products.id"))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CrmEvent(Base):
    __tablename__ = "crm_events"
    __table_args__ = (UniqueConstraint("workspace_id", "crm", "event_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    crm: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(100))
    subscription_type: Mapped[str] = mapped_column(String(100))
    deal_id: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(40))
    pack_id: Mapped[str | None] = mapped_column(String(40))
    review_item_id: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CrmReviewItem(Base):
    __tablename__ = "crm_review_items"
    __table_args__ = (
        UniqueConstraint("workspace_id", "crm", "deal_id"),
        CheckConstraint("status IN ('open', 'resolved', 'dismissed')", name="status_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    crm: Mapped[str] = mapped_column(String(20))
    deal_id: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    deal: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="open")
    pack_id: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(default=1)
    dismiss_reason: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_crm_review_items_status", CrmReviewItem.workspace_id, CrmReviewItem.status, CrmReviewItem.id)
