"""Request and answer bodies of group accounts and pricing agreements (billing.groups)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from creditdesk.parties.schemas import Input, Output

Code = Annotated[str, Field(min_length=1, max_length=100)]
Codes = list[Code]


class FundingScopeIn(Input):
    scope: Literal["full", "partial"] = Field(description="full: the parent pays every charge of the member; "
                                                          "partial: only the charges of the products named here.")
    products: Codes = Field(default_factory=list, max_length=200, description="Product codes (partial only).")
    product_types: Codes = Field(default_factory=list, max_length=200,
                                 description="Product type codes: every product of the type (partial only).")
    product_families: Codes = Field(default_factory=list, max_length=200,
                                    description="Product family codes: every product of the family (partial only).")


class MemberAdd(Input):
    member_id: str = Field(min_length=1, max_length=40, description="The account to add as a member.")
    funding: FundingScopeIn


class FundingScopeOut(BaseModel):
    scope: str
    products: list[str]
    product_types: list[str]
    product_families: list[str]


class MemberOut(Output):
    id: str
    object: Literal["group_member"] = "group_member"
    parent_id: str
    member_id: str
    member_number: str
    member_name: str
    member_status: str
    funding: FundingScopeOut
    created_at: datetime


class GroupOut(BaseModel):
    """An account's place in groups: its parent (when a member) and its members (when a parent)."""

    object: Literal["account_group"] = "account_group"
    account_id: str
    parent_id: str | None
    funding: FundingScopeOut | None = Field(description="What the parent funds, when the account is a member.")
    members: list[MemberOut]


class PricingAgreementIn(Input):
    price_plan_id: str | None = Field(max_length=40, description="A price plan in the account's currency; "
                                                                 "null clears the agreement.")


class PricingAgreementOut(BaseModel):
    object: Literal["pricing_agreement"] = "pricing_agreement"
    account_id: str
    price_plan_id: str | None = Field(description="The account's own price plan (null: none).")
    effective_price_plan_id: str | None = Field(
        description="The plan its invoices take prices from: the parent's agreement for a member of a group "
                    "whose parent has one, else the account's own; null: the currency's default plan.")
    source: Literal["own", "parent", "none"]
