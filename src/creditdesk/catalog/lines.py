"""The money of one line (invoice line, quote line): net, tax and gross from a unit price, a quantity, a
discount and a tax rate. Pure: no database, no currency (everything is in the currency's minor units).

The rule, rounded once per line, half-up (`currencies.round_half_up`, half away from zero):

1. amount = unit_price x quantity, less the discount, kept exact (a Decimal; never rounded per unit);
   a percentage discount takes `discount_bp` / 10000 of it, a fixed discount takes that many minor units.
2. Exclusive rate (the price is net of tax):
       net   = round(amount)
       tax   = round(net x rate_bp / 10000)
       gross = net + tax
   Inclusive rate (the price includes the tax):
       gross = round(amount)
       tax   = round(gross x rate_bp / (10000 + rate_bp))
       net   = gross - tax
   So the price side is rounded once, the tax once (on the rounded line total, as a tax invoice shows it),
   and the third figure is their sum or difference: net + tax == gross always, to the minor unit.

Quantities: a positive int, or a Decimal with at most 3 decimals (1.5 hours, 0.125 kg). More decimals are
refused (`invalid_quantity`), never rounded: a quantity someone typed is what they are billed for.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext

from creditdesk.currencies import round_half_up
from creditdesk.errors import InvalidInput

QUANTITY_DECIMALS = 3
MAX_QUANTITY = Decimal(10) ** 9
MAX_RATE_BP = 100_000  # 1000 %: anything higher is a typo, not a tax
BP = Decimal(10_000)


@dataclass(frozen=True)
class Discount:
    """`kind` percent: `value` in basis points of the line (1000 = 10 %); `kind` amount: `value` minor units
    off the line (on the price side: off the net for exclusive rates, off the gross for inclusive ones)."""

    kind: str  # percent | amount
    value: int


@dataclass(frozen=True)
class LineTotals:
    net: int
    tax: int
    gross: int
    discount: int  # what the discount took, in minor units (rounded for show; the totals use it exactly)


def check_quantity(quantity: int | Decimal | str) -> Decimal:
    """A positive quantity with at most 3 decimals, as an exact Decimal; InvalidInput(`invalid_quantity`)."""
    if isinstance(quantity, bool) or isinstance(quantity, float):
        raise InvalidInput("A quantity is an integer or a decimal string (floats are not exact).",
                           code="invalid_quantity", field="quantity")
    try:
        value = Decimal(str(quantity).strip()) if not isinstance(quantity, Decimal) else quantity
    except InvalidOperation:
        raise InvalidInput(f"{quantity!r} is not a quantity.", code="invalid_quantity", field="quantity") from None
    if not value.is_finite() or value <= 0:
        raise InvalidInput("The quantity must be more than zero.", code="invalid_quantity", field="quantity")
    if value > MAX_QUANTITY:
        raise InvalidInput("The quantity is too large.", code="invalid_quantity", field="quantity")
    if value != value.quantize(Decimal(1).scaleb(-QUANTITY_DECIMALS), rounding="ROUND_DOWN"):
        raise InvalidInput(f"A quantity has at most {QUANTITY_DECIMALS} decimals.", code="invalid_quantity",
                           field="quantity")
    return value


def compute_line(unit_price: int, quantity: int | Decimal | str, *, rate_bp: int = 0, inclusive: bool = False,
                 discount: Discount | None = None) -> LineTotals:
    """Net, tax and gross of one line in minor units, by the rule in this module's docstring.

    Refused (InvalidInput): a negative or non-integer unit price (`invalid_unit_price`), a quantity that is not
    positive or has more than 3 decimals (`invalid_quantity`), a rate outside 0..100000 bp (`invalid_tax_rate`),
    a percentage discount outside 0..10000 bp or a fixed discount below zero or above the line
    (`invalid_discount`)."""
    if type(unit_price) is not int or unit_price < 0:
        raise InvalidInput("The unit price is a whole number of minor units, zero or more.",
                           code="invalid_unit_price", field="unit_price")
    if type(rate_bp) is not int or not 0 <= rate_bp <= MAX_RATE_BP:
        raise InvalidInput(f"A tax rate is 0 to {MAX_RATE_BP} basis points.", code="invalid_tax_rate",
                           field="rate_bp")
    qty = check_quantity(quantity)
    with localcontext() as ctx:
        # Exact for every amount that fits (10**15 minor units x 10**9 with 3 decimals is 28 digits; the
        # divisions below need a few more before the one rounding).
        ctx.prec = 60
        return _compute(unit_price, qty, rate_bp, inclusive, discount)


def _compute(unit_price: int, qty: Decimal, rate_bp: int, inclusive: bool, discount: Discount | None) -> LineTotals:
    amount = Decimal(unit_price) * qty
    taken = Decimal(0)
    if discount is not None:
        if type(discount.value) is not int or discount.value < 0:
            raise InvalidInput("A discount is zero or more.", code="invalid_discount", field="discount")
        if discount.kind == "percent":
            if discount.value > 10_000:
                raise InvalidInput("A percentage discount is at most 10000 basis points (100 %).",
                                   code="invalid_discount", field="discount")
            taken = amount * discount.value / BP
        elif discount.kind == "amount":
            if discount.value > amount:
                raise InvalidInput("The discount is more than the line.", code="invalid_discount", field="discount")
            taken = Decimal(discount.value)
        else:
            raise InvalidInput("A discount is a percent or an amount.", code="invalid_discount", field="discount")
    amount -= taken
    if inclusive:
        gross = round_half_up(amount)
        tax = round_half_up(Decimal(gross) * rate_bp / (BP + rate_bp))
        net = gross - tax
    else:
        net = round_half_up(amount)
        tax = round_half_up(Decimal(net) * rate_bp / BP)
        gross = net + tax
    return LineTotals(net=net, tax=tax, gross=gross, discount=round_half_up(taken))
