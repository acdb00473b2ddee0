"""Rules 1, 2, 3, 5, 6 and 9 of docs/pricing.md, and how CDR periods are read."""

from decimal import Decimal
from fractions import Fraction

import pytest

from tariffs.pricing.engine import price_session
from tariffs.pricing.errors import PricingInputError
from tariffs.pricing.ocpi import loads, parse_tariff

from .helpers import (
    UTC,
    cdr,
    costs,
    element,
    energy,
    flat,
    parking,
    period,
    price,
    tariff,
    tariff_data,
    time_,
)

START = "2024-03-04T10:00:00Z"


def one_hour(**dimensions):
    return cdr(START, "2024-03-04T11:00:00Z", period(START, **dimensions))


# --- Rule 1: exact decimals, rounded once ---------------------------------------------------------

def test_json_numbers_are_parsed_as_decimals_never_floats():
    data = loads('{"a": 1.005, "b": 3, "c": [0.1]}')
    assert data == {"a": Decimal("1.005"), "b": Decimal(3), "c": [Decimal("0.1")]}
    assert all(type(v) is Decimal for v in (data["a"], data["b"], data["c"][0]))


def test_a_price_that_floats_would_round_down_rounds_half_up():
    t = parse_tariff(loads('{"id": "T", "currency": "EUR", "elements": [{"price_components": '
                           '[{"type": "ENERGY", "price": 1.005, "step_size": 0}]}]}'))
    assert costs(price(t, one_hour(ENERGY=1))) == ("1.01", "1.01")  # float: 1.00499...


def test_amounts_are_rounded_once_at_the_end_not_per_period():
    t = tariff(element(energy("0.0625", step=0)))
    result = price(t, cdr(START, "2024-03-04T12:00:00Z",
                          period(START, ENERGY=1), period("2024-03-04T11:00:00Z", ENERGY=1)))
    assert [str(p.cost.excl_vat) for p in result.periods if p.dimension == "ENERGY"] == \
        ["0.06", "0.06"]
    assert str(result.total_energy_cost.excl_vat) == "0.13"  # 0.125, not 0.06 + 0.06


def test_total_is_the_exact_sum_of_the_dimensions_not_of_their_rounded_figures():
    t = tariff(element(energy("0.125", step=0), time_("0.125", step=0)))
    result = price(t, one_hour(ENERGY=1, TIME=1))
    assert str(result.total_energy_cost.excl_vat) == "0.13"
    assert str(result.total_time_cost.excl_vat) == "0.13"
    assert str(result.total_cost.excl_vat) == "0.25"


def test_time_costs_are_exact_thirds_of_an_hour_add_up():
    t = tariff(element(time_("0.10", step=0)))
    result = price(t, cdr(START, "2024-03-04T11:00:00Z", period(START, TIME=1),
                          period("2024-03-04T10:20:00Z", TIME=1),
                          period("2024-03-04T10:40:00Z", TIME=1)))
    assert result.exact_total_cost.excl_vat == Fraction(1, 10)
    assert str(result.total_cost.excl_vat) == "0.10"


def test_other_currencies_round_to_their_minor_unit():
    t = tariff(element(energy("12.5", step=0)), currency="JPY")
    result = price(t, cdr(START, "2024-03-04T11:00:00Z", period(START, ENERGY=1),
                          currency="JPY"))
    assert str(result.total_cost.excl_vat) == "13"


# --- Rule 2: which element prices a period --------------------------------------------------------

def test_the_first_element_with_the_dimension_whose_restrictions_hold_prices_it():
    t = tariff(element(energy("0.50"), start_time="12:00"), element(energy("0.30")),
               element(energy("0.10")))
    assert [p.element_index for p in price(t, one_hour(ENERGY=1)).periods
            if p.dimension == "ENERGY"] == [1]


def test_elements_without_a_component_of_the_dimension_do_not_block():
    t = tariff(element(time_("2.00")), element(energy("0.30")))
    result = price(t, one_hour(ENERGY=1, TIME=1))
    assert {p.dimension: p.element_index for p in result.periods} == {"ENERGY": 1, "TIME": 0}


