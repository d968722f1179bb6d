"""The catalogue: products, product types and families, tax classes and rates, price plans and their prices.

Reading is open to every staff user and API key of the workspace; writing to master users only
(catalog.service.require_catalogue_admin)."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from creditdesk.api.deps import Cursor, Limit, ProductRef, WriteContext, get_actor, read_session, write_context
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.catalog import schemas as s
from creditdesk.catalog import service as catalog
from creditdesk.catalog.models import ProductFamily, ProductType, TaxClass, TaxRate
from creditdesk.repository import get_in_workspace

router = APIRouter()

KINDS = ", ".join(f"`{kind}`" for kind in get_args(s.ProductKind))
Active = Query(default=None, description="`true`: only active ones; `false`: only inactive ones; omitted: both.")
TypeId = Annotated[str, Path(description="The id of the product type, as its `id` field gives it (not its code).")]
FamilyId = Annotated[str, Path(description="The id of the product family, as its `id` field gives it (not its code).")]
ClassId = Annotated[str, Path(description="The id of the tax class, as its `id` field gives it (not its code).")]
RateId = Annotated[str, Path(description="The id of the tax rate, as its `id` field gives it.")]
PlanId = Annotated[str, Path(description="The id of the price plan, as its `id` field gives it.")]


# --- products ---

@router.get("/products", response_model=ListOf[s.ProductOut], tags=["catalogue"])
def list_products(limit: int | None = Limit, cursor: str | None = Cursor,
                  kind: s.ProductKind | None = Query(default=None, description=f"Only products of this kind: {KINDS}."),
                  type: str | None = Query(default=None, max_length=100, description=(
                      "Only products of this product type, by its code (422 unknown_product_type for none).")),
                  family: str | None = Query(default=None, max_length=100, description=(
                      "Only products of this product family, by its code (422 unknown_product_family for none).")),
                  active: bool | None = Active,
                  q: str | None = Query(default=None, max_length=200, description=(
                      "Only products whose code or name contains this text, ignoring case; every character is "
                      "literal.")),
                  actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = catalog.list_products(session, actor=actor, limit=limit, cursor=cursor, kind=kind, type=type,
                                 family=family, active=active, q=q)
    return {"object": "list", "data": catalog.products_out(session, page.items), "next_cursor": page.next_cursor}


@router.post("/products", status_code=201, response_model=s.ProductOut, tags=["catalogue"])
def create_product(body: s.ProductCreate, ctx: WriteContext = Depends(write_context)):
    """Create a product. A credit package (kind credit_package) also names its credit type, credit quantity,
    the products its credits pay for and its expiry policy (`credit_package`)."""
    return ctx.run(lambda db, actor: catalog.product_out(db, catalog.create_product(db, body, actor=actor)),
                   status_code=201)


@router.get("/products/{product}", response_model=s.ProductOut, tags=["catalogue"])
def get_product(product: ProductRef, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """A product by its id or its code."""
    return catalog.product_out(session, catalog.get_product(session, actor.workspace_id, product))


@router.patch("/products/{product}", response_model=s.ProductOut, tags=["catalogue"])
def update_product(product: ProductRef, body: s.ProductUpdate, ctx: WriteContext = Depends(write_context)):
    """Change a product (by id or code). Code and kind never change; null clears type, family or tax class."""
    return ctx.run(lambda db, actor: catalog.product_out(db, catalog.update_product(db, product, body, actor=actor)))


# --- product types ---

@router.get("/product-types", response_model=ListOf[s.ProductTypeOut], tags=["catalogue"])
def list_product_types(limit: int | None = Limit, cursor: str | None = Cursor,
                       kind: s.ProductKind | None = Query(default=None, description=(
                           f"Only product types of this kind: {KINDS}.")),
                       active: bool | None = Active, actor: Actor = Depends(get_actor),
                       session: Session = Depends(read_session)):
    page = catalog.list_product_types(session, actor=actor, limit=limit, cursor=cursor, kind=kind, active=active)
    return list_of(page.items, page.next_cursor, s.ProductTypeOut.model_validate)


@router.post("/product-types", status_code=201, response_model=s.ProductTypeOut, tags=["catalogue"])
def create_product_type(body: s.ProductTypeCreate, ctx: WriteContext = Depends(write_context)):
    """A workspace's own label for products of one of the five kinds ("Consulting hours": kind service)."""
    return ctx.run(lambda db, actor: s.ProductTypeOut.model_validate(
        catalog.create_product_type(db, body, actor=actor)), status_code=201)


