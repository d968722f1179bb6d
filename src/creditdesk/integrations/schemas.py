"""Request and answer shapes of packs from CRM deals (integrations.deals, integrations.hubspot).

A deal, wherever it comes from (a HubSpot webhook, the CSV/JSON import), is a `DealIn`: its id in the CRM,
stage, amount and currency, close date, the HubSpot company it is for (or a holder named directly), its
properties and its line items (HubSpot product id or SKU, quantity). README "Packs from CRM deals".
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from creditdesk.parties.schemas import Input

MappingKind = Literal["company", "product", "sku"]
Crm = Field(default="import", pattern=r"^[a-z][a-z0-9_]{0,19}$",
            description="Which CRM the deal is from: its packs' external_ref is `<crm>:deal:<id>`. `hubspot` "
                        "for HubSpot deals (an import of a deal the webhook also sends makes one pack).")


class HolderIn(Input):
    kind: Literal["customer", "office"]
    id: str = Field(min_length=1, max_length=40)


class HubspotSettingsIn(Input):
    client_secret: str | None = Field(default=None, min_length=8, max_length=200, description=(
        "The HubSpot app's client secret (the key of the v3 signature). Write-only: never shown again. "
        "Required the first time; omitted, the stored one is kept."))
    won_stage: str = Field(default="closedwon", min_length=1, max_length=100,
                           description="The deal stage (internal value) that makes a pack.")
    holder_property: str | None = Field(default=None, min_length=1, max_length=100, description=(
        "A deal property whose value is a customer or office id of this workspace: the pack's holder, "
        "before the company mappings."))
    enabled: bool = True


class HubspotSettingsOut(BaseModel):
    object: Literal["hubspot_settings"] = "hubspot_settings"
    configured: bool
    client_secret_set: bool
    won_stage: str
    holder_property: str | None
    enabled: bool
    webhook_path: str = Field(description="Where HubSpot posts: this path on the server's public URL.")
    updated_at: datetime | None


class MappingCreate(Input):
    kind: MappingKind = Field(description="company: a HubSpot company id -> a customer or office; product: a "
                                          "HubSpot product id, sku: a line item's SKU -> a credit package.")
    external_id: str = Field(min_length=1, max_length=200)
    holder: HolderIn | None = Field(default=None, description="For a company mapping.")
    product: str | None = Field(default=None, min_length=1, max_length=100,
                                description="For a product or sku mapping: a credit_package product id or code.")
    note: str = Field(default="", max_length=500)


class MappingUpdate(Input):
    holder: HolderIn | None = None
    product: str | None = Field(default=None, min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=500)


class MappingOut(BaseModel):
    id: str
    object: Literal["crm_mapping"] = "crm_mapping"
    crm: str
    kind: str
    external_id: str
    holder: dict | None
    product: str | None = Field(description="The credit package's code.")
    note: str
    created_at: datetime
    updated_at: datetime


class LineItemIn(Input):
    id: str | None = Field(default=None, max_length=100)
    product_id: str | None = Field(default=None, max_length=200, description="HubSpot's hs_product_id.")
    sku: str | None = Field(default=None, max_length=200)
    quantity: int = Field(default=1, ge=1, le=1_000_000)

    @field_validator("product_id", "sku", "id", mode="before")
    @classmethod
    def _text(cls, value):
        return None if value in (None, "") else str(value)

    @field_validator("quantity", mode="before")
    @classmethod
    def _whole(cls, value):
        # HubSpot sends numbers as strings ("2", "2.0"); a fraction of a package is not a package.
        if isinstance(value, str):
            number = float(value) if value.strip() else 1
            if number != int(number):
                raise ValueError("a line item's quantity is a whole number of packages")
            return int(number)
        return value


class DealIn(Input):
    crm: str = Crm
    id: str = Field(min_length=1, max_length=100, description="The deal's id in the CRM.")
    name: str | None = Field(default=None, max_length=200)
    stage: str | None = Field(default=None, max_length=100)
    amount: str | None = Field(default=None, max_length=40, description="In major units: \"1200.00\".")
    currency: str | None = Field(default=None, max_length=3)
    closed_at: datetime | None = Field(default=None, description="The purchase date of the pack (expiry from it).")
    company_id: str | None = Field(default=None, max_length=200, description="The HubSpot company (mapped).")
    holder: HolderIn | None = Field(default=None, description="The holder named directly (imports).")
    properties: dict[str, str | None] = Field(default_factory=dict, max_length=200)
    line_items: list[LineItemIn] = Field(default_factory=list, max_length=200)

    @field_validator("id", "company_id", "amount", mode="before")
    @classmethod
    def _text(cls, value):
        return None if value in (None, "") else str(value)


class DealImport(Input):
    deals: list[DealIn] | None = Field(default=None, max_length=1000)
    csv: str | None = Field(default=None, max_length=5_000_000, description=(
        "Or the deals as CSV text, one line item per row (deals with several line items repeat their id): "
        "crm, deal_id, name, amount, currency, closed_at, company_id, holder_kind, holder_id, product_id, "
        "sku, quantity."))


class DealOutcomeOut(BaseModel):
    object: Literal["deal_outcome"] = "deal_outcome"
    crm: str
    deal_id: str | None
    external_ref: str | None
    event_id: str | None = Field(default=None, description="The webhook event (webhooks).")
    outcome: Literal["pack_created", "pack_exists", "review", "ignored", "duplicate_event", "error"]
    pack_id: str | None = None
    review_item_id: str | None = None
    reason: str | None = None
    message: str | None = None
    line: int | None = Field(default=None, description="The CSV line (imports).")


class DealImportOut(BaseModel):
    object: Literal["deal_import"] = "deal_import"
    created: int
    existing: int
    review: int
    errors: int
    deals: list[DealOutcomeOut]


class WebhookOut(BaseModel):
    object: Literal["hubspot_webhook"] = "hubspot_webhook"
    events: list[DealOutcomeOut]


class ReviewItemOut(BaseModel):
    id: str
    object: Literal["crm_review_item"] = "crm_review_item"
    crm: str
    deal_id: str
    external_ref: str
    reason: str
    message: str
    status: Literal["open", "resolved", "dismissed"]
    pack_id: str | None
    attempts: int
    dismiss_reason: str | None
    deal: dict
    created_at: datetime
    updated_at: datetime


class DismissIn(Input):
    reason: str = Field(min_length=1, max_length=2000)
