"""Properties of the payment arithmetic (no database)."""

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from emobility.money import minor_unit
from payments.services.plans import add_months, split_amount

CURRENCIES = st.sampled_from(["EUR", "JPY", "KWD", "GBP"])


@given(units=st.integers(min_value=1, max_value=10**11), parts=st.integers(min_value=1,
                                                                           max_value=24),
       currency=CURRENCIES)
def test_instalments_add_up_exactly_and_differ_by_at_most_one_minor_unit(units, parts,
                                                                          currency):
    unit = Decimal(1).scaleb(-minor_unit(currency))
    amount = units * unit
    split = split_amount(amount, parts, currency)
    assert sum(split) == amount
    assert len(split) == parts
    assert max(split) - min(split) <= unit
    assert split == sorted(split, reverse=True)  # the odd units go to the first parts
    assert all(part == part.quantize(unit) and part >= 0 for part in split)


@given(day=st.dates(max_value=date(9000, 12, 31)), months=st.integers(min_value=0, max_value=36))
def test_a_month_later_is_the_same_day_or_the_months_last(day, months):
    later = add_months(day, months)
    assert (later.year * 12 + later.month) - (day.year * 12 + day.month) == months
    assert later.day == day.day or later.day < day.day and (
        add_months(later.replace(day=1), 1).toordinal() - later.toordinal() == 1)