def test_volume_without_a_matching_element_costs_nothing():
    t = tariff(element(energy("0.50"), start_time="12:00", end_time="14:00"))
    result = price(t, one_hour(ENERGY=10, TIME=1))
    assert costs(result) == ("0.00", "0.00")
    assert result.periods[0].element_index is None
    assert result.dimensions["ENERGY"].volume == 10
    assert result.dimensions["ENERGY"].billable == 0


def test_each_period_is_priced_by_the_element_active_at_its_start():
    t = tariff(element(energy("0.50"), start_time="10:30"), element(energy("0.30")))
    result = price(t, cdr(START, "2024-03-04T11:00:00Z", period(START, ENERGY=1),
                          period("2024-03-04T10:30:00Z", ENERGY=1)))
    assert [p.element_index for p in result.periods if p.dimension == "ENERGY"] == [1, 0]
    assert str(result.total_cost.excl_vat) == "0.80"


# --- Rule 3: FLAT ---------------------------------------------------------------------------------

def test_flat_fee_is_charged_once_whatever_the_number_of_periods():
    t = tariff(element(flat("1.00"), energy("0.10")))
    result = price(t, cdr(START, "2024-03-04T12:00:00Z", period(START, ENERGY=1),
                          period("2024-03-04T11:00:00Z", ENERGY=1)))
    assert str(result.total_fixed_cost.excl_vat) == "1.00"


def test_flat_fees_never_stack():
    t = tariff(element(flat("1.00")), element(flat("2.00"), energy("0.10")))
    assert str(price(t, one_hour(ENERGY=1)).total_fixed_cost.excl_vat) == "1.00"


def test_flat_fee_comes_from_the_element_that_holds_at_session_start():
    t = tariff(element(flat("3.00"), start_time="10:30"), element(flat("1.00")),
               element(energy("0.10")))
    # Starts at 10:00 and runs past 10:30: the later element adds nothing.
    result = price(t, cdr(START, "2024-03-04T11:00:00Z", period(START, ENERGY=1),
                          period("2024-03-04T10:45:00Z", ENERGY=1)))
    assert str(result.total_fixed_cost.excl_vat) == "1.00"
    later = price(t, cdr("2024-03-04T10:30:00Z", "2024-03-04T11:00:00Z",
                         period("2024-03-04T10:30:00Z", ENERGY=1)))
    assert str(later.total_fixed_cost.excl_vat) == "3.00"


def test_flat_fee_restricted_by_energy_is_checked_with_zero_energy_at_the_start():
    t = tariff(element(flat("5.00"), min_kwh=1), element(energy("0.10")))
    assert price(t, one_hour(ENERGY=20)).total_fixed_cost.excl_vat == 0


# --- Rule 5: step_size ----------------------------------------------------------------------------

def test_energy_step_of_1_wh_bills_115_2_wh_as_116_wh():
    t = tariff(element(energy("0.25", step=1)))
    result = price(t, one_hour(ENERGY="0.1152"))
    assert result.dimensions["ENERGY"].billed == Fraction(116, 1000)
    assert result.exact_total_cost.excl_vat == Fraction(29, 1000)


@pytest.mark.parametrize("step,billed_wh", [(25, 125), (500, 500), (0, Fraction(1152, 10))])
def test_energy_step_size_multiplies_wh(step, billed_wh):
    t = tariff(element(energy("0.25", step=step)))
    result = price(t, one_hour(ENERGY="0.1152"))
    assert result.dimensions["ENERGY"].billed * 1000 == billed_wh