@router.get("/product-types/{type_id}", response_model=s.ProductTypeOut, tags=["catalogue"])
def get_product_type(type_id: TypeId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return s.ProductTypeOut.model_validate(get_in_workspace(session, ProductType, actor.workspace_id, type_id,
                                                            label="product type"))


@router.patch("/product-types/{type_id}", response_model=s.ProductTypeOut, tags=["catalogue"])
def update_product_type(type_id: TypeId, body: s.ProductTypeUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.ProductTypeOut.model_validate(
        catalog.update_product_type(db, type_id, body, actor=actor)))


# --- product families ---

@router.get("/product-families", response_model=ListOf[s.ProductFamilyOut], tags=["catalogue"])
def list_product_families(limit: int | None = Limit, cursor: str | None = Cursor, active: bool | None = Active,
                          actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = catalog.list_product_families(session, actor=actor, limit=limit, cursor=cursor, active=active)
    return list_of(page.items, page.next_cursor, s.ProductFamilyOut.model_validate)


@router.post("/product-families", status_code=201, response_model=s.ProductFamilyOut, tags=["catalogue"])
def create_product_family(body: s.ProductFamilyCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.ProductFamilyOut.model_validate(
        catalog.create_product_family(db, body, actor=actor)), status_code=201)


@router.get("/product-families/{family_id}", response_model=s.ProductFamilyOut, tags=["catalogue"])
def get_product_family(family_id: FamilyId, actor: Actor = Depends(get_actor),
                       session: Session = Depends(read_session)):
    return s.ProductFamilyOut.model_validate(get_in_workspace(session, ProductFamily, actor.workspace_id, family_id,
                                                              label="product family"))


@router.patch("/product-families/{family_id}", response_model=s.ProductFamilyOut, tags=["catalogue"])
def update_product_family(family_id: FamilyId, body: s.ProductFamilyUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.ProductFamilyOut.model_validate(
        catalog.update_product_family(db, family_id, body, actor=actor)))


# --- tax classes and rates ---

@router.get("/tax-classes", response_model=ListOf[s.TaxClassOut], tags=["catalogue"])
def list_tax_classes(limit: int | None = Limit, cursor: str | None = Cursor, actor: Actor = Depends(get_actor),
                     session: Session = Depends(read_session)):
    page = catalog.list_tax_classes(session, actor=actor, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, s.TaxClassOut.model_validate)


@router.post("/tax-classes", status_code=201, response_model=s.TaxClassOut, tags=["catalogue"])
def create_tax_class(body: s.TaxClassCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.TaxClassOut.model_validate(catalog.create_tax_class(db, body, actor=actor)),
                   status_code=201)


@router.get("/tax-classes/{class_id}", response_model=s.TaxClassOut, tags=["catalogue"])
def get_tax_class(class_id: ClassId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return s.TaxClassOut.model_validate(get_in_workspace(session, TaxClass, actor.workspace_id, class_id,
                                                         label="tax class"))


@router.patch("/tax-classes/{class_id}", response_model=s.TaxClassOut, tags=["catalogue"])
def update_tax_class(class_id: ClassId, body: s.TaxClassUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.TaxClassOut.model_validate(
        catalog.update_tax_class(db, class_id, body, actor=actor)))


@router.get("/tax-rates", response_model=ListOf[s.TaxRateOut], tags=["catalogue"])
def list_tax_rates(limit: int | None = Limit, cursor: str | None = Cursor,
                   tax_class: str | None = Query(default=None, max_length=100, description=(
                       "Only the rates of this tax class, by its code (422 unknown_tax_class for none).")),
                   actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = catalog.list_tax_rates(session, actor=actor, limit=limit, cursor=cursor, tax_class=tax_class)
    return list_of(page.items, page.next_cursor, lambda r: catalog.tax_rate_out(session, r))


@router.post("/tax-rates", status_code=201, response_model=s.TaxRateOut, tags=["catalogue"])
def create_tax_rate(body: s.TaxRateCreate, ctx: WriteContext = Depends(write_context)):
    """A rate of a tax class from `valid_from` on, in basis points, inclusive or exclusive of prices. On a day,
    the rate in force is the one with the latest valid_from on or before it. Lines are rounded once, half-up
    (README "Catalogue")."""
    return ctx.run(lambda db, actor: catalog.tax_rate_out(db, catalog.create_tax_rate(db, body, actor=actor)),
                   status_code=201)


@router.get("/tax-rates/{rate_id}", response_model=s.TaxRateOut, tags=["catalogue"])
def get_tax_rate(rate_id: RateId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return catalog.tax_rate_out(session, get_in_workspace(session, TaxRate, actor.workspace_id, rate_id,
                                                          label="tax rate"))


@router.patch("/tax-rates/{rate_id}", response_model=s.TaxRateOut, tags=["catalogue"])
def update_tax_rate(rate_id: RateId, body: s.TaxRateUpdate, ctx: WriteContext = Depends(write_context)):
    """Correct a rate; a new rate from a later day is a new rate (POST)."""
    return ctx.run(lambda db, actor: catalog.tax_rate_out(db, catalog.update_tax_rate(db, rate_id, body, actor=actor)))


# --- price plans and prices ---

@router.get("/price-plans", response_model=ListOf[s.PricePlanOut], tags=["catalogue"])
def list_price_plans(limit: int | None = Limit, cursor: str | None = Cursor,
                     currency: str | None = Query(default=None, max_length=3, description=(
                         "Only plans in this currency (ISO 4217 code, any case; 422 unknown_currency otherwise).")),
                     active: bool | None = Active,
                     actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = catalog.list_price_plans(session, actor=actor, limit=limit, cursor=cursor, currency=currency,
                                    active=active)
    return list_of(page.items, page.next_cursor, s.PricePlanOut.model_validate)


@router.post("/price-plans", status_code=201, response_model=s.PricePlanOut, tags=["catalogue"])
def create_price_plan(body: s.PricePlanCreate, ctx: WriteContext = Depends(write_context)):
    """A price plan in one currency (never changed). `is_default`: the plan used for that currency when none is
    named; making a plan the default takes the flag from the currency's previous default."""
    return ctx.run(lambda db, actor: s.PricePlanOut.model_validate(catalog.create_price_plan(db, body, actor=actor)),
                   status_code=201)


@router.get("/price-plans/{plan_id}", response_model=s.PricePlanOut, tags=["catalogue"])
def get_price_plan(plan_id: PlanId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return s.PricePlanOut.model_validate(catalog.get_price_plan(session, actor.workspace_id, plan_id))


@router.patch("/price-plans/{plan_id}", response_model=s.PricePlanOut, tags=["catalogue"])
def update_price_plan(plan_id: PlanId, body: s.PricePlanUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.PricePlanOut.model_validate(
        catalog.update_price_plan(db, plan_id, body, actor=actor)))


@router.get("/price-plans/{plan_id}/prices", response_model=ListOf[s.PriceOut], tags=["catalogue"])
def list_prices(plan_id: PlanId, limit: int | None = Limit, cursor: str | None = Cursor,
                actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    plan = catalog.get_price_plan(session, actor.workspace_id, plan_id)
    page = catalog.list_prices(session, actor=actor, plan_id=plan.id, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda row: catalog.price_out(row[0], row[1], plan.currency))


@router.put("/price-plans/{plan_id}/prices", response_model=s.PriceOut, tags=["catalogue"])
def set_price(plan_id: PlanId, body: s.PriceSet, ctx: WriteContext = Depends(write_context)):
    """Set one product's unit price in this plan, in the plan currency's minor units (creates or replaces it)."""
    def run(db, actor):
        price = catalog.set_price(db, plan_id, body, actor=actor)
        plan = catalog.get_price_plan(db, actor.workspace_id, plan_id)
        product = catalog.get_product(db, actor.workspace_id, price.product_id)
        return catalog.price_out(price, product.code, plan.currency)
    return ctx.run(run)
