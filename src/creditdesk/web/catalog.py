"""Finance > Catalogue: products (with the credit package fields for that kind), price plans with a price per
product, tax classes and their rates, product types and families. Every change goes through catalog.service
(masters only: the forms are hidden from others and the service refuses them anyway), each form once
(web/once.py). Errors are shown next to the field they are about.

Money is typed in the currency's major units ("12.50") and stored in minor units (currencies.to_minor);
shown with currencies.format_money. Tax rates are typed in percent ("10" or "12.5") and stored in basis points.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from creditdesk import amounts, clock, currencies
from creditdesk.catalog import schemas as s
from creditdesk.catalog import service as catalog
from creditdesk.catalog.models import PRODUCT_KINDS, PricePlan, TaxRate
from creditdesk.credits import credit_types
from creditdesk.errors import CreditdeskError, InvalidInput, NotPermitted
from creditdesk.repository import get_in_workspace
from creditdesk.web import forms, once
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

KIND_LABELS = {"physical_good": "Physical good", "service": "Service", "one_time_service": "One-time service",
               "credit_package": "Credit package", "subscription_service": "Subscription service"}
EXPIRY_LABELS = {"none": "Never expires", "fixed_date": "On a fixed date each year",
                 "months_after_purchase": "N months after purchase"}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
_DECIMAL = re.compile(r"^\d{1,15}(\.\d{1,6})?$")


class FieldErrors(InvalidInput):
    """Form errors by field name ("" for the form as a whole)."""

    code = "invalid_form"

    def __init__(self, errors: dict[str, str]):
        super().__init__("Some fields need attention.")
        self.errors = errors


def errors_of(exc: CreditdeskError) -> dict[str, str]:
    """Where each message goes: a field the error names, else the top of the form."""
    if isinstance(exc, FieldErrors):
        return exc.errors
    field = exc.details.get("field")
    return {str(field) if field else "": exc.message}


def validated(model: type[BaseModel], data: dict):
    """Build a request schema from form values; each schema error is placed next to its field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
            if err.get("type") == "string_pattern_mismatch":  # the catalogue's patterns are all codes
                message = "Use letters, digits and _ . : - only (no spaces), starting with a letter or digit."
            else:
                message = forms.sentence(err, forms.label_of(loc))
            errors.setdefault(".".join(loc[:2]) if loc[:1] == ["credit_package"] else (loc[0] if loc else ""),
                              message)
        raise FieldErrors(errors) from None


def parse_money(text: str, currency: str, *, field: str) -> int:
    """'12.50' AUD -> 1250, by currencies.to_minor (more decimals than the currency has: refused, not rounded)."""
    raw = (text or "").strip().replace(",", "")
    if not _DECIMAL.match(raw):
        raise FieldErrors({field: f"Type an amount like 12.50 ({currency})."})
    try:
        return currencies.to_minor(Decimal(raw), currency)
    except InvalidInput as exc:
        raise FieldErrors({field: exc.message}) from None


def parse_percent(text: str, *, field: str) -> int:
    """'10' -> 1000 basis points, '12.5' -> 1250; at most two decimals."""
    raw = (text or "").strip().removesuffix("%").strip()
    try:
        value = Decimal(raw) * 100
    except InvalidOperation:
        raise FieldErrors({field: "Type a percentage like 10 or 12.5."}) from None
    if not raw or not value.is_finite() or value != value.to_integral_value() or not 0 <= value <= 100_000:
        raise FieldErrors({field: "Type a percentage from 0 to 1000, with at most two decimals."})
    return int(value)


def percent(rate_bp: int) -> str:
    text = f"{Decimal(rate_bp) / 100:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " %"


def _page_context(user: WebUser) -> dict:
    return {"nav": "finance", "can_write": catalog.can_write_catalogue(user.actor), "kind_labels": KIND_LABELS,
            "format_money": currencies.format_money, "percent": percent}


def _write(request: Request, user: WebUser, form: FormData, action, url: str, flash: str) -> Response:
    """One catalogue change through the form's one-time key; errors come back for the form to show. `action`
    may return the page to go to instead of `url` (a new price plan's own page)."""
    catalog.require_catalogue_admin(user.actor)

    def run(session):
        return once.Done(action(session) or url, flash)
    return once.run(request, user, form, run)


