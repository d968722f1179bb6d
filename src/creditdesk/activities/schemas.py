"""Request and answer shapes of activities and activity types (activities.service). Requests refuse unknown
fields: no setting an activity's status, invoice or workspace through a body."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from creditdesk.catalog.schemas import Code
from creditdesk.parties.schemas import Input

ActivityStatus = Literal["open", "in_progress", "completed", "cancelled"]
LinkKind = Literal["subscription", "invoice", "pack"]
UnitKind = Literal["office", "team"]

ServiceProducts = Field(default=None, max_length=50, description=(
    "Products (id or code) of kind service or one_time_service, added with quantity 1 to every new "
    "activity of the type."))


class ActivityTypeCreate(Input):
    code: str = Code()
    name: str = Field(min_length=1, max_length=200)
    active: bool = True
    services: list[str] | None = ServiceProducts


class ActivityTypeUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None
    services: list[str] | None = ServiceProducts


class ServiceIn(Input):
    product: str = Field(min_length=1, max_length=100, description="A catalogue product id or code, of kind "
                                                                   "service or one_time_service.")
    quantity: Decimal = Field(default=Decimal(1), description="A positive number with at most 3 decimals.")


class ContactIn(Input):
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=320)


class LinkIn(Input):
    kind: LinkKind = Field(description="invoice and pack: must be the customer's own; subscription: stored as "
                                       "given.")
    id: str = Field(min_length=1, max_length=40)


class UnitIn(Input):
    kind: UnitKind
    id: str = Field(min_length=1, max_length=40, description="One of the workspace's own offices, or a team.")


class ActivityCreate(Input):
    customer_id: str = Field(min_length=1, max_length=40)
    type: str = Field(min_length=1, max_length=100, description="An activity type's id or code.")
    account_id: str | None = Field(default=None, max_length=40, description=(
        "The customer's account billed on completion. Default: its only active account at that time."))
    contact: ContactIn | None = Field(default=None, description="Default: the customer's name and email.")
    link: LinkIn | None = None
    details: str = Field(default="", max_length=4000)
    services: list[ServiceIn] | None = Field(default=None, max_length=100, description=(
        "The one-time services to provide. Omitted: the type's services."))
    starts_at: datetime
    estimated_completion_at: datetime | None = None
    expected_completion_at: datetime | None = None
    unit: UnitIn | None = None
    assignee_user_id: str | None = Field(default=None, max_length=40, description="An active staff user.")


class ActivityUpdate(Input):
    """Dates and assignment until the activity is completed or cancelled; contact, link, account and
    services while it is open. A field sent as null is cleared (where it may be)."""

    contact: ContactIn | None = None
    details: str | None = Field(default=None, max_length=4000)
    link: LinkIn | None = None
    account_id: str | None = Field(default=None, max_length=40)
    services: list[ServiceIn] | None = Field(default=None, max_length=100)
    starts_at: datetime | None = None
    estimated_completion_at: datetime | None = None
    expected_completion_at: datetime | None = None
    unit: UnitIn | None = None
    assignee_user_id: str | None = Field(default=None, max_length=40)


class ActivityCancel(Input):
    reason: str = Field(default="", max_length=2000)


class ActivityTypeOut(BaseModel):
    id: str
    object: Literal["activity_type"] = "activity_type"
    code: str
    name: str
    active: bool
    services: list[str] = Field(description="The products' codes.")
    created_at: datetime
    updated_at: datetime


class ServiceOut(BaseModel):
    product: str = Field(description="The product's code.")
    name: str
    quantity: str = Field(description="Exact decimal, as a string.")


class ContactOut(BaseModel):
    name: str
    phone: str | None
    email: str | None


class LinkOut(BaseModel):
    kind: LinkKind
    id: str


class UnitOut(BaseModel):
    kind: UnitKind
    id: str


class ActivityOut(BaseModel):
    id: str
    object: Literal["activity"] = "activity"
    customer_id: str
    account_id: str | None
    type: str = Field(description="The activity type's code.")
    contact: ContactOut
    link: LinkOut | None
    details: str
    services: list[ServiceOut]
    status: ActivityStatus
    overdue: bool = Field(description="Expected completion passed and neither completed nor cancelled.")
    starts_at: datetime
    estimated_completion_at: datetime | None
    expected_completion_at: datetime | None
    unit: UnitOut | None
    assignee_user_id: str | None
    invoice_id: str | None = Field(description="The invoice of its services, raised when it was completed.")
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
