"""Catalogue demo data: product types and families, a GST tax class, products of every kind (an SMS bundle
and an hours pack as credit packages) and default AUD and EUR price plans, through the catalogue services."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk.audit import Actor
from creditdesk.catalog import schemas as s
from creditdesk.catalog import service as catalog
from creditdesk.catalog.models import Product
from creditdesk.credits.models import CreditType

TYPES = [("consulting", "Consulting hours", "service"), ("sms-bundles", "SMS bundles", "credit_package"),
         ("hour-packs", "Prepaid hours", "credit_package"), ("support-plans", "Support plans", "subscription_service"),
         ("setup", "Set-up work", "one_time_service"), ("hardware", "Hardware", "physical_good")]
FAMILIES = [("professional-services", "Professional services"), ("messaging", "Messaging"), ("devices", "Devices")]
# code, name, type, family, unit, price in AUD cents, price in EUR cents
PRODUCTS = [
    ("consulting-hour", "Consulting hour", "consulting", "professional-services", "hour", 18000, 11000),
    ("copywriting", "Copywriting", "consulting", "professional-services", "hour", 12000, 7500),
    ("translation", "Translation", "consulting", "professional-services", "hour", 11000, 7000),
    ("sms-message", "SMS message", None, "messaging", "message", 9, 6),
    ("onboarding", "Onboarding workshop", "setup", "professional-services", "each", 95000, 59000),
    ("support-monthly", "Monthly support", "support-plans", "professional-services", "month", 49900, 31000),
    ("sms-modem", "USB SMS modem", "hardware", "devices", "each", 14900, 9200),
]
# code, name, type, credit type, quantity (smallest unit), pays for, expiry, AUD, EUR
PACKAGES = [
    ("sms-bundle-500", "SMS bundle 500", "sms-bundles", "sms", 500, ["sms-message"],
     {"kind": "fixed_date", "month": 12, "day": 31}, 3500, 2200),
    ("hours-pack-10", "10 consulting hours", "hour-packs", "hours", 1000, ["consulting-hour", "copywriting", "translation"],
     {"kind": "months_after_purchase", "months": 12}, 165000, 99000),
]


def has_catalogue(session: Session, workspace_id: str) -> bool:
    return session.scalar(select(Product.id).where(Product.workspace_id == workspace_id).limit(1)) is not None


def create_catalogue_demo(session: Session, *, actor: Actor) -> None:
    for code, name, kind in TYPES:
        catalog.create_product_type(session, s.ProductTypeCreate(code=code, name=name, kind=kind), actor=actor)
    for code, name in FAMILIES:
        catalog.create_product_family(session, s.ProductFamilyCreate(code=code, name=name), actor=actor)
    catalog.create_tax_class(session, s.TaxClassCreate(code="gst", name="GST"), actor=actor)
    catalog.create_tax_rate(session, s.TaxRateCreate(tax_class="gst", rate_bp=1000, inclusive=False,
                                                     valid_from=date(2000, 7, 1)), actor=actor)
    aud = catalog.create_price_plan(session, s.PricePlanCreate(code="aud-standard", name="Standard AUD",
                                                               currency="AUD", is_default=True), actor=actor)
    eur = catalog.create_price_plan(session, s.PricePlanCreate(code="eur-standard", name="Standard EUR",
                                                               currency="EUR", is_default=True), actor=actor)
    prices = []
    for code, name, type_code, family, unit, aud_price, eur_price in PRODUCTS:
        catalog.create_product(session, s.ProductCreate(code=code, name=name, type=type_code, family=family,
                                                        kind=None if type_code else "service", unit=unit,
                                                        tax_class="gst",
                                                        warranty_months=24 if type_code == "hardware" else None),
                               actor=actor)
        prices.append((code, aud_price, eur_price))
    credit_types = set(session.scalars(select(CreditType.code).where(CreditType.workspace_id == actor.workspace_id)))
    for code, name, type_code, credit_type, quantity, pays_for, expiry, aud_price, eur_price in PACKAGES:
        if credit_type not in credit_types:
            continue  # the credits demo did not run
        catalog.create_product(session, s.ProductCreate.model_validate({
            "code": code, "name": name, "type": type_code, "unit": "pack", "tax_class": "gst",
            "family": "messaging" if credit_type == "sms" else "professional-services",
            "credit_package": {"credit_type": credit_type, "credit_quantity": quantity,
                               "applicable_product_codes": pays_for, "expiry": expiry}}), actor=actor)
        prices.append((code, aud_price, eur_price))
    for code, aud_price, eur_price in prices:
        catalog.set_price(session, aud.id, s.PriceSet(product=code, unit_price=aud_price), actor=actor)
        catalog.set_price(session, eur.id, s.PriceSet(product=code, unit_price=eur_price), actor=actor)
