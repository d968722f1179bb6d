"""Group accounts and pricing agreements (seed 004, billing.groups).

- `account_group_members`: one row per member account of a group: the parent, the member and the member's
  funding scope. An account is in at most one group (unique member_id); the service also refuses an account
  that is a parent as a member and a member as a parent.
- `account_pricing_agreements`: an account's own price plan (at most one per account, same currency).

Both live in their own tables, not on billing_accounts, so the account row and its schema stay as they are.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

FUNDING_SCOPES = ("full", "partial")


class GroupMember(Base):
    """A member account of a parent account's group, with what the parent funds: everything (`full`), or
    (`partial`) the products named by code, and every product of the named product types and families."""

    __tablename__ = "account_group_members"
    __table_args__ = (
        UniqueConstraint("member_id"),
        CheckConstraint("funding_scope IN ('full', 'partial')", name="funding_scope_known"),
        CheckConstraint("parent_id <> member_id", name="not_own_member"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    parent_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    member_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    funding_scope: Mapped[str] = mapped_column(String(10))
    # Codes, sorted; empty lists for a full scope.
    funded_products: Mapped[list] = mapped_column(JSONType, default=list)
    funded_product_types: Mapped[list] = mapped_column(JSONType, default=list)
    funded_product_families: Mapped[list] = mapped_column(JSONType, default=list)
    # True while the member is suspended because its parent was: reactivating the parent reactivates only these.
    suspended_with_parent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_account_group_members_parent", GroupMember.workspace_id, GroupMember.parent_id, GroupMember.id)


class PricingAgreement(Base):
    """An account's own price plan: its invoices take prices from it (and its group's members' invoices)."""

    __tablename__ = "account_pricing_agreements"

    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    price_plan_id: Mapped[str] = mapped_column(ForeignKey("price_plans.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