@router.get("/catalogue", response_class=HTMLResponse)
def catalogue_home(request: Request, user: WebUser = Depends(current_user)):
    return products_page(request, user)


# --- products ------------------------------------------------------------------------------------

@router.get("/catalogue/products", response_class=HTMLResponse)
def products_page(request: Request, user: WebUser = Depends(current_user)):
    params = request.query_params
    filters = {"q": (params.get("q") or "").strip()[:200], "kind": params.get("kind") or "",
               "active": params.get("active") or ""}
    kwargs = {"q": filters["q"] or None, "kind": filters["kind"] if filters["kind"] in PRODUCT_KINDS else None,
              "active": {"yes": True, "no": False}.get(filters["active"])}
    with reading(db_of(request)) as session:
        page = catalog.list_products(session, actor=user.actor, limit=100, cursor=params.get("cursor") or None,
                                     **kwargs)
        rows = catalog.products_out(session, page.items)
        from creditdesk.web.presenters import credit_types

        types = credit_types(session, user.actor)  # a package's credits in their unit: "10.00 hours", not 1000
    return render(request, "catalogue_products.html", tab="products", products=rows, filters=filters,
                  next_cursor=page.next_cursor, credit_types=types, **_page_context(user))


def _product_choices(session, user: WebUser) -> dict:
    actor = user.actor
    return {"types": catalog.list_product_types(session, actor=actor, limit=500, active=True).items,
            "families": catalog.list_product_families(session, actor=actor, limit=500, active=True).items,
            "tax_classes": catalog.list_tax_classes(session, actor=actor, limit=500).items,
            "credit_types": credit_types.list_credit_types(session, actor=actor),
            "all_products": catalog.list_products(session, actor=actor, limit=500).items}


