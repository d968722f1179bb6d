"""Line maths: net, tax and gross of one line, rounded once per line, half-up (catalog/lines.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditdesk.catalog.lines import Discount, compute_line
from creditdesk.currencies import round_half_up
from creditdesk.errors import InvalidInput


def totals(*args, **kwargs):
    line = compute_line(*args, **kwargs)
    return line.net, line.tax, line.gross


def test_exclusive_rate_adds_tax_on_the_line_net():
    assert totals(1000, 3, rate_bp=1000) == (3000, 300, 3300)
    # 3 x 3.33 = 9.99 net; 10 % of 9.99 = 0.999 -> 1.00 (rounded once, on the line, not 0.33 x 3 = 0.99).
    assert totals(333, 3, rate_bp=1000) == (999, 100, 1099)


def test_inclusive_rate_takes_the_tax_out_of_the_line_gross():
    assert totals(1100, 1, rate_bp=1000, inclusive=True) == (1000, 100, 1100)
    # 9.99 gross at 10 % inclusive: tax 9.99 / 11 = 0.9082 -> 0.91, net 9.08.
    assert totals(333, 3, rate_bp=1000, inclusive=True) == (908, 91, 999)


def test_half_up_once_per_line():
    # 0.5 of a cent rounds up: 1.5 x 1 cent = 1.5 -> 2; tax 10 % of 2 = 0.2 -> 0.
    assert totals(1, "1.5", rate_bp=1000) == (2, 0, 2)
    # 12.5 % of 4 cents = 0.5 -> 1.
    assert totals(4, 1, rate_bp=1250) == (4, 1, 5)
    # Per unit it would be 0.125 x 3 = 0 cents each: per line it is 3 x 4 = 12 cents, 1.5 -> 2 tax.
    assert totals(4, 3, rate_bp=1250) == (12, 2, 14)


def test_decimal_quantities_up_to_three_places():
    assert totals(10000, "1.25") == (12500, 0, 12500)
    assert totals(999, Decimal("0.001")) == (1, 0, 1)  # 0.999 cents -> 1
    assert totals(333, "0.125", rate_bp=1000) == (42, 4, 46)  # 41.625 -> 42; 4.2 -> 4
    with pytest.raises(InvalidInput) as err:
        compute_line(100, "1.2345")
    assert err.value.code == "invalid_quantity"


def test_discounts():
    line = compute_line(1000, 2, rate_bp=1000, discount=Discount("percent", 1500))
    assert (line.net, line.tax, line.gross, line.discount) == (1700, 170, 1870, 300)
    line = compute_line(1000, 2, rate_bp=1000, discount=Discount("amount", 250))
    assert (line.net, line.tax, line.gross, line.discount) == (1750, 175, 1925, 250)
    line = compute_line(1100, 1, rate_bp=1000, inclusive=True, discount=Discount("amount", 1100))
    assert (line.net, line.tax, line.gross) == (0, 0, 0)


@pytest.mark.parametrize("args,kwargs,code", [
    ((-1, 1), {}, "invalid_unit_price"),
    ((1.5, 1), {}, "invalid_unit_price"),
    ((100, 0), {}, "invalid_quantity"),
    ((100, -2), {}, "invalid_quantity"),
    ((100, 1.5), {}, "invalid_quantity"),
    ((100, "abc"), {}, "invalid_quantity"),
    ((100, "NaN"), {}, "invalid_quantity"),
    ((100, True), {}, "invalid_quantity"),
    ((100, 1), {"rate_bp": -1}, "invalid_tax_rate"),
    ((100, 1), {"rate_bp": 100_001}, "invalid_tax_rate"),
    ((100, 1), {"discount": Discount("percent", 10_001)}, "invalid_discount"),
    ((100, 1), {"discount": Discount("amount", 101)}, "invalid_discount"),
    ((100, 1), {"discount": Discount("amount", -1)}, "invalid_discount"),
    ((100, 1), {"discount": Discount("coupon", 1)}, "invalid_discount"),
])
def test_bad_input_is_refused_with_a_code(args, kwargs, code):
    with pytest.raises(InvalidInput) as err:
        compute_line(*args, **kwargs)
    assert err.value.code == code


# --- properties -----------------------------------------------------------------------------------------

prices = st.integers(min_value=0, max_value=10**12)
quantities = st.one_of(st.integers(min_value=1, max_value=10**6),
                       st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3))
rates = st.integers(min_value=0, max_value=100_000)
discounts = st.one_of(st.none(), st.builds(Discount, st.just("percent"), st.integers(min_value=0, max_value=10_000)))


@settings(max_examples=400, deadline=None)
@given(prices, quantities, rates, st.booleans(), discounts)
def test_net_plus_tax_is_gross(unit_price, quantity, rate_bp, inclusive, discount):
    line = compute_line(unit_price, quantity, rate_bp=rate_bp, inclusive=inclusive, discount=discount)
    assert line.net + line.tax == line.gross
    assert 0 <= line.tax and 0 <= line.net <= line.gross


@settings(max_examples=400, deadline=None)
@given(prices, quantities, rates, st.booleans(), discounts)
def test_each_side_follows_its_rule(unit_price, quantity, rate_bp, inclusive, discount):
    """Exclusive: net is the line rounded once, tax is the rate of net rounded once. Inclusive: gross is the line
    rounded once, tax is gross x rate / (1 + rate) rounded once. Either way the tax is the rate of the net to
    within half a minor unit (exclusive) or half a unit times (1 + rate) (inclusive: the net carries the tax's
    rounding, so at rates up to 100 % within one minor unit)."""
    line = compute_line(unit_price, quantity, rate_bp=rate_bp, inclusive=inclusive, discount=discount)
    amount = Decimal(unit_price) * Decimal(str(quantity))
    if discount is not None:
        amount -= amount * discount.value / Decimal(10_000)
    if inclusive:
        assert line.gross == round_half_up(amount)
        assert line.tax == round_half_up(Decimal(line.gross) * rate_bp / (Decimal(10_000) + rate_bp))
    else:
        assert line.net == round_half_up(amount)
        assert line.tax == round_half_up(Decimal(line.net) * rate_bp / Decimal(10_000))
    off = abs(Decimal(line.net) * rate_bp / Decimal(10_000) - line.tax)
    assert off <= (Decimal("0.5") * (1 + Decimal(rate_bp) / 10_000) if inclusive else Decimal("0.5"))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=1000), rates)
def test_inclusive_and_exclusive_agree(net_price, quantity, rate_bp):
    """An exclusive line, then an inclusive line priced at its gross, gives back the same net and tax when the
    exclusive tax was exact, and otherwise the same gross with a tax at most one minor unit apart."""
    exclusive = compute_line(net_price, quantity, rate_bp=rate_bp)
    inclusive = compute_line(exclusive.gross, 1, rate_bp=rate_bp, inclusive=True)
    assert inclusive.gross == exclusive.gross
    assert abs(inclusive.tax - exclusive.tax) <= 1
    if (exclusive.net * rate_bp) % 10_000 == 0:
        assert (inclusive.net, inclusive.tax) == (exclusive.net, exclusive.tax)
