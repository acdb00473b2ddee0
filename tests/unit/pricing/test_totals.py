"""Rule 7: a CDR with only totals is split into periods and priced like any other."""

from fractions import Fraction

import pytest

from tariffs.pricing.engine import price_segments, split_totals_into_periods
from tariffs.pricing.errors import PricingInputError

from .helpers import (
    AMSTERDAM,
    UTC,
    cdr,
    costs,
    element,
    energy,
    parking,
    period,
    price,
    tariff,
    time_,
    totals,
)

HOUR = 3_600_000_000


def test_charging_first_at_constant_power_then_parking_until_the_end():
    t = tariff(element(energy("0.30"), time_("1.00"), parking("2.00")))
    result = price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T13:00:00Z", 20, 3, 1))
    assert costs(result) == ("10.00", "10.00")  # 20 × 0.30 + 2 h × 1.00 + 1 h × 2.00
    assert result.total_parking_time == 1


def test_split_points_midnight_window_bounds_durations_and_charging_end():
    t = tariff(element(energy("0.50"), start_time="07:00", end_time="09:00"),
               element(time_("1.00"), max_duration=1800), element(energy("0.20")))
    segments = split_totals_into_periods(
        t, totals("2024-03-04T22:00:00Z", "2024-03-05T10:00:00Z", 12, 12, 4), UTC)
    starts = [s.offset_us / HOUR for s in segments]
    # 0.5 h duration, 2 h midnight, 8 h charging end, 9 h 07:00, 11 h 09:00
    assert starts == [0, Fraction(1, 2), 2, 8, 9, 11]
    assert [s.charging_us > 0 for s in segments] == [True, True, True, False, False, False]
    assert sum(s.energy for s in segments) == 12


def test_split_at_the_instant_energy_reaches_a_kwh_threshold():
    t = tariff(element(energy("0"), max_kwh=1), element(energy("0.2"), min_kwh=1))
    session = totals("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z", 20, 2)
    segments = split_totals_into_periods(t, session, UTC)
    assert [s.offset_us for s in segments] == [0, 6 * 60_000_000]  # 1 kWh of 20 in 2 h
    assert str(price(t, session).total_cost.excl_vat) == "3.80"


def test_split_at_an_instant_between_microseconds_stays_exact():
    t = tariff(element(energy("0"), time_("0"), max_kwh=1),
               element(energy("0.70"), time_("7.00")))
    # 7 kWh in one hour: 1 kWh is reached after 1/7 h, not a whole microsecond.
    result = price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T11:00:00Z", 7, 1))
    assert result.exact_total_cost.excl_vat == Fraction(102, 10)  # 6 × 0.70 + 6/7 h × 7.00


def test_duration_restriction_splits_the_charging_time():
    t = tariff(element(time_("0"), max_duration=1800), element(time_("2.00")))
    assert costs(price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T11:00:00Z", 5, 1))) == \
        ("1.00", "1.00")


def test_power_restriction_uses_the_constant_average_power():
    t = tariff(element(energy("0.30"), max_power=11), element(energy("0.50")))
    assert str(price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z", 22, 2))
               .total_cost.excl_vat) == "11.00"  # 11 kW is not below max_power 11
    assert str(price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z", 21, 2))
               .total_cost.excl_vat) == "6.30"


def test_totals_and_the_same_session_with_periods_cost_the_same():
    t = tariff(element(energy("0.45", "21"), time_("1.20", "21", 60), start_time="17:00",
                       end_time="21:00"),
               element(energy("0.30", "21"), time_("0.60", "21", 60),
                       parking("1.00", "21", 300)))
    from_totals = price(t, totals("2024-03-04T15:00:00Z", "2024-03-04T19:10:00Z", 30, "4.1666666",
                                  "1.1666666"), AMSTERDAM)
    # charging 3 h (16:00–19:00 local) at 10 kW, split at 17:00 local; parking 1 h 10 min
    with_periods = price(t, cdr("2024-03-04T15:00:00Z", "2024-03-04T19:10:00Z",
                                period("2024-03-04T15:00:00Z", ENERGY=10, TIME=1),
                                period("2024-03-04T16:00:00Z", ENERGY=20, TIME=2),
                                period("2024-03-04T18:00:00Z", PARKING_TIME=1)), AMSTERDAM)
    assert from_totals.exact_total_cost == with_periods.exact_total_cost


def test_missing_total_time_means_the_whole_session():
    t = tariff(element(time_("1.00")))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T11:30:00Z", total_energy="5"))
    assert str(result.total_cost.excl_vat) == "1.50"


def test_charging_stops_at_the_end_of_the_session_at_the_latest():
    t = tariff(element(time_("1.00"), parking("5.00")))
    result = price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T11:00:00Z", 5, 3))
    assert costs(result) == ("1.00", "1.00")


def test_total_time_shorter_than_the_session_parks_until_the_end():
    t = tariff(element(time_("1.00"), parking("6.00")))
    result = price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z", 5, 1))
    assert costs(result) == ("7.00", "7.00")  # 1 h charging, then 1 h parking


@pytest.mark.parametrize("hours,parking_hours,energy_kwh,field", [
    (1, 2, 5, "total_parking_time"), (1, 1, 5, "total_energy")])
def test_inconsistent_totals_are_refused(hours, parking_hours, energy_kwh, field):
    t = tariff(element(energy("1")))
    with pytest.raises(PricingInputError) as error:
        price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z", energy_kwh, hours,
                        parking_hours))
    assert error.value.field == field


def test_extra_split_points_do_not_change_the_price():
    t = tariff(element(energy("0.45", "21", 100), time_("1.2", "21", 300), start_time="07:00",
                       end_time="09:00"),
               element(energy("0.25", "21", 100), time_("0.3", "21", 300),
                       parking("2", "21", 600)))
    session = totals("2024-03-04T05:30:00Z", "2024-03-04T09:17:13Z", "17.77", "3.7869444",
                     "0.5")
    plain = price(t, session, AMSTERDAM)
    extra = [Fraction(1, 3), 61, Fraction(12345, 7), 3600 * 2 + Fraction(1, 1000)]
    finer = price_segments(t, session, split_totals_into_periods(t, session, AMSTERDAM, extra),
                           AMSTERDAM)
    assert finer.exact_total_cost == plain.exact_total_cost
    assert finer.to_json()["total_cost"] == plain.to_json()["total_cost"]
    assert len(finer.periods) > len(plain.periods)


def test_charging_time_between_microseconds_with_a_kwh_threshold_stays_exact():
    t = tariff(element(energy("0"), max_kwh=1), element(energy("0.30")))
    # 1/3 h of charging written with 10 decimals: the charging time is not whole microseconds.
    result = price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T11:00:00Z", 3,
                             "0.3333333333", 0))
    assert result.exact_total_cost.excl_vat == Fraction(6, 10)