def test_step_of_the_last_active_component_rounds_the_billable_total_at_its_price():
    t = tariff(element(time_("1.00", step=3600), end_time="10:30"),
               element(time_("4.00", step=600)))
    result = price(t, cdr(START, "2024-03-04T10:41:00Z", period(START, TIME=1),
                          period("2024-03-04T10:30:00Z", TIME=1)))
    # 41 min billable → 50 min: the 9 extra minutes at 4.00/h (the 10:30 component).
    line = [line for line in result.lines if line.element_index == 1][0]
    assert line.billed_quantity * 60 == 20
    assert str(result.total_cost.excl_vat) == "1.83"  # 0.50 + 20 min × 4.00/h = 1.8333


def test_price_zero_volume_counts_in_the_billable_total():
    t = tariff(element(time_("0.00", step=900), max_duration=1200),
               element(time_("2.00", step=900)))
    result = price(t, cdr(START, "2024-03-04T10:35:00Z", period(START, TIME=1),
                          period("2024-03-04T10:20:00Z", TIME=1)))
    # billable 35 min (20 free + 15 paid) → 45 min: 10 extra minutes at 2.00/h.
    assert result.dimensions["TIME"].billable * 60 == 35
    assert result.dimensions["TIME"].billed * 60 == 45
    assert str(result.total_cost.excl_vat) == "0.83"


def test_unpriced_volume_is_not_billable_and_not_rounded():
    t = tariff(element(time_("6.00", step=1800), end_time="10:10"))
    result = price(t, cdr(START, "2024-03-04T11:00:00Z", period(START, TIME=1),
                          period("2024-03-04T10:10:00Z", TIME=1)))
    assert result.dimensions["TIME"].billable * 60 == 10
    assert result.dimensions["TIME"].billed * 60 == 30
    assert str(result.total_cost.excl_vat) == "3.00"


def test_step_extra_uses_the_vat_of_the_component_that_rounds():
    t = tariff(element(time_("6.00", "0", 3600), end_time="10:30"),
               element(time_("6.00", "20", 3600)))
    result = price(t, cdr(START, "2024-03-04T10:40:00Z", period(START, TIME=1),
                          period("2024-03-04T10:30:00Z", TIME=1)))
    # 30 min at 0 % VAT; 10 min + 20 extra min at 20 % VAT.
    assert costs(result) == ("6.00", "6.60")


def test_parking_billed_means_only_parking_is_rounded():
    t = tariff(element(time_("6.00", step=3600), parking("6.00", step=3600)))
    result = price(t, cdr(START, "2024-03-04T10:20:00Z", period(START, ENERGY=1, TIME=1),
                          period("2024-03-04T10:10:00Z", PARKING_TIME=1)))
    assert result.dimensions["TIME"].billed * 60 == 10
    assert result.dimensions["PARKING_TIME"].billed == 1
    assert str(result.total_cost.excl_vat) == "7.00"


def test_parking_without_a_price_component_leaves_the_rounding_to_time():
    t = tariff(element(time_("6.00", step=3600)))
    result = price(t, cdr(START, "2024-03-04T10:20:00Z", period(START, ENERGY=1, TIME=1),
                          period("2024-03-04T10:10:00Z", PARKING_TIME=1)))
    assert result.dimensions["TIME"].billed == 1
    assert str(result.total_cost.excl_vat) == "6.00"


def test_parking_priced_at_zero_is_billed_and_takes_the_rounding():
    t = tariff(element(time_("6.00", step=3600), parking("0.00", step=3600)))
    result = price(t, cdr(START, "2024-03-04T10:20:00Z", period(START, ENERGY=1, TIME=1),
                          period("2024-03-04T10:10:00Z", PARKING_TIME=1)))
    assert str(result.total_cost.excl_vat) == "1.00"  # 10 minutes of charging, not 1 hour


def test_step_size_zero_means_no_rounding():
    t = tariff(element(time_("6.00", step=0)))
    result = price(t, cdr(START, "2024-03-04T10:00:01Z", period(START, TIME=1)))
    assert result.exact_total_cost.excl_vat == Fraction(6, 3600)


# --- Rule 6: VAT, min/max price -------------------------------------------------------------------

def test_vat_is_per_component():
    t = tariff(element(flat("1.00", "20"), energy("1.00", "10"), time_("1.00", "0")))
    assert costs(price(t, one_hour(ENERGY=1, TIME=1))) == ("3.00", "3.30")