def _product_form(request: Request, user: WebUser, values: dict, *, product=None, errors: dict | None = None,
                  status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        choices = _product_choices(session, user)
    return render(request, "catalogue_product_form.html", tab="products", values=values, product=product,
                  errors=errors or {}, expiry_labels=EXPIRY_LABELS, months=MONTHS, status_code=status_code,
                  **choices, **_page_context(user))


def _product_values(form: FormData) -> dict:
    values = {name: forms.text(form, name, limit=10_000 if name == "description" else 300) for name in (
        "code", "name", "description", "kind", "type", "family", "unit", "tax_class", "credit_type",
        "credit_quantity", "expiry_policy", "expiry_month", "expiry_day", "expiry_months", "warranty_months")}
    values["active"] = form.get("active") == "on"
    values["applicable_product_codes"] = [str(v)[:100] for v in form.getlist("applicable_product_codes")][:200]
    return values


def _credit_package(session, user: WebUser, values: dict) -> dict | None:
    """The credit package fields of the form as the API takes them (the quantity typed in the credit type's
    own unit: 1.5 hours)."""
    if values["kind"] != "credit_package":
        return None
    errors: dict[str, str] = {}
    quantity = None
    types = {ct.code: ct for ct in credit_types.list_credit_types(session, actor=user.actor)}
    if values["credit_type"] not in types:
        errors["credit_package.credit_type"] = "Choose the credit type the package gives."
    else:
        try:
            quantity = amounts.parse_amount(values["credit_quantity"], types[values["credit_type"]].scale,
                                            label="Credit quantity")
        except InvalidInput as exc:
            errors["credit_package.credit_quantity"] = exc.message
    expiry: dict = {"kind": values["expiry_policy"] or "none"}
    for key, name, label in (("month", "expiry_month", "Month"), ("day", "expiry_day", "Day"),
                             ("months", "expiry_months", "Months")):
        if values[name] and (key != "months" or expiry["kind"] == "months_after_purchase") and \
                (key == "months" or expiry["kind"] == "fixed_date"):
            try:
                expiry[key] = forms.integer({name: values[name]}, name, label=label)
            except InvalidInput as exc:
                errors["credit_package.expiry"] = exc.message
    if errors:
        raise FieldErrors(errors)
    return {"credit_type": values["credit_type"], "credit_quantity": quantity,
            "applicable_product_codes": values["applicable_product_codes"], "expiry": expiry}


def _product_body(session, user: WebUser, values: dict, *, create: bool) -> BaseModel:
    body = {"name": values["name"], "description": values["description"], "type": values["type"] or None,
            "family": values["family"] or None, "unit": values["unit"], "tax_class": values["tax_class"] or None,
            "active": values["active"]}
    if values.get("kind") == "physical_good" or values.get("warranty_months"):
        body["warranty_months"] = values.get("warranty_months") or None
    package = _credit_package(session, user, values)
    if create:
        body.update(code=values["code"], kind=values["kind"] or None)
        if package is not None:
            body["credit_package"] = package
        return validated(s.ProductCreate, body)
    if package is not None:
        body["credit_package"] = package
    return validated(s.ProductUpdate, body)


@router.get("/catalogue/products/new", response_class=HTMLResponse)
def new_product_form(request: Request, user: WebUser = Depends(current_user)):
    catalog.require_catalogue_admin(user.actor, "create products")
    return _product_form(request, user, {"active": True, "kind": request.query_params.get("kind", "")[:40],
                                         "expiry_policy": "none", "applicable_product_codes": []})


@router.post("/catalogue/products/new", response_class=HTMLResponse)
def new_product(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = _product_values(form)

    def action(session):
        catalog.create_product(session, _product_body(session, user, values, create=True), actor=user.actor)
    try:
        return _write(request, user, form, action, "/catalogue/products", f"Created product {values['code']}.")
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _product_form(request, user, values, errors=errors_of(exc), status_code=422)


def _values_of(product: s.ProductOut) -> dict:
    values = product.model_dump()
    package = product.credit_package
    values.update(credit_type="", credit_quantity="", expiry_policy="none", expiry_month="", expiry_day="",
                  expiry_months="", applicable_product_codes=[])
    if package is not None:
        values.update(credit_type=package.credit_type, credit_quantity=str(package.credit_quantity),
                      expiry_policy=package.expiry["kind"],
                      applicable_product_codes=package.applicable_product_codes,
                      **{f"expiry_{k}": str(v) for k, v in package.expiry.items() if k != "kind" and v is not None})
    return {k: ("" if v is None else v) for k, v in values.items()}


@router.get("/catalogue/products/{product_id}", response_class=HTMLResponse)
def product_page(product_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        product = catalog.product_out(session, catalog.get_product(session, user.workspace_id, product_id))
        scales = {ct.code: ct.scale for ct in credit_types.list_credit_types(session, actor=user.actor)}
    values = _values_of(product)
    if product.credit_package is not None:  # shown in the credit type's own unit
        values["credit_quantity"] = _plain(product.credit_package.credit_quantity,
                                           scales.get(product.credit_package.credit_type, 0))
    return _product_form(request, user, values, product=product)


def _plain(value: int, scale: int) -> str:
    return f"{Decimal(value).scaleb(-scale):f}"


@router.post("/catalogue/products/{product_id}", response_class=HTMLResponse)
def edit_product(product_id: str, request: Request, user: WebUser = Depends(current_user),
                 form: FormData = Depends(csrf_form)):
    with reading(db_of(request)) as session:
        product = catalog.product_out(session, catalog.get_product(session, user.workspace_id, product_id))
    values = {**_product_values(form), "code": product.code, "kind": product.kind}

    def action(session):
        catalog.update_product(session, product.id, _product_body(session, user, values, create=False),
                               actor=user.actor)
    try:
        return _write(request, user, form, action, "/catalogue/products", f"Saved product {product.code}.")
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _product_form(request, user, values, product=product, errors=errors_of(exc), status_code=422)


# --- price plans ---------------------------------------------------------------------------------

def _plans_page(request: Request, user: WebUser, *, values: dict | None = None, errors: dict | None = None,
                status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        plans = catalog.list_price_plans(session, actor=user.actor, limit=500).items
    return render(request, "catalogue_plans.html", tab="plans", plans=plans, values=values or {"active": True},
                  errors=errors or {}, status_code=status_code, **_page_context(user))


@router.get("/catalogue/price-plans", response_class=HTMLResponse)
def plans_page(request: Request, user: WebUser = Depends(current_user)):
    return _plans_page(request, user)


@router.post("/catalogue/price-plans/new", response_class=HTMLResponse)
def new_plan(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {"code": forms.text(form, "code", limit=300), "name": forms.text(form, "name", limit=300),
              "currency": forms.text(form, "currency", limit=10).upper(), "is_default": form.get("is_default") == "on",
              "active": form.get("active") == "on"}

    def action(session):  # on to the new plan's prices
        plan = catalog.create_price_plan(session, validated(s.PricePlanCreate, values), actor=user.actor)
        return f"/catalogue/price-plans/{plan.id}"
    try:
        return _write(request, user, form, action, "/catalogue/price-plans",
                      f"Created price plan {values['code']}: now set its prices.")
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _plans_page(request, user, values=values, errors=errors_of(exc), status_code=422)


def _plan_page(request: Request, user: WebUser, plan_id: str, *, errors: dict | None = None,
               entered: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        plan = catalog.get_price_plan(session, user.workspace_id, plan_id)
        products = catalog.products_out(session, catalog.list_products(session, actor=user.actor, limit=500).items)
        prices, cursor = {}, None
        while True:
            page = catalog.list_prices(session, actor=user.actor, plan_id=plan.id, limit=500, cursor=cursor)
            prices.update({price.product_id: price.unit_price for price, _code in page.items})
            cursor = page.next_cursor
            if not cursor:
                break
    exponent = currencies.minor_units(plan.currency)
    shown = {pid: _plain(amount, exponent) for pid, amount in prices.items()}
    shown.update(entered or {})
    return render(request, "catalogue_plan.html", tab="plans", plan=plan, products=products, prices=prices,
                  shown=shown, errors=errors or {}, status_code=status_code, **_page_context(user))


@router.get("/catalogue/price-plans/{plan_id}", response_class=HTMLResponse)
def plan_page(plan_id: str, request: Request, user: WebUser = Depends(current_user)):
    return _plan_page(request, user, plan_id)


@router.post("/catalogue/price-plans/{plan_id}", response_class=HTMLResponse)
def edit_plan(plan_id: str, request: Request, user: WebUser = Depends(current_user),
              form: FormData = Depends(csrf_form)):
    values = {"name": forms.text(form, "name", limit=300), "is_default": form.get("is_default") == "on",
              "active": form.get("active") == "on"}

    def action(session):
        catalog.update_price_plan(session, plan_id, validated(s.PricePlanUpdate, values), actor=user.actor)
    try:
        return _write(request, user, form, action, f"/catalogue/price-plans/{plan_id}", "Saved the price plan.")
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _plan_page(request, user, plan_id, errors={f"plan.{k}": v for k, v in errors_of(exc).items()},
                          status_code=422)


@router.post("/catalogue/price-plans/{plan_id}/prices", response_class=HTMLResponse)
def set_price(plan_id: str, request: Request, user: WebUser = Depends(current_user),
              form: FormData = Depends(csrf_form)):
    product_id = forms.text(form, "product_id", limit=40)
    entered = forms.text(form, "unit_price", limit=40)
    with reading(db_of(request)) as session:
        plan = get_in_workspace(session, PricePlan, user.workspace_id, plan_id, label="price plan")
        product = catalog.get_product(session, user.workspace_id, product_id)

    def action(session):
        amount = parse_money(entered, plan.currency, field="unit_price")
        catalog.set_price(session, plan.id, validated(s.PriceSet, {"product": product.id, "unit_price": amount}),
                          actor=user.actor)
    try:
        return _write(request, user, form, action, f"/catalogue/price-plans/{plan.id}#price-{product.id}",
                      f"{product.name}: {entered} {plan.currency} in {plan.name}.")
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        message = next(iter(errors_of(exc).values()))
        return _plan_page(request, user, plan.id, errors={product.id: message}, entered={product.id: entered},
                          status_code=422)


# --- taxes ---------------------------------------------------------------------------------------

def _taxes_page(request: Request, user: WebUser, *, errors: dict | None = None, values: dict | None = None,
                status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        classes = catalog.list_tax_classes(session, actor=user.actor, limit=500).items
        rates: dict[str, list[TaxRate]] = {}
        for rate in catalog.list_tax_rates(session, actor=user.actor, limit=500).items:
            rates.setdefault(rate.tax_class_id, []).append(rate)
        in_force = {c.id: catalog.rate_in_force(session, user.workspace_id, c.id, _today()) for c in classes}
    for listed in rates.values():
        listed.sort(key=lambda r: r.valid_from, reverse=True)
    return render(request, "catalogue_taxes.html", tab="taxes", classes=classes, rates=rates, in_force=in_force,
                  errors=errors or {}, values=values or {}, status_code=status_code, **_page_context(user))


def _today():
    return clock.now().date()


@router.get("/catalogue/taxes", response_class=HTMLResponse)
def taxes_page(request: Request, user: WebUser = Depends(current_user)):
    return _taxes_page(request, user)


@router.post("/catalogue/tax-classes/new", response_class=HTMLResponse)
def new_tax_class(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {"code": forms.text(form, "code", limit=300), "name": forms.text(form, "name", limit=300)}

    def action(session):
        catalog.create_tax_class(session, validated(s.TaxClassCreate, values), actor=user.actor)
    try:
        return _write(request, user, form, action, "/catalogue/taxes", f"Created tax class {values['code']}.")
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _taxes_page(request, user, errors={f"class.{k}": v for k, v in errors_of(exc).items()},
                           values={"class": values}, status_code=422)


@router.post("/catalogue/tax-rates/new", response_class=HTMLResponse)
def new_tax_rate(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {"tax_class": forms.text(form, "tax_class", limit=100), "rate": forms.text(form, "rate", limit=40),
              "inclusive": form.get("inclusive") == "on", "valid_from": forms.text(form, "valid_from", limit=40)}

    def action(session):
        body = {"tax_class": values["tax_class"], "rate_bp": parse_percent(values["rate"], field="rate_bp"),
                "inclusive": values["inclusive"], "valid_from": values["valid_from"]}
        catalog.create_tax_rate(session, validated(s.TaxRateCreate, body), actor=user.actor)
    try:
        return _write(request, user, form, action, "/catalogue/taxes",
                      f"Added a rate of {values['rate']} % to {values['tax_class']} from {values['valid_from']}.")
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _taxes_page(request, user, errors={f"rate.{k}": v for k, v in errors_of(exc).items()},
                           values={"rate": values}, status_code=422)


# --- product types and families ------------------------------------------------------------------

def _types_page(request: Request, user: WebUser, *, errors: dict | None = None, values: dict | None = None,
                status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        types = catalog.list_product_types(session, actor=user.actor, limit=500).items
        families = catalog.list_product_families(session, actor=user.actor, limit=500).items
    return render(request, "catalogue_types.html", tab="types", types=types, families=families,
                  errors=errors or {}, values=values or {}, status_code=status_code, **_page_context(user))


@router.get("/catalogue/types", response_class=HTMLResponse)
def types_page(request: Request, user: WebUser = Depends(current_user)):
    return _types_page(request, user)


@router.post("/catalogue/product-types/new", response_class=HTMLResponse)
def new_product_type(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {"code": forms.text(form, "code", limit=300), "name": forms.text(form, "name", limit=300),
              "kind": forms.text(form, "kind", limit=40)}

    def action(session):
        catalog.create_product_type(session, validated(s.ProductTypeCreate, values), actor=user.actor)
    try:
        return _write(request, user, form, action, "/catalogue/types", f"Created product type {values['code']}.")
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _types_page(request, user, errors={f"type.{k}": v for k, v in errors_of(exc).items()},
                           values={"type": values}, status_code=422)


@router.post("/catalogue/product-families/new", response_class=HTMLResponse)
def new_product_family(request: Request, user: WebUser = Depends(current_user),
                       form: FormData = Depends(csrf_form)):
    values = {"code": forms.text(form, "code", limit=300), "name": forms.text(form, "name", limit=300)}

    def action(session):
        catalog.create_product_family(session, validated(s.ProductFamilyCreate, values), actor=user.actor)
    try:
        return _write(request, user, form, action, "/catalogue/types", f"Created product family {values['code']}.")
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _types_page(request, user, errors={f"family.{k}": v for k, v in errors_of(exc).items()},
                           values={"family": values}, status_code=422)
