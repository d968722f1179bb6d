"""The catalogue: what the business sells (products of five kinds), how it is taxed, and what it costs per
price plan. The API, the back office and the demo call these functions; they never commit.

Who may do what (one rule, `require_catalogue_admin`): every staff user and API key of the workspace reads
the catalogue; only master users (the workspace's administrators) change it, prices included. A price or a
tax rate changes what every later invoice of the workspace charges, so it is not a manager's day-to-day
action (managers sell packs and manage customers); the audit log shows every change with before and after.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies
from creditdesk.audit import Actor, snapshot
from creditdesk.catalog import repository as repo
from creditdesk.catalog import schemas as s
from creditdesk.catalog.models import (
    Price,
    PricePlan,
    Product,
    ProductFamily,
    ProductType,
    TaxClass,
    TaxRate,
)
from creditdesk.credits.models import CreditType
from creditdesk.errors import Conflict, InvalidInput, NotFound, NotPermitted
from creditdesk.ids import new_id
from creditdesk.pagination import Page, paginate
from creditdesk.repository import get_in_workspace

# --- who may -------------------------------------------------------------------------------------


def can_write_catalogue(actor: Actor) -> bool:
    return actor.is_master


def require_catalogue_admin(actor: Actor, what: str = "change the catalogue") -> None:
    if not can_write_catalogue(actor):
        raise NotPermitted(f"Only master users may {what}.")


# --- shared helpers ------------------------------------------------------------------------------

def _code_taken(label: str, code: str) -> Conflict:
    return Conflict(f"A {label} with code {code!r} already exists in this workspace.", code="code_taken",
                    field="code")


def _check_new_code(session: Session, model, workspace_id: str, code: str, label: str) -> None:
    if repo.code_taken(session, model, workspace_id, code):
        raise _code_taken(label, code)


def _record(session: Session, actor: Actor, action: str, obj: Any, before: dict | None) -> None:
    """One audit row: `action` is "<object type>.<verb>" (product.create, price_plan.update...)."""
    audit.record(session, actor=actor, action=action, object_type=action.partition(".")[0], object_id=obj.id,
                 before=before, after=snapshot(obj))


def _apply(obj: Any, data, fields: tuple[str, ...]) -> None:
    for name in fields:
        if name in data.model_fields_set and getattr(data, name) is not None:
            setattr(obj, name, getattr(data, name))


def _list(session: Session, stmt, model, limit, cursor) -> Page:
    return paginate(session, stmt, id_column=model.id, limit=limit, cursor=cursor)


# --- product types -------------------------------------------------------------------------------

def create_product_type(session: Session, data: s.ProductTypeCreate, *, actor: Actor) -> ProductType:
    require_catalogue_admin(actor, "create product types")
    _check_new_code(session, ProductType, actor.workspace_id, data.code, "product type")
    now = clock.now()
    row = ProductType(id=new_id("ptyp"), workspace_id=actor.workspace_id, code=data.code, name=data.name,
                      kind=data.kind, active=data.active, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    _record(session, actor, "product_type.create", row, None)
    return row


def update_product_type(session: Session, type_id: str, data: s.ProductTypeUpdate, *, actor: Actor) -> ProductType:
    require_catalogue_admin(actor, "change product types")
    row = get_in_workspace(session, ProductType, actor.workspace_id, type_id, label="product type")
    before = snapshot(row)
    _apply(row, data, ("name", "active"))
    row.updated_at = clock.now()
    _record(session, actor, "product_type.update", row, before)
    return row


def list_product_types(session: Session, *, actor: Actor, limit=None, cursor=None, kind: str | None = None,
                       active: bool | None = None) -> Page[ProductType]:
    stmt = select(ProductType).where(ProductType.workspace_id == actor.workspace_id)
    if kind:
        stmt = stmt.where(ProductType.kind == kind)
    if active is not None:
        stmt = stmt.where(ProductType.active == active)
    return _list(session, stmt, ProductType, limit, cursor)


# --- product families ----------------------------------------------------------------------------

def create_product_family(session: Session, data: s.ProductFamilyCreate, *, actor: Actor) -> ProductFamily:
    require_catalogue_admin(actor, "create product families")
    _check_new_code(session, ProductFamily, actor.workspace_id, data.code, "product family")
    now = clock.now()
    row = ProductFamily(id=new_id("pfam"), workspace_id=actor.workspace_id, code=data.code, name=data.name,
                        active=data.active, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    _record(session, actor, "product_family.create", row, None)
    return row


def update_product_family(session: Session, family_id: str, data: s.ProductFamilyUpdate, *,
                          actor: Actor) -> ProductFamily:
    require_catalogue_admin(actor, "change product families")
    row = get_in_workspace(session, ProductFamily, actor.workspace_id, family_id, label="product family")
    before = snapshot(row)
    _apply(row, data, ("name", "active"))
    row.updated_at = clock.now()
    _record(session, actor, "product_family.update", row, before)
    return row


def list_product_families(session: Session, *, actor: Actor, limit=None, cursor=None,
                          active: bool | None = None) -> Page[ProductFamily]:
    stmt = select(ProductFamily).where(ProductFamily.workspace_id == actor.workspace_id)
    if active is not None:
        stmt = stmt.where(ProductFamily.active == active)
    return _list(session, stmt, ProductFamily, limit, cursor)


# --- tax classes and rates -----------------------------------------------------------------------

def create_tax_class(session: Session, data: s.TaxClassCreate, *, actor: Actor) -> TaxClass:
    require_catalogue_admin(actor, "create tax classes")
    _check_new_code(session, TaxClass, actor.workspace_id, data.code, "tax class")
    now = clock.now()
    row = TaxClass(id=new_id("taxc"), workspace_id=actor.workspace_id, code=data.code, name=data.name,
                   created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    _record(session, actor, "tax_class.create", row, None)
    return row


def update_tax_class(session: Session, class_id: str, data: s.TaxClassUpdate, *, actor: Actor) -> TaxClass:
    require_catalogue_admin(actor, "change tax classes")
    row = get_in_workspace(session, TaxClass, actor.workspace_id, class_id, label="tax class")
    before = snapshot(row)
    _apply(row, data, ("name",))
    row.updated_at = clock.now()
    _record(session, actor, "tax_class.update", row, before)
    return row


def list_tax_classes(session: Session, *, actor: Actor, limit=None, cursor=None) -> Page[TaxClass]:
    return _list(session, select(TaxClass).where(TaxClass.workspace_id == actor.workspace_id), TaxClass, limit,
                 cursor)


def _tax_class_by_code(session: Session, workspace_id: str, code: str, *, field: str = "tax_class") -> TaxClass:
    row = repo.by_code(session, TaxClass, workspace_id, code)
    if row is None:
        raise InvalidInput(f"Unknown tax class {code!r}. Create it first (POST /v1/tax-classes).",
                           code="unknown_tax_class", field=field)
    return row


def create_tax_rate(session: Session, data: s.TaxRateCreate, *, actor: Actor) -> TaxRate:
    require_catalogue_admin(actor, "create tax rates")
    tax_class = _tax_class_by_code(session, actor.workspace_id, data.tax_class)
    taken = session.scalar(select(TaxRate.id).where(TaxRate.tax_class_id == tax_class.id,
                                                    TaxRate.valid_from == data.valid_from))
    if taken:
        raise Conflict(f"Tax class {tax_class.code!r} already has a rate from {data.valid_from.isoformat()} "
                       f"({taken}); change that one instead.", code="tax_rate_exists", field="valid_from",
                       tax_rate_id=taken)
    now = clock.now()
    row = TaxRate(id=new_id("taxr"), workspace_id=actor.workspace_id, tax_class_id=tax_class.id,
                  rate_bp=data.rate_bp, inclusive=data.inclusive, valid_from=data.valid_from, created_at=now,
                  updated_at=now)
    session.add(row)
    session.flush()
    _record(session, actor, "tax_rate.create", row, None)
    return row


def update_tax_rate(session: Session, rate_id: str, data: s.TaxRateUpdate, *, actor: Actor) -> TaxRate:
    """Correct a rate (a typo, a changed law announced late). Invoices keep the figures they were posted with;
    a new rate from a later day is a new rate, not a change of this one."""
    require_catalogue_admin(actor, "change tax rates")
    row = get_in_workspace(session, TaxRate, actor.workspace_id, rate_id, label="tax rate")
    before = snapshot(row)
    _apply(row, data, ("rate_bp", "inclusive"))
    row.updated_at = clock.now()
    _record(session, actor, "tax_rate.update", row, before)
    return row


def list_tax_rates(session: Session, *, actor: Actor, limit=None, cursor=None,
                   tax_class: str | None = None) -> Page[TaxRate]:
    stmt = select(TaxRate).where(TaxRate.workspace_id == actor.workspace_id)
    if tax_class:
        stmt = stmt.where(TaxRate.tax_class_id == _tax_class_by_code(session, actor.workspace_id, tax_class).id)
    return _list(session, stmt, TaxRate, limit, cursor)


def rate_in_force(session: Session, workspace_id: str, tax_class_id: str, on: date) -> TaxRate | None:
    """The rate of the class with the latest valid_from on or before `on` (None: no rate yet, not taxed)."""
    return repo.rate_in_force(session, workspace_id, tax_class_id, on)


def tax_rate_out(session: Session, row: TaxRate) -> s.TaxRateOut:
    tax_class = session.get(TaxClass, row.tax_class_id)
    return s.TaxRateOut(id=row.id, tax_class=tax_class.code, rate_bp=row.rate_bp, inclusive=row.inclusive,
                        valid_from=row.valid_from, created_at=row.created_at, updated_at=row.updated_at)


# --- products ------------------------------------------------------------------------------------

def _lookup(session: Session, model, workspace_id: str, code: str, *, what: str, error: str, field: str,
            create_hint: str):
    row = repo.by_code(session, model, workspace_id, code)
    if row is None:
        raise InvalidInput(f"Unknown {what} {code!r}. Create it first ({create_hint}).", code=error, field=field)
    return row


def _product_type(session: Session, ws: str, code: str) -> ProductType:
    row = _lookup(session, ProductType, ws, code, what="product type", error="unknown_product_type", field="type",
                  create_hint="POST /v1/product-types")
    if not row.active:
        raise InvalidInput(f"Product type {code!r} is inactive: activate it or choose another.",
                           code="product_type_inactive", field="type")
    return row


def _product_family(session: Session, ws: str, code: str) -> ProductFamily:
    row = _lookup(session, ProductFamily, ws, code, what="product family", error="unknown_product_family",
                  field="family", create_hint="POST /v1/product-families")
    if not row.active:
        raise InvalidInput(f"Product family {code!r} is inactive: activate it or choose another.",
                           code="product_family_inactive", field="family")
    return row


def check_expiry_policy(policy: s.ExpiryPolicy, *, field: str = "credit_package.expiry") -> None:
    """The fields each policy needs and no others; a fixed date that exists every year (no 29 Feb)."""
    given = {name for name in ("month", "day", "months") if getattr(policy, name) is not None}
    needed = {"none": set(), "fixed_date": {"month", "day"}, "months_after_purchase": {"months"}}[policy.kind]
    if given != needed:
        wanted = " and ".join(sorted(needed)) or "no other field"
        raise InvalidInput(f"An expiry policy {policy.kind} takes {wanted}.", code="invalid_expiry_policy",
                           field=field)
    if policy.kind == "fixed_date" and policy.day > calendar.monthrange(2001, policy.month)[1]:
        raise InvalidInput(f"{policy.day}/{policy.month} is not a day of every year; choose a day that exists "
                           "each year (28 Feb rather than 29 Feb).", code="invalid_expiry_policy", field=field)


def package_expiry(product: Product, purchased_on: date) -> date | None:
    """When the pack of a credit package bought on `purchased_on` expires (None: never). Fixed date: the next
    such day strictly after the purchase day; N months: the same day N months on (the month's last day when
    it is shorter)."""
    if product.expiry_policy == "fixed_date":
        this_year = date(purchased_on.year, product.expiry_month, product.expiry_day)
        return this_year if this_year > purchased_on else this_year.replace(year=purchased_on.year + 1)
    if product.expiry_policy == "months_after_purchase":
        month0 = purchased_on.month - 1 + product.expiry_months
        year, month = purchased_on.year + month0 // 12, month0 % 12 + 1
        return date(year, month, min(purchased_on.day, calendar.monthrange(year, month)[1]))
    return None


def _set_credit_package(session: Session, product: Product, package: s.CreditPackageIn | None) -> None:
    ws = product.workspace_id
    if product.kind != "credit_package":
        if package is not None:
            raise InvalidInput(f"Only credit packages carry credit package fields (this product is a "
                               f"{product.kind}).", code="credit_package_fields_not_allowed", field="credit_package")
        return
    if package is None:
        raise InvalidInput("A credit package needs its credit type, credit quantity, applicable products and "
                           "expiry policy (credit_package).", code="credit_package_fields_required",
                           field="credit_package")
    credit_type = repo.credit_type_by_code(session, ws, package.credit_type)
    if credit_type is None:
        raise InvalidInput(f"Unknown credit type {package.credit_type!r}. Create it first (POST /v1/credit-types).",
                           code="unknown_credit_type", field="credit_package.credit_type")
    found = repo.products_by_codes(session, ws, package.applicable_product_codes)
    missing = [c for c in package.applicable_product_codes if c not in found]
    if missing:
        raise InvalidInput(f"Unknown product(s) {', '.join(map(repr, missing))}: the credits can only pay for "
                           "products of the catalogue.", code="unknown_product",
                           field="credit_package.applicable_product_codes", missing=missing)
    unpayable = [c for c, p in found.items() if p.kind == "credit_package" or c == product.code]
    if unpayable:
        raise InvalidInput(f"Credits cannot pay for credit packages ({', '.join(map(repr, unpayable))}).",
                           code="invalid_applicable_product", field="credit_package.applicable_product_codes")
    check_expiry_policy(package.expiry)
    product.credit_type_id = credit_type.id
    product.credit_quantity = package.credit_quantity
    product.applicable_product_codes = list(package.applicable_product_codes)
    product.expiry_policy = package.expiry.kind
    product.expiry_month = package.expiry.month
    product.expiry_day = package.expiry.day
    product.expiry_months = package.expiry.months


def create_product(session: Session, data: s.ProductCreate, *, actor: Actor) -> Product:
    require_catalogue_admin(actor, "create products")
    ws = actor.workspace_id
    _check_new_code(session, Product, ws, data.code, "product")
    product_type = _product_type(session, ws, data.type) if data.type else None
    kind = data.kind or (product_type.kind if product_type else None)
    if kind is None:
        raise InvalidInput("Give the product a kind, or a type (whose kind it takes).", code="kind_required",
                           field="kind")
    if product_type is not None and product_type.kind != kind:
        raise InvalidInput(f"Product type {product_type.code!r} is of kind {product_type.kind}, not {kind}.",
                           code="product_type_kind_mismatch", field="type")
    now = clock.now()
    product = Product(id=new_id("prod"), workspace_id=ws, code=data.code, name=data.name,
                      description=data.description, kind=kind,
                      product_type_id=product_type.id if product_type else None,
                      product_family_id=_product_family(session, ws, data.family).id if data.family else None,
                      unit=data.unit,
                      tax_class_id=_tax_class_by_code(session, ws, data.tax_class).id if data.tax_class else None,
                      active=data.active, created_at=now, updated_at=now)
    _set_credit_package(session, product, data.credit_package)
    _set_warranty(product, data.warranty_months)
    session.add(product)
    session.flush()
    _record(session, actor, "product.create", product, None)
    return product


def _set_warranty(product: Product, months: int | None) -> None:
    if months is not None and product.kind != "physical_good":
        raise InvalidInput(f"Only physical goods carry a warranty; this product is a {product.kind.replace('_', ' ')}.",
                           code="warranty_physical_goods_only", field="warranty_months")
    product.warranty_months = months


def update_product(session: Session, ref: str, data: s.ProductUpdate, *, actor: Actor) -> Product:
    require_catalogue_admin(actor, "change products")
    ws = actor.workspace_id
    product = get_product(session, ws, ref)
    before = snapshot(product)
    given = data.model_fields_set
    for name in ("name", "description", "unit", "active"):
        if name in given and getattr(data, name) is not None:
            setattr(product, name, getattr(data, name))
    if "type" in given:
        if data.type is None:
            product.product_type_id = None
        else:
            product_type = _product_type(session, ws, data.type)
            if product_type.kind != product.kind:
                raise InvalidInput(f"Product type {product_type.code!r} is of kind {product_type.kind}; this product "
                                   f"is a {product.kind} (a product's kind never changes).",
                                   code="product_type_kind_mismatch", field="type")
            product.product_type_id = product_type.id
    if "family" in given:
        product.product_family_id = _product_family(session, ws, data.family).id if data.family else None
    if "tax_class" in given:
        product.tax_class_id = _tax_class_by_code(session, ws, data.tax_class).id if data.tax_class else None
    if "credit_package" in given:
        _set_credit_package(session, product, data.credit_package)
    if "warranty_months" in given:
        _set_warranty(product, data.warranty_months)
    product.updated_at = clock.now()
    session.flush()
    _record(session, actor, "product.update", product, before)
    return product


def get_product(session: Session, workspace_id: str, ref: str) -> Product:
    product = repo.product_by_id_or_code(session, workspace_id, ref)
    if product is None:
        raise NotFound(f"No product with id or code {ref!r} in this workspace.", object_id=ref)
    return product


def list_products(session: Session, *, actor: Actor, limit=None, cursor=None, kind: str | None = None,
                  type: str | None = None, family: str | None = None, active: bool | None = None,
                  q: str | None = None) -> Page[Product]:
    ws = actor.workspace_id
    type_id = _lookup(session, ProductType, ws, type, what="product type", error="unknown_product_type",
                      field="type", create_hint="POST /v1/product-types").id if type else None
    family_id = _lookup(session, ProductFamily, ws, family, what="product family", error="unknown_product_family",
                        field="family", create_hint="POST /v1/product-families").id if family else None
    stmt = repo.products_query(ws, kind=kind, product_type_id=type_id, product_family_id=family_id, active=active,
                               q=q)
    return _list(session, stmt, Product, limit, cursor)


def products_out(session: Session, products: list[Product]) -> list[s.ProductOut]:
    """The API view of products, with the codes of what they refer to (one query per referred table)."""
    if not products:
        return []
    ws = products[0].workspace_id
    types = repo.codes_by_id(session, ProductType, ws, {p.product_type_id for p in products})
    families = repo.codes_by_id(session, ProductFamily, ws, {p.product_family_id for p in products})
    classes = repo.codes_by_id(session, TaxClass, ws, {p.tax_class_id for p in products})
    credit_types = repo.codes_by_id(session, CreditType, ws, {p.credit_type_id for p in products})
    out = []
    for p in products:
        package = None
        if p.kind == "credit_package":
            expiry = {"kind": p.expiry_policy, "month": p.expiry_month, "day": p.expiry_day,
                      "months": p.expiry_months}
            package = s.CreditPackageOut(credit_type=credit_types.get(p.credit_type_id, ""),
                                         credit_quantity=p.credit_quantity,
                                         applicable_product_codes=list(p.applicable_product_codes or []),
                                         expiry=expiry)
        out.append(s.ProductOut(id=p.id, code=p.code, name=p.name, description=p.description, kind=p.kind,
                                type=types.get(p.product_type_id), family=families.get(p.product_family_id),
                                unit=p.unit, tax_class=classes.get(p.tax_class_id), active=p.active,
                                credit_package=package, warranty_months=p.warranty_months,
                                created_at=p.created_at, updated_at=p.updated_at))
    return out


def product_out(session: Session, product: Product) -> s.ProductOut:
    return products_out(session, [product])[0]


# --- price plans and prices ----------------------------------------------------------------------

def _unset_default(session: Session, actor: Actor, currency: str, *, keep: str | None) -> None:
    current = repo.default_plan(session, actor.workspace_id, currency, for_update=True)
    if current is None or current.id == keep:
        return
    before = snapshot(current)
    current.is_default = False
    current.updated_at = clock.now()
    session.flush()  # before the new default is written: the unique index allows one at a time
    _record(session, actor, "price_plan.update", current, before)


def create_price_plan(session: Session, data: s.PricePlanCreate, *, actor: Actor) -> PricePlan:
    require_catalogue_admin(actor, "create price plans")
    currency = currencies.check_currency(data.currency)
    _check_new_code(session, PricePlan, actor.workspace_id, data.code, "price plan")
    if data.is_default and not data.active:
        raise InvalidInput("A default price plan must be active.", code="default_plan_inactive", field="active")
    if data.is_default:
        _unset_default(session, actor, currency, keep=None)
    now = clock.now()
    plan = PricePlan(id=new_id("plan"), workspace_id=actor.workspace_id, code=data.code, name=data.name,
                     currency=currency, is_default=data.is_default, active=data.active, created_at=now,
                     updated_at=now)
    session.add(plan)
    session.flush()
    _record(session, actor, "price_plan.create", plan, None)
    return plan


def update_price_plan(session: Session, plan_id: str, data: s.PricePlanUpdate, *, actor: Actor) -> PricePlan:
    require_catalogue_admin(actor, "change price plans")
    plan = get_in_workspace(session, PricePlan, actor.workspace_id, plan_id, label="price plan")
    before = snapshot(plan)
    if data.name is not None:
        plan.name = data.name
    if data.active is not None:
        plan.active = data.active
    if data.is_default is not None and data.is_default != plan.is_default:
        if data.is_default:
            _unset_default(session, actor, plan.currency, keep=plan.id)
        plan.is_default = data.is_default
    if plan.is_default and not plan.active:
        raise InvalidInput("A default price plan must be active: make another plan the default first.",
                           code="default_plan_inactive", field="active")
    plan.updated_at = clock.now()
    session.flush()
    _record(session, actor, "price_plan.update", plan, before)
    return plan


def list_price_plans(session: Session, *, actor: Actor, limit=None, cursor=None, currency: str | None = None,
                     active: bool | None = None) -> Page[PricePlan]:
    stmt = select(PricePlan).where(PricePlan.workspace_id == actor.workspace_id)
    if currency:
        stmt = stmt.where(PricePlan.currency == currencies.check_currency(currency))
    if active is not None:
        stmt = stmt.where(PricePlan.active == active)
    return _list(session, stmt, PricePlan, limit, cursor)


def get_price_plan(session: Session, workspace_id: str, plan_id: str) -> PricePlan:
    return get_in_workspace(session, PricePlan, workspace_id, plan_id, label="price plan")


def set_price(session: Session, plan_id: str, data: s.PriceSet, *, actor: Actor) -> Price:
    """Set one product's unit price in a plan (in the plan currency's minor units), creating or replacing it."""
    require_catalogue_admin(actor, "set prices")
    plan = get_price_plan(session, actor.workspace_id, plan_id)
    product = repo.product_by_id_or_code(session, actor.workspace_id, data.product)
    if product is None:
        raise InvalidInput(f"Unknown product {data.product!r} (give a product's id or code).", code="unknown_product",
                           field="product")
    price = repo.price_in_plan(session, plan.id, product.id, for_update=True)
    now = clock.now()
    if price is None:
        price = Price(id=new_id("price"), workspace_id=actor.workspace_id, price_plan_id=plan.id,
                      product_id=product.id, unit_price=data.unit_price, created_at=now, updated_at=now)
        session.add(price)
        before = None
    else:
        before = snapshot(price)
        price.unit_price = data.unit_price
        price.updated_at = now
    session.flush()
    audit.record(session, actor=actor, action="price.set", object_type="price", object_id=price.id, before=before,
                 after=snapshot(price, product_code=product.code, currency=plan.currency))
    return price


def list_prices(session: Session, *, actor: Actor, plan_id: str, limit=None, cursor=None) -> Page:
    plan = get_price_plan(session, actor.workspace_id, plan_id)
    return paginate(session, repo.prices_query(actor.workspace_id, plan.id), id_column=Price.id, limit=limit,
                    cursor=cursor, row_key=lambda row: (None, row[0].id))


def price_out(price: Price, product_code: str, currency: str) -> s.PriceOut:
    return s.PriceOut(id=price.id, price_plan_id=price.price_plan_id, product_id=price.product_id,
                      product_code=product_code, currency=currency, unit_price=price.unit_price,
                      created_at=price.created_at, updated_at=price.updated_at)


@dataclass(frozen=True)
class PriceQuote:
    """A product's unit price in a currency: from the plan asked for, or from the currency's default plan
    (`from_default` then says the named plan had no price, or no plan was named)."""

    product_id: str
    product_code: str
    currency: str
    unit_price: int
    price_plan_id: str
    from_default: bool


def price_of(session: Session, workspace_id: str, product_id_or_code: str, currency: str,
             plan_id: str | None = None) -> PriceQuote:
    """The unit price of a product in `currency`: the named plan's price; else the currency's default plan's;
    else InvalidInput `no_price` naming the product and the plans looked in. A named plan of another
    currency is refused (`currency_mismatch`); an inactive named plan is passed over for the default."""
    currency = currencies.check_currency(currency)
    product = get_product(session, workspace_id, product_id_or_code)
    looked: list[str] = []
    if plan_id is not None:
        plan = get_price_plan(session, workspace_id, plan_id)
        if plan.currency != currency:
            raise InvalidInput(f"Price plan {plan.code!r} is in {plan.currency}, not {currency}.",
                               code="currency_mismatch", field="currency")
        if plan.active:
            price = repo.price_in_plan(session, plan.id, product.id)
            if price is not None:
                return PriceQuote(product.id, product.code, currency, price.unit_price, plan.id, False)
            looked.append(f"none in price plan {plan.code!r}")
        else:
            looked.append(f"price plan {plan.code!r} is inactive")
    default = repo.default_plan(session, workspace_id, currency)
    if default is not None and default.id != plan_id:
        price = repo.price_in_plan(session, default.id, product.id)
        if price is not None:
            return PriceQuote(product.id, product.code, currency, price.unit_price, default.id, True)
        looked.append(f"none in the default {currency} price plan {default.code!r}")
    elif default is None:
        looked.append(f"no default {currency} price plan exists")
    raise InvalidInput(f"Product {product.code!r} has no {currency} price: {'; '.join(looked)}. Set one (PUT "
                       f"/v1/price-plans/{{id}}/prices).", code="no_price", product=product.code,
                       price_plan_id=plan_id, currency=currency)


# --- lines ---------------------------------------------------------------------------------------

def tax_of(session: Session, product: Product, on: date) -> TaxRate | None:
    """The tax rate a product is charged at on a day (None: no tax class, or no rate in force yet)."""
    if product.tax_class_id is None:
        return None
    return rate_in_force(session, product.workspace_id, product.tax_class_id, on)
