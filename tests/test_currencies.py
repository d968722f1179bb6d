from decimal import Decimal

import pytest

from creditdesk.currencies import check_currency, format_money, minor_units, round_half_up, to_major, to_minor
from creditdesk.errors import InvalidInput


def test_scale_comes_from_iso_4217():
    assert (minor_units("AUD"), minor_units("jpy"), minor_units("KWD")) == (2, 0, 3)


def test_unknown_and_non_billable_codes_are_refused_with_a_stable_code():
    for code in ("ABC", "XAU", "", "EURO"):
        with pytest.raises(InvalidInput) as err:
            check_currency(code)
        assert err.value.code == "unknown_currency"


def test_minor_units_round_trip_and_never_round_silently():
    assert to_minor("12.34", "AUD") == 1234 and to_major(1234, "AUD") == Decimal("12.34")
    assert to_minor("1234", "JPY") == 1234
    with pytest.raises(InvalidInput):
        to_minor("12.345", "AUD")


def test_half_up_rounding_is_away_from_zero():
    assert [round_half_up(Decimal(v)) for v in ("2.5", "2.4999", "-2.5", "0.5")] == [3, 2, -3, 1]


def test_money_for_people():
    assert format_money(123450, "AUD") == "$1,234.50"
