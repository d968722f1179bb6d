"""Request and response bodies of the catalogue. Requests refuse unknown fields (`Input`): codes, kinds and
currencies cannot be changed by sending them to PATCH, they are simply not fields of an update."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from creditdesk.parties.schemas import Input, Output

ProductKind = Literal["physical_good", "service", "one_time_service", "credit_package", "subscription_service"]
ExpiryPolicyKind = Literal["none", "fixed_date", "months_after_purchase"]

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"


def Code(**kw):  # noqa: N802  (a Field factory)
    return Field(min_length=1, max_length=100, pattern=CODE_PATTERN,
                 description="Letters, digits and _ . : -; unique in the workspace and never changed.", **kw)


def Name(**kw):  # noqa: N802
    return Field(min_length=1, max_length=200, **kw)


def RefCode(**kw):  # noqa: N802  (a reference to another object by its code)
    return Field(min_length=1, max_length=100, **kw)


# --- product types and families, tax classes ---

class ProductTypeCreate(Input):
    code: str = Code()
    name: str = Name()
    kind: ProductKind
    active: bool = True


class ProductTypeUpdate(Input):
    name: str | None = Name(default=None)
    active: bool | None = None


class ProductTypeOut(Output):
    id: str
    object: Literal["product_type"] = "product_type"
    code: str
    name: str
    kind: str
    active: bool
    created_at: datetime
    updated_at: datetime


class ProductFamilyCreate(Input):
    code: str = Code()
    name: str = Name()
    active: bool = True


class ProductFamilyUpdate(Input):
    name: str | None = Name(default=None)
    active: bool | None = None


class ProductFamilyOut(Output):
    id: str
    object: Literal["product_family"] = "product_family"
    code: str
    name: str
    active: bool
    created_at: datetime
    updated_at: datetime


class TaxClassCreate(Input):
    code: str = Code()
    name: str = Name()


class TaxClassUpdate(Input):
    name: str | None = Name(default=None)


class TaxClassOut(Output):
    id: str
    object: Literal["tax_class"] = "tax_class"
    code: str
    name: str
    created_at: datetime
    updated_at: datetime


# --- tax rates ---

class TaxRateCreate(Input):
    tax_class: str = RefCode(description="The tax class's code.")
    rate_bp: int = Field(ge=0, le=100_000, description="Basis points: 1000 = 10 %.")
    inclusive: bool = Field(default=False, description="Prices of this class include the tax (true) or the tax "
                                                       "is added on top (false).")
    valid_from: date = Field(description="In force from this day until the next rate's valid_from.")


class TaxRateUpdate(Input):
    rate_bp: int | None = Field(default=None, ge=0, le=100_000)
    inclusive: bool | None = None


class TaxRateOut(BaseModel):
    id: str
    object: Literal["tax_rate"] = "tax_rate"
    tax_class: str
    rate_bp: int
    inclusive: bool
    valid_from: date
    created_at: datetime
    updated_at: datetime


# --- products ---

class ExpiryPolicy(Input):
    """How the pack a credit package creates expires: never; on the next `month`/`day` after the purchase
    (31 Dec: bought on 1 Mar 2027 -> 31 Dec 2027, bought on 31 Dec 2027 -> 31 Dec 2028); or `months` months
    after the purchase."""

    kind: ExpiryPolicyKind
    month: int | None = Field(default=None, ge=1, le=12)
    day: int | None = Field(default=None, ge=1, le=31)
    months: int | None = Field(default=None, ge=1, le=600)


class CreditPackageIn(Input):
    credit_type: str = RefCode(description="Code of one of the workspace's credit types (GET /v1/credit-types).")
    credit_quantity: int = Field(gt=0, le=10**15, description="Credits the package gives, in the credit type's "
                                                               "smallest unit (hours at scale 2: 1000 = 10 hours).")
    applicable_product_codes: list[str] = Field(min_length=1, max_length=200,
                                                description="Codes of the products the credits pay for.")
    expiry: ExpiryPolicy

    @field_validator("applicable_product_codes")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not code or len(code) > 100:
                raise ValueError("product codes are 1 to 100 characters")
        return sorted(set(value))


class ProductCreate(Input):
    code: str = Code()
    name: str = Name()
    description: str = Field(default="", max_length=10_000)
    kind: ProductKind | None = Field(default=None, description="Defaults to the type's kind; required without "
                                                                "a type; must equal the type's kind.")
    type: str | None = RefCode(default=None, description="A product type's code.")
    family: str | None = RefCode(default=None, description="A product family's code.")
    unit: str = Field(min_length=1, max_length=40, description="What one is: hour, message, each...")
    tax_class: str | None = RefCode(default=None, description="A tax class's code; none: not taxed.")
    active: bool = True
    credit_package: CreditPackageIn | None = Field(default=None, description="Required for kind credit_package, "
                                                                             "refused for other kinds.")
    warranty_months: int | None = Field(default=None, ge=1, le=600, description=(
        "Physical goods only: the warranty of an item bought on an invoice, in months from the day the invoice is "
        "posted (the asset's warranty_ends_on)."))


class ProductUpdate(Input):
    """Code and kind never change. `type`, `family` and `tax_class` may be set to null to clear them."""

    name: str | None = Name(default=None)
    description: str | None = Field(default=None, max_length=10_000)
    type: str | None = RefCode(default=None)
    family: str | None = RefCode(default=None)
    unit: str | None = Field(default=None, min_length=1, max_length=40)
    tax_class: str | None = RefCode(default=None)
    active: bool | None = None
    credit_package: CreditPackageIn | None = None
    warranty_months: int | None = Field(default=None, ge=1, le=600, description="null clears it.")


class CreditPackageOut(BaseModel):
    credit_type: str
    credit_quantity: int
    applicable_product_codes: list[str]
    expiry: dict


class ProductOut(BaseModel):
    id: str
    object: Literal["product"] = "product"
    code: str
    name: str
    description: str
    kind: str
    type: str | None
    family: str | None
    unit: str
    tax_class: str | None
    active: bool
    credit_package: CreditPackageOut | None
    warranty_months: int | None = None
    created_at: datetime
    updated_at: datetime


# --- price plans and prices ---

class PricePlanCreate(Input):
    code: str = Code()
    name: str = Name()
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217; never changes.")
    is_default: bool = Field(default=False, description="The plan used for this currency when none is named (one "
                                                        "per currency; making a plan default unsets the other).")
    active: bool = True


class PricePlanUpdate(Input):
    name: str | None = Name(default=None)
    is_default: bool | None = None
    active: bool | None = None


class PricePlanOut(Output):
    id: str
    object: Literal["price_plan"] = "price_plan"
    code: str
    name: str
    currency: str
    is_default: bool
    active: bool
    created_at: datetime
    updated_at: datetime


class PriceSet(Input):
    product: str = Field(min_length=1, max_length=100, description="The product's id or code.")
    unit_price: int = Field(ge=0, le=10**15, description="In the plan currency's minor units (1250 = 12.50 AUD).")


class PriceOut(BaseModel):
    id: str
    object: Literal["price"] = "price"
    price_plan_id: str
    product_id: str
    product_code: str
    currency: str
    unit_price: int
    created_at: datetime
    updated_at: datetime
