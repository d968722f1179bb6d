"""Request and answer shapes of account assets (billing.assets)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from creditdesk.parties.schemas import Input

AssetIds = Field(min_length=1, max_length=200, description="One or more assets, moved together.")


class AssetImport(Input):
    account_id: str = Field(min_length=1, max_length=40)
    description: str = Field(min_length=1, max_length=500)
    serial_number: str | None = Field(default=None, max_length=200)
    product: str | None = Field(default=None, max_length=100, description="A catalogue product id or code.")
    warranty_ends_on: date | None = None
    note: str = Field(default="", max_length=2000)


class AssetTransfer(Input):
    asset_ids: list[str] = AssetIds
    to_account_id: str = Field(min_length=1, max_length=40)
    note: str = Field(default="", max_length=2000)


class AssetReturn(Input):
    asset_ids: list[str] = AssetIds
    note: str = Field(default="", max_length=2000)


class AssetEventOut(BaseModel):
    id: str
    kind: Literal["acquired", "imported", "transferred", "returned"]
    from_account_id: str | None
    to_account_id: str | None
    stock_in_number: str | None
    note: str
    actor_id: str | None
    created_at: datetime


class AssetOut(BaseModel):
    id: str
    object: Literal["asset"] = "asset"
    account_id: str
    product: str | None = Field(description="The product's code.")
    description: str
    serial_number: str | None
    ownership: Literal["company_sold", "customer_owned"]
    status: Literal["active", "returned"]
    warranty_ends_on: date | None
    invoice_line_id: str | None
    created_at: datetime
    updated_at: datetime
    history: list[AssetEventOut] | None = Field(default=None, description="With GET /v1/assets/{id} only.")
