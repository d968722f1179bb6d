"""The catalogue's SQL: lookups by code, the product list's filters, the rate in force, a plan's prices."""

from __future__ import annotations

from datetime import date
from typing import TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from creditdesk.catalog.models import Price, PricePlan, Product, TaxRate
from creditdesk.credits.models import CreditType

M = TypeVar("M")


def by_code(session: Session, model: type[M], workspace_id: str, code: str) -> M | None:
    return session.scalar(select(model).where(model.workspace_id == workspace_id, model.code == code))


def code_taken(session: Session, model, workspace_id: str, code: str) -> bool:
    return session.scalar(select(model.id).where(model.workspace_id == workspace_id, model.code == code)) is not None


def codes_by_id(session: Session, model, workspace_id: str, ids: set[str]) -> dict[str, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.code).where(model.workspace_id == workspace_id,
                                                                   model.id.in_(ids))).all())


def credit_type_by_code(session: Session, workspace_id: str, code: str) -> CreditType | None:
    return session.scalar(select(CreditType).where(CreditType.workspace_id == workspace_id, CreditType.code == code))


def products_by_codes(session: Session, workspace_id: str, codes: list[str]) -> dict[str, Product]:
    if not codes:
        return {}
    rows = session.scalars(select(Product).where(Product.workspace_id == workspace_id, Product.code.in_(codes)))
    return {p.code: p for p in rows}


def product_by_id_or_code(session: Session, workspace_id: str, ref: str) -> Product | None:
    """Ids first: an id is never ambiguous, while a code could look like an id."""
    found = session.scalar(select(Product).where(Product.workspace_id == workspace_id, Product.id == ref))
    return found if found is not None else by_code(session, Product, workspace_id, ref)


def products_query(workspace_id: str, *, kind: str | None = None, product_type_id: str | None = None,
                   product_family_id: str | None = None, active: bool | None = None, q: str | None = None) -> Select:
    stmt = select(Product).where(Product.workspace_id == workspace_id)
    if kind:
        stmt = stmt.where(Product.kind == kind)
    if product_type_id:
        stmt = stmt.where(Product.product_type_id == product_type_id)
    if product_family_id:
        stmt = stmt.where(Product.product_family_id == product_family_id)
    if active is not None:
        stmt = stmt.where(Product.active == active)
    if q:
        needle = q.lower()
        stmt = stmt.where(or_(func.lower(Product.code).contains(needle, autoescape=True),
                              func.lower(Product.name).contains(needle, autoescape=True)))
    return stmt


def rate_in_force(session: Session, workspace_id: str, tax_class_id: str, on: date) -> TaxRate | None:
    return session.scalar(select(TaxRate).where(TaxRate.workspace_id == workspace_id,
                                                TaxRate.tax_class_id == tax_class_id, TaxRate.valid_from <= on)
                          .order_by(TaxRate.valid_from.desc()).limit(1))


def default_plan(session: Session, workspace_id: str, currency: str, *, for_update: bool = False) -> PricePlan | None:
    stmt = select(PricePlan).where(PricePlan.workspace_id == workspace_id, PricePlan.currency == currency,
                                   PricePlan.is_default.is_(True))
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def price_in_plan(session: Session, plan_id: str, product_id: str, *, for_update: bool = False) -> Price | None:
    stmt = select(Price).where(Price.price_plan_id == plan_id, Price.product_id == product_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def prices_query(workspace_id: str, plan_id: str) -> Select:
    return (select(Price, Product.code).join(Product, Product.id == Price.product_id)
            .where(Price.workspace_id == workspace_id, Price.price_plan_id == plan_id))
