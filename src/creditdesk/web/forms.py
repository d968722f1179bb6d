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
            messages.append(f"{label}: {err.get('msg', 'invalid')}")
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
