"""Small helpers to read posted forms and turn schema errors into messages people can act on."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from creditdesk import amounts
from creditdesk.errors import CreditdeskError, InvalidInput
from creditdesk.parties.models import PERMISSIONS

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
        said = str(err.get("msg", "")).removeprefix("Value error, ").rstrip(".")
        if not said:
            return f"{label} is not valid."
        if said[0].islower():  # a validator's words about the value ("a phone number: ..."): name the field
            return f"{label} must be {said}." if said.startswith(("a ", "an ")) else f"{label}: {said}."
        return said + "."
    if kind == "unknown_currency":
        return f"{label}: {ctx.get('value', 'this')} is not a currency code (for example AUD, EUR, USD)."
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


def schema_errors(model: type[M], data: dict, *, fields: dict[str, str] | None = None,
                  labels: dict[str, str] | None = None) -> tuple[M | None, dict[str, str]]:
    """Build a request schema from form values, or say what is wrong with them field by field: each schema error
    in words (`sentence`), keyed by the form field it is about. `fields` maps a schema location ("billing.email",
    "for") to the form's field name (else the location's first part is the name; "" is the form as a whole);
    `labels` names the fields a message speaks of, where FIELD_LABELS does not fit the form."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        fields, labels, errors = fields or {}, labels or {}, {}
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
            name = fields.get(".".join(loc), fields.get(loc[0], loc[0])) if loc else ""
            errors.setdefault(name, sentence(err, labels.get(name) or label_of(loc)))
        return None, errors


def placed(exc: CreditdeskError, by_code: dict[str, str] | None = None, *, fields: dict[str, str] | None = None,
           words: dict[str, str] | None = None) -> dict[str, str]:
    """Where a service's refusal goes on a form, in plain words: next to the field it names (details["field"],
    renamed by `fields` to the form's name) or the one its code is about (`by_code`), else the top (""). `words`
    says some refusals the form's own way, by code (an unknown id: "choose from the list")."""
    field = exc.details.get("field")
    if field:
        name = (fields or {}).get(str(field), str(field))
    else:
        name = (by_code or {}).get(exc.code, "")
    return {name: (words or {}).get(exc.code) or plain(exc.message)}


# Services word their refusals for API clients too: an aside naming an endpoint or a JSON field to set
# ("(agree_to_conditions: true; the conditions are in GET /v1/sms/settings)"), a permission by its code.
_API_ASIDE = re.compile(r"\s*\((?=[^()]*(?:/v1/|\b[a-z]+_[a-z_]+: ))[^()]*\)")
_ENDPOINT = re.compile(r"\b(?:(?:GET|POST|PUT|PATCH|DELETE) )?/v1/[\w/{}.-]*")
_PERMISSION = re.compile(r"\b(" + "|".join(map(re.escape, PERMISSIONS)) + r")\b")


def plain(message: str) -> str:
    """A service's message as a person reads it on a form: without the API's asides, endpoints said as "the
    API", permissions by the label the Users page shows ("Send SMS", not send_sms)."""
    from creditdesk.web.people import PERMISSION_LABELS  # the one list of labels (that module imports this one)

    text = _API_ASIDE.sub("", message)
    text = _ENDPOINT.sub("the API", text)
    return _PERMISSION.sub(lambda m: f"“{PERMISSION_LABELS.get(m.group(1), m.group(1))}”", text)


def worded(exc: CreditdeskError) -> CreditdeskError:
    """The same refusal, its message in plain words (for the error page a refused form shows)."""
    exc.message = plain(exc.message)
    exc.args = (exc.message,)
    return exc


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
