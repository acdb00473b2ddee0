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


@given(st.integers(min_value=-10**15, max_value=10**15), st.integers(min_value=1, max_value=10**9),
       st.sampled_from(["EUR", "JPY", "KWD", None]))
def test_round_ratio_rounds_exactly_like_round_money(numerator, denominator, currency):
    from decimal import Context

    from emobility.money import round_ratio

    exact = Context(prec=80).divide(Decimal(numerator), Decimal(denominator))
    # 80 digits are enough for these magnitudes unless the ratio does not terminate; a value that
    # does not terminate is never exactly on a half, so its 80-digit form rounds the same way.
    expected = round_money(exact, currency)
    expected = expected if expected else abs(expected)  # round_ratio never gives "-0.00"
    assert str(round_ratio(numerator, denominator, currency)) == str(expected)


def test_round_ratio_half_goes_away_from_zero_and_never_shows_minus_zero():
    from emobility.money import round_ratio

    assert str(round_ratio(1005, 1000, "EUR")) == "1.01"
    assert str(round_ratio(-1005, 1000, "EUR")) == "-1.01"
    assert str(round_ratio(-1, 1000, "EUR")) == "0.00"
    assert str(round_ratio(5, 2, "JPY")) == "3"


@given(st.integers(min_value=-10**15, max_value=10**15), st.integers(min_value=1, max_value=10**9),
       st.sampled_from(["EUR", "JPY", "KWD", None]))
def test_ratio_formatter_writes_what_round_ratio_gives(numerator, denominator, currency):
    from emobility.money import ratio_formatter, round_ratio

    assert ratio_formatter(currency)(numerator, denominator) == \
        format(round_ratio(numerator, denominator, currency), "f")
