from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emobility.money import minor_unit, round_money


@pytest.mark.parametrize("amount,currency,expected", [
    ("1.005", "EUR", "1.01"), ("1.004999", "EUR", "1.00"), ("-1.005", "EUR", "-1.01"),
    ("2.5", "JPY", "3"), ("1.0005", "KWD", "1.001"), ("0.125", None, "0.13"),
])
def test_round_money_is_half_up_to_the_minor_unit(amount, currency, expected):
    assert round_money(Decimal(amount), currency) == Decimal(expected)
    assert str(round_money(Decimal(amount), currency)) == expected


def test_round_money_refuses_floats():
    with pytest.raises(TypeError):
        round_money(1.005, "EUR")


def test_unknown_currency_has_cents():
    assert minor_unit("XYZ") == 2


@given(st.decimals(min_value=-10**9, max_value=10**9, allow_nan=False, places=6))
def test_rounding_moves_an_amount_by_at_most_half_a_cent(amount):
    rounded = round_money(amount, "EUR")
    assert abs(rounded - amount) <= Decimal("0.005")
    assert rounded.as_tuple().exponent == -2