def test_omitted_vat_means_no_vat_and_incl_equals_excl():
    t = tariff(element(energy("0.333")))
    result = price(t, one_hour(ENERGY=3))
    assert result.total_cost.incl_vat == result.total_cost.excl_vat == Decimal("1.00")
    assert parse_tariff(tariff_data(element(energy("1")))).elements[0] \
        .price_components[0].vat is None


def test_min_price_compares_the_exact_excl_vat_total():
    t = tariff(element(energy("0.995", "10")), min_price={"excl_vat": "0.995"})
    exactly = price(t, one_hour(ENERGY=1))
    assert exactly.price_limit is None  # not below
    assert exactly.exact_total_cost.excl_vat == Fraction(995, 1000)
    below = price(t, one_hour(ENERGY="0.999"))
    assert below.price_limit == "MIN_PRICE"
    assert below.exact_total_cost.excl_vat == Fraction(995, 1000)


def test_min_price_without_incl_vat_uses_the_sessions_vat_ratio():
    t = tariff(element(energy("0.25", "21")), min_price={"excl_vat": "1.00"})
    assert costs(price(t, one_hour(ENERGY=1))) == ("1.00", "1.21")


def test_min_price_without_incl_vat_and_nothing_priced_uses_the_tariffs_vat():
    uniform = tariff(element(energy("0.25", "21")), element(time_("1", "21")),
                     min_price={"excl_vat": "1.00"})
    assert costs(price(uniform, one_hour(TIME=0, PARKING_TIME=1))) == ("1.00", "1.21")
    mixed = tariff(element(energy("0.25", "9")), element(time_("1", "21")),
                   min_price={"excl_vat": "1.00"})
    assert costs(price(mixed, one_hour(PARKING_TIME=1))) == ("1.00", "1.21")  # the highest


def test_max_price_without_incl_vat_uses_the_sessions_vat_ratio():
    t = tariff(element(energy("1.00", "10"), flat("1.00", "20")),
               max_price={"excl_vat": "5.50"})
    result = price(t, one_hour(ENERGY=10))
    # 10.00 + 1.00 excl., 11.00 + 1.20 incl.: ratio 12.20 / 11.00; 5.50 × that = 6.10
    assert costs(result) == ("5.50", "6.10")
    assert result.price_limit == "MAX_PRICE"


def test_min_max_price_leave_the_dimension_totals_as_they_are():
    t = tariff(element(energy("1.00")), max_price={"excl_vat": "5", "incl_vat": "6"})
    result = price(t, one_hour(ENERGY=10))
    assert costs(result) == ("5.00", "6.00")
    assert str(result.total_energy_cost.excl_vat) == "10.00"


def test_min_price_above_max_price_is_an_invalid_tariff():
    with pytest.raises(PricingInputError, match="min_price"):
        tariff(element(energy("1")), min_price={"excl_vat": "5"}, max_price={"excl_vat": "4"})


# --- How CDR periods are read ---------------------------------------------------------------------

def test_time_volume_is_the_real_duration_of_the_period_not_the_rounded_dimension():
    # 7 minutes declared as 0.1167 h (420.12 s) must still bill 7 minutes with a 60 s step.
    t = tariff(element(time_("6.00", step=60)))
    result = price(t, cdr(START, "2024-03-04T10:07:00Z", period(START, TIME="0.1167")))
    assert str(result.total_cost.excl_vat) == "0.70"


def test_period_with_parking_time_is_parking_and_one_with_energy_is_charging():
    t = tariff(element(time_("1.00"), parking("10.00")))
    result = price(t, cdr(START, "2024-03-04T12:00:00Z",
                          period(START, ENERGY=5),                            # charging
                          period("2024-03-04T11:00:00Z", PARKING_TIME=1)))    # parking
    assert [p.dimension for p in result.periods] == ["ENERGY", "TIME", "PARKING_TIME"]
    assert str(result.total_cost.excl_vat) == "11.00"


