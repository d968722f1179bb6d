"""Currencies: ISO 4217 codes, their minor-unit scale, and money shown to people.

Money is stored as an integer number of the currency's minor units (cents for AUD, yen for JPY,
fils for KWD). The scale of each currency comes from the CLDR data babel ships (ISO 4217's
"minor unit" column), so 1234 AUD is 12.34 and 1234 JPY is 1,234.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel import numbers as babel_numbers

from creditdesk.errors import InvalidInput

# Codes that are not money one bills in (precious metals, testing, "no currency", SDR...).
_NOT_BILLABLE = frozenset({"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"})


@lru_cache(maxsize=None)
def _known() -> frozenset[str]:
    return frozenset(code for code in babel_numbers.list_currencies() if code not in _NOT_BILLABLE)


def known_codes() -> frozenset[str]:
    """The ISO 4217 codes creditdesk bills in (upper case)."""
    return _known()


def check_currency(code: str, *, field: str = "currency") -> str:
    """The ISO 4217 code, upper-cased, or InvalidInput(`unknown_currency`)."""
    value = (code or "").strip().upper()
    if len(value) != 3 or value not in _known():
        raise InvalidInput(f"{code!r} is not an ISO 4217 currency code (for example AUD, EUR, USD).",
                           code="unknown_currency", field=field)
    return value


@lru_cache(maxsize=None)
def minor_units(code: str) -> int:
    """Digits after the decimal point: 2 for AUD, 0 for JPY, 3 for KWD."""
    return int(babel_numbers.get_currency_precision(check_currency(code)))


def to_minor(amount: Decimal | str | int, code: str) -> int:
    """A decimal amount in major units as an integer of minor units; refuses more digits than the
    currency has (never rounds silently): `invalid_amount`."""
    value = Decimal(str(amount))
    scaled = value.scaleb(minor_units(code))
    if scaled != scaled.to_integral_value():
        raise InvalidInput(f"{amount} has more decimals than {code} has ({minor_units(code)}).",
                           code="invalid_amount", field="amount")
    return int(scaled)


def to_major(amount_minor: int, code: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-minor_units(code))


def round_half_up(value: Decimal) -> int:
    """An exact Decimal of minor units rounded once, half away from zero (2.5 -> 3, -2.5 -> -3)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_money(amount_minor: int, code: str, *, locale: str = "en_AU") -> str:
    """For people: `$1,234.50`, `€12.00`, `¥1,234` (the currency's own decimals)."""
    return babel_numbers.format_currency(to_major(amount_minor, code), code, locale=locale)
