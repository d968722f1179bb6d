"""Small helpers to read posted forms and turn schema errors into messages people can act on."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from creditdesk import amounts
from creditdesk.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

FIELD_LABELS = {
    "status_label": "Status label", "notes": "Special notes", "name": "Name", "quantity": "Quantity",
    "credit_type": "Credit type", "price_paid": "Price paid", "currency": "Currency", "reason": "Reason",
    "expiry_months": "Expiry in months", "priority": "Priority", "product_codes": "Products",
    "external_ref": "External reference", "holder": "Holder", "amount": "Amount", "product_code": "Product",
    "billing.name": "Billing name", "billing.address": "Billing address", "billing.email": "Billing email",
    "billing.tax_id": "Billing tax id", "to": "To (phone number)", "body": "Message",
}


def sentence(err: dict, label: str) -> str:
    """One pydantic error as a person reads it, about the field called `label`: the one place the back office
    words schema errors (never "Input should be ..."), used by every form."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return f"{label} is required."
    if kind == "string_too_short":
        return f"{label} needs at least {ctx.get('min_length')} characters."
    if kind == "string_too_long":
        return f"{label} can have at most {ctx.get('max_length')} characters."
    if kind == "too_long":
        return f"{label}: choose at most {ctx.get('max_length')}."
    if kind == "too_short":
        return f"{label}: choose at least {ctx.get('min_length')}."
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{label} must be a whole number, like 14."
    if kind in ("decimal_parsing", "float_parsing", "decimal_type", "float_type"):
        return f"{label} must be a number, like 12.50."
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = ctx.get("gt", ctx.get("ge", ctx.get("lt", ctx.get("le"))))
        words = {"greater_than": "more than", "greater_than_equal": "at least", "less_than": "less than",
                 "less_than_equal": "at most"}[kind]
        return f"{label} must be {words} {bound}."
    if kind in ("date_parsing", "date_from_datetime_parsing", "date_type", "datetime_parsing", "datetime_type"):
        return f"{label} is not a date (use the date picker, or YYYY-MM-DD)."
    if kind in ("bool_parsing", "bool_type"):
        return f"{label}: tick the box or leave it empty."
    if kind == "value_error" and "email" in str(err.get("msg", "")):
        return f"{label} is not an email address (like name@example.com)."
    if kind == "value_error":
        return str(err.get("msg", "")).removeprefix("Value error, ") or f"{label} is not valid."
    if kind in ("literal_error", "enum"):
        return f"{label}: choose from the list."
    return f"{label} is not valid."


def label_of(loc: list[str]) -> str:
    """A field's label for a message: the known label, else its name in words ("warning_days" -> "Warning
    days")."""
    if not loc:
        return "This field"
    return FIELD_LABELS.get(".".join(loc[:2])) or FIELD_LABELS.get(loc[0]) or loc[-1].replace("_", " ").capitalize()


def validated(model: type[M], **data: Any) -> M:
    """Build a request schema from form values; a schema error becomes one readable InvalidInput."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            label = (FIELD_LABELS.get(".".join(loc[:2])) or FIELD_LABELS.get(loc[0], loc[0].replace("_", " ").capitalize())
                     if loc else "Input")
            messages.append(sentence(err, label))
        raise InvalidInput("; ".join(messages), code="invalid_form") from None


def text(form, name: str, *, limit: int = 10_000) -> str:
    value = form.get(name)
    return str(value).strip()[:limit] if value is not None else ""


def optional(form, name: str) -> str | None:
    value = text(form, name)
    return value or None


def integer(form, name: str, *, label: str, default: int | None = None) -> int | None:
    """A whole number (SMS quantities, priority, months), read by the one amount parser: int() would take
    '1_000', digits of other scripts and thousands of digits."""
    value = text(form, name, limit=amounts.MAX_LENGTH + 1)
    if not value:
        return default
    return amounts.parse_amount(value, 0, label=label, allow_zero=True, signed=True)


def holder_value(value: str) -> tuple[str, str | None]:
    """A holder picker value "kind:id" ("workspace:" for the pool)."""
    kind, _, id_ = (value or "").partition(":")
    if kind not in ("office", "user", "customer", "workspace"):
        raise InvalidInput("Choose a holder.", code="holder_required")
    if kind != "workspace" and not id_:
        raise InvalidInput("Choose a holder.", code="holder_required")
    return kind, (id_ or None) if kind != "workspace" else None


# Minor units per currency: most have 2 decimals; these differ (ISO 4217).
CURRENCY_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "UGX": 0, "XAF": 0, "XOF": 0,
                      "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3}


def currency_exponent(code: str | None) -> int:
    return CURRENCY_EXPONENTS.get((code or "").upper(), 2)