def test_period_without_energy_or_time_dimensions_is_idle_parking():
    t = tariff(element(time_("1.00"), parking("10.00")))
    result = price(t, cdr(START, "2024-03-04T12:00:00Z", period(START, ENERGY=5),
                          period("2024-03-04T11:00:00Z", MAX_POWER=0)))
    assert [p.dimension for p in result.periods] == ["ENERGY", "TIME", "PARKING_TIME"]


def test_period_with_time_and_parking_is_shared_in_proportion():
    t = tariff(element(time_("1.00"), parking("10.00")))
    result = price(t, cdr(START, "2024-03-04T11:00:00Z",
                          period(START, ENERGY=5, TIME="0.75", PARKING_TIME="0.25")))
    assert result.dimensions["TIME"].volume == Fraction(3, 4)
    assert result.dimensions["PARKING_TIME"].volume == Fraction(1, 4)
    assert str(result.total_cost.excl_vat) == "3.25"


def test_period_with_time_parking_and_reservation_is_shared_in_proportion():
    t = tariff(element(time_("1.00"), parking("10.00")))
    result = price(t, cdr(START, "2024-03-04T11:00:00Z",
                          period(START, TIME="0.5", PARKING_TIME="0.25", RESERVATION_TIME="0.25")))
    assert result.dimensions["TIME"].volume == Fraction(1, 2)
    assert result.dimensions["PARKING_TIME"].volume == Fraction(1, 4)
    assert str(result.total_cost.excl_vat) == "3.00"


def test_reservation_time_periods_are_not_priced():
    t = tariff(element(time_("1.00"), parking("10.00")))
    result = price(t, cdr(START, "2024-03-04T12:00:00Z", period(START, RESERVATION_TIME=1),
                          period("2024-03-04T11:00:00Z", ENERGY=5, TIME=1)))
    assert str(result.total_cost.excl_vat) == "1.00"


def test_energy_is_per_period_not_cumulative():
    t = tariff(element(energy("1.00")))
    result = price(t, cdr(START, "2024-03-04T12:00:00Z", period(START, ENERGY=5),
                          period("2024-03-04T11:00:00Z", ENERGY=5)))
    assert result.total_energy == 10


def test_period_tariff_id_does_not_change_the_tariff_used():
    t = tariff(element(energy("1.00")))
    data = period(START, ENERGY=2)
    data["tariff_id"] = "OTHER"
    assert str(price(t, cdr(START, "2024-03-04T11:00:00Z", data)).total_cost.excl_vat) == "2.00"


def test_reported_totals_are_energy_session_hours_and_parking_hours():
    t = tariff(element(energy("1.00")))
    result = price(t, cdr(START, "2024-03-04T12:30:00Z", period(START, ENERGY="7.5"),
                          period("2024-03-04T12:00:00Z", PARKING_TIME="0.5")))
    assert (result.total_energy, result.total_time, result.total_parking_time) == \
        (Fraction(15, 2), Fraction(5, 2), Fraction(1, 2))


def test_energy_tariff_with_periods_that_carry_no_energy_is_refused():
    t = tariff(element(energy("1.00")))
    with pytest.raises(PricingInputError, match="no period has an ENERGY dimension"):
        price(t, cdr(START, "2024-03-04T11:00:00Z", period(START, TIME=1), total_energy=10))


def test_cdr_in_another_currency_than_the_tariff_is_refused():
    t = tariff(element(energy("1.00")))
    with pytest.raises(PricingInputError, match="currency"):
        price(t, cdr(START, "2024-03-04T11:00:00Z", period(START, ENERGY=1), currency="USD"))


def test_pricing_never_reads_the_clock_and_is_repeatable():
    t = tariff(element(energy("0.31", "21"), time_("1.2", "21", 60)))
    c = one_hour(ENERGY="12.345", TIME=1)
    assert price_session(t, c, UTC).to_json() == price_session(t, c, UTC).to_json()
