"""The catalogue: product types and families, products, tax classes and rates, price plans and prices.

Every row carries its workspace. Codes are unique per workspace and never change (they are how packs,
invoices and API callers name things), so nothing has to follow a renamed code.

Product kinds are fixed (PRODUCT_KINDS): they decide behaviour (a credit package creates a pack when
sold, a subscription service is billed per period...). Product *types* are the workspace's own labels
("Consulting hours", "SMS bundles"), each of one kind; a product of a type has that type's kind.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

PRODUCT_KINDS = ("physical_good", "service", "one_time_service", "credit_package", "subscription_service")
EXPIRY_POLICIES = ("none", "fixed_date", "months_after_purchase")

_KIND_IN = "kind IN (" + ", ".join(f"'{k}'" for k in PRODUCT_KINDS) + ")"
_POLICY_IN = "expiry_policy IN (" + ", ".join(f"'{p}'" for p in EXPIRY_POLICIES) + ")"


class ProductType(Base):
    __tablename__ = "product_types"
    __table_args__ = (
        UniqueConstraint("workspace_id", "code"),
        CheckConstraint(_KIND_IN, name="kind_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProductFamily(Base):
    __tablename__ = "product_families"
    __table_args__ = (UniqueConstraint("workspace_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TaxClass(Base):
    __tablename__ = "tax_classes"
    __table_args__ = (UniqueConstraint("workspace_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TaxRate(Base):
    """One rate of a tax class from `valid_from` on; the rate in force on a day is the one with the latest
    valid_from on or before it."""

    __tablename__ = "tax_rates"
    __table_args__ = (
        UniqueConstraint("tax_class_id", "valid_from"),
        CheckConstraint("rate_bp >= 0 AND rate_bp <= 100000", name="rate_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    tax_class_id: Mapped[str] = mapped_column(ForeignKey("tax_classes.id"))
    # Basis points: 1000 = 10 %.
    rate_bp: Mapped[int] = mapped_column(Integer)
    # True: prices of this class include the tax (gross); false: the tax is added on top (net prices).
    inclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_from: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_tax_rates_ws_id", TaxRate.workspace_id, TaxRate.id)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("workspace_id", "code"),
        CheckConstraint(_KIND_IN, name="kind_known"),
        # A credit package names its credits and how they expire; no other kind carries these fields.
        CheckConstraint(
            "(kind = 'credit_package' AND credit_type_id IS NOT NULL AND credit_quantity > 0 "
            "AND expiry_policy IS NOT NULL) OR (kind <> 'credit_package' AND credit_type_id IS NULL "
            "AND credit_quantity IS NULL AND expiry_policy IS NULL)", name="credit_package_fields"),
        CheckConstraint(f"expiry_policy IS NULL OR {_POLICY_IN}", name="expiry_policy_known"),
        CheckConstraint(
            "(expiry_policy = 'fixed_date' AND expiry_month BETWEEN 1 AND 12 AND expiry_day BETWEEN 1 AND 31) "
            "OR ((expiry_policy IS NULL OR expiry_policy <> 'fixed_date') AND expiry_month IS NULL "
            "AND expiry_day IS NULL)", name="expiry_fixed_date"),
        CheckConstraint(
            "(expiry_policy = 'months_after_purchase' AND expiry_months BETWEEN 1 AND 600) "
            "OR ((expiry_policy IS NULL OR expiry_policy <> 'months_after_purchase') AND expiry_months IS NULL)",
            name="expiry_months_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(30))
    product_type_id: Mapped[str | None] = mapped_column(ForeignKey("product_types.id"))
    product_family_id: Mapped[str | None] = mapped_column(ForeignKey("product_families.id"))
    unit: Mapped[str] = mapped_column(String(40))
    # No tax class: the product is not taxed.
    tax_class_id: Mapped[str | None] = mapped_column(ForeignKey("tax_classes.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Credit packages only (see the check constraint).
    credit_type_id: Mapped[str | None] = mapped_column(ForeignKey("credit_types.id"))
    credit_quantity: Mapped[int | None] = mapped_column(BigInteger)
    # Codes of the products the credits pay for (codes never change); becomes the pack's product_codes.
    applicable_product_codes: Mapped[list | None] = mapped_column(JSONType)
    expiry_policy: Mapped[str | None] = mapped_column(String(30))
    expiry_month: Mapped[int | None] = mapped_column(Integer)
    expiry_day: Mapped[int | None] = mapped_column(Integer)
    expiry_months: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Physical goods: the warranty an item bought on an invoice gets, in months from the day it is posted
    # (billing.assets); None: no warranty.
    warranty_months: Mapped[int | None] = mapped_column(Integer)


Index("ix_products_ws_id", Product.workspace_id, Product.id)
Index("ix_products_ws_kind", Product.workspace_id, Product.kind, Product.id)


class PricePlan(Base):
    __tablename__ = "price_plans"
    __table_args__ = (UniqueConstraint("workspace_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    # ISO 4217, fixed at creation: prices are integers in its minor units.
    currency: Mapped[str] = mapped_column(String(3))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# At most one default plan per currency per workspace, whatever races the service's own check loses.
Index("uq_price_plans_one_default", PricePlan.workspace_id, PricePlan.currency, unique=True,
      sqlite_where=text("is_default"), postgresql_where=text("is_default"))


class Price(Base):
    __tablename__ = "prices"
    __table_args__ = (
        UniqueConstraint("price_plan_id", "product_id"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    price_plan_id: Mapped[str] = mapped_column(ForeignKey("price_plans.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    # In the plan currency's minor units.
    unit_price: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
