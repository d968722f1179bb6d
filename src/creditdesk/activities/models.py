"""Activities (seed 002): work scheduled for a customer (an installation, a repair, a visit).

- `activity_types`: the workspace's own kinds of activity (code, name); a type may list one-time service
  products of the catalogue (`service_product_ids`) that are added to a new activity of the type.
- `activities`: one scheduled activity: the customer and the contact to reach, its type, an optional link to
  another object of the same customer (`link_kind` + `link_id`), the key dates, the assignment (a unit of
  the workspace, an office or a team, and/or a user), and its status: open -> in_progress -> completed, or
  cancelled from open or in_progress. Completing it bills its services on `invoice_id`.
- `activity_services`: the one-time services provided during the activity, with their quantity
  (thousandths, as invoice lines count them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

STATUSES = ("open", "in_progress", "completed", "cancelled")
LINK_KINDS = ("subscription", "invoice", "pack")
UNIT_KINDS = ("office", "team")


class ActivityType(Base):
    __tablename__ = "activity_types"
    __table_args__ = (UniqueConstraint("workspace_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Product ids (one-time services), in order: each added with quantity 1 to a new activity of the type.
    service_product_ids: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Activity(Base):
    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'in_progress', 'completed', 'cancelled')", name="status_known"),
        CheckConstraint("(link_kind IS NULL AND link_id IS NULL) OR "
                        "(link_kind IN ('subscription', 'invoice', 'pack') AND link_id IS NOT NULL)",
                        name="link_known"),
        CheckConstraint("(unit_kind IS NULL AND unit_id IS NULL) OR "
                        "(unit_kind IN ('office', 'team') AND unit_id IS NOT NULL)", name="unit_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    # The account billed on completion; none: the customer's only active account at that time.
    account_id: Mapped[str | None] = mapped_column(ForeignKey("billing_accounts.id"))
    type_id: Mapped[str] = mapped_column(ForeignKey("activity_types.id"))
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_phone: Mapped[str | None] = mapped_column(String(50))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    link_kind: Mapped[str | None] = mapped_column(String(20))
    link_id: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[str] = mapped_column(String(4000), default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    estimated_completion_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expected_completion_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unit_kind: Mapped[str | None] = mapped_column(String(10))
    unit_id: Mapped[str | None] = mapped_column(String(40))
    assignee_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(2000))
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_activities_customer", Activity.workspace_id, Activity.customer_id, Activity.id)
Index("ix_activities_status", Activity.workspace_id, Activity.status, Activity.id)
Index("ix_activities_assignee", Activity.workspace_id, Activity.assignee_user_id, Activity.id)


class ActivityService(Base):
    __tablename__ = "activity_services"
    __table_args__ = (
        CheckConstraint("quantity_milli > 0", name="quantity_positive"),
        UniqueConstraint("activity_id", "position"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    quantity_milli: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
