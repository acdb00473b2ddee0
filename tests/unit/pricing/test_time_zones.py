"""Rule 8: local time, date and weekday from the UTC instant in the location's zone (DST
respected); durations are real elapsed time."""

from fractions import Fraction

from .helpers import AMSTERDAM, UTC, cdr, element, energy, period, price, tariff, time_, totals

NIGHT_WINDOW = [element(energy("0.50"), start_time="02:30", end_time="03:30"),
                element(energy("0.10"))]


def energy_elements(result):
    return [p.element_index for p in result.periods if p.dimension == "ENERGY"]


def test_spring_forward_local_time_jumps_from_02_00_to_03_00():
    # Amsterdam, 2024-03-31 01:00Z: 02:00 CET becomes 03:00 CEST.
    result = price(tariff(*NIGHT_WINDOW), cdr(
        "2024-03-31T00:00:00Z", "2024-03-31T02:00:00Z",
        period("2024-03-31T00:00:00Z", ENERGY=1),    # 01:00 CET
        period("2024-03-31T00:59:59Z", ENERGY=1),    # 01:59:59 CET
        period("2024-03-31T01:00:00Z", ENERGY=1),    # 03:00 CEST
        period("2024-03-31T01:30:00Z", ENERGY=1)),   # 03:30 CEST
        AMSTERDAM)
    assert energy_elements(result) == [1, 1, 0, 1]


def test_session_across_spring_forward_lasts_its_real_duration():
    t = tariff(element(time_("6.00")))
    result = price(t, cdr("2024-03-31T00:00:00Z", "2024-03-31T02:00:00Z",
                          period("2024-03-31T00:00:00Z", TIME=2)), AMSTERDAM)
    assert result.total_time == 2  # 01:00 CET to 04:00 CEST on the clock, 2 real hours
    assert str(result.total_cost.excl_vat) == "12.00"


def test_totals_session_across_spring_forward_is_split_at_the_transition():
    # 2 kWh at constant power 00:00Z–02:00Z; local 03:00–03:30 is 01:00Z–01:30Z: 0.5 kWh.
    result = price(tariff(*NIGHT_WINDOW),
                   totals("2024-03-31T00:00:00Z", "2024-03-31T02:00:00Z", 2, 2), AMSTERDAM)
    assert str(result.total_cost.excl_vat) == "0.40"  # 0.5 × 0.50 + 1.5 × 0.10


def test_fall_back_repeats_the_hour_from_02_00_to_03_00():
    # Amsterdam, 2024-10-27 01:00Z: 03:00 CEST becomes 02:00 CET; 02:00-02:30 happens twice.
    t = tariff(element(energy("0.50"), start_time="02:00", end_time="02:30"),
               element(energy("0.10")))
    result = price(t, cdr(
        "2024-10-26T23:30:00Z", "2024-10-27T02:00:00Z",
        period("2024-10-26T23:30:00Z", ENERGY=1),   # 01:30 CEST
        period("2024-10-27T00:00:00Z", ENERGY=1),   # 02:00 CEST
        period("2024-10-27T00:30:00Z", ENERGY=1),   # 02:30 CEST
        period("2024-10-27T01:00:00Z", ENERGY=1),   # 02:00 CET
        period("2024-10-27T01:30:00Z", ENERGY=1)),  # 02:30 CET
        AMSTERDAM)
    assert energy_elements(result) == [1, 0, 1, 0, 1]
    totals_result = price(t, totals("2024-10-26T23:30:00Z", "2024-10-27T02:00:00Z", 5, "2.5"),
                          AMSTERDAM)
    assert totals_result.exact_total_cost == result.exact_total_cost  # 2 × 0.50 + 3 × 0.10


def test_session_across_midnight_into_saturday_uses_the_weekend_price():
    t = tariff(element(energy("0.40"), day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY",
                                                    "THURSDAY", "FRIDAY"]),
               element(energy("0.20"), day_of_week=["SATURDAY", "SUNDAY"]))
    # Friday 2024-03-08 23:00 to Saturday 01:00 in Amsterdam (22:00Z to 00:00Z).
    with_periods = price(t, cdr("2024-03-08T22:00:00Z", "2024-03-09T00:00:00Z",
                                period("2024-03-08T22:00:00Z", ENERGY=5),
                                period("2024-03-08T23:00:00Z", ENERGY=5)), AMSTERDAM)
    assert energy_elements(with_periods) == [0, 1]
    assert str(with_periods.total_cost.excl_vat) == "3.00"
    from_totals = price(t, totals("2024-03-08T22:00:00Z", "2024-03-09T00:00:00Z", 10, 2),
                        AMSTERDAM)
    assert str(from_totals.total_cost.excl_vat) == "3.00"  # split at local midnight


def test_window_wrapping_midnight_prices_the_night_part_of_a_session():
    t = tariff(element(energy("0.20"), start_time="22:00", end_time="06:00"),
               element(energy("0.40")))
    # 21:00 to 23:00 local (20:00Z–22:00Z), 4 kWh at constant power: 2 kWh before 22:00.
    result = price(t, totals("2024-03-04T20:00:00Z", "2024-03-04T22:00:00Z", 4, 2), AMSTERDAM)
    assert str(result.total_cost.excl_vat) == "1.20"
    # And through the night into the morning: 05:00 to 07:00 local.
    morning = price(t, totals("2024-03-05T04:00:00Z", "2024-03-05T06:00:00Z", 4, 2), AMSTERDAM)
    assert str(morning.total_cost.excl_vat) == "1.20"


def test_the_zone_passed_in_decides_local_time():
    t = tariff(element(energy("0.50"), start_time="10:00", end_time="11:00"),
               element(energy("0.10")))
    session = cdr("2024-03-04T10:00:00Z", "2024-03-04T11:00:00Z",
                  period("2024-03-04T10:00:00Z", ENERGY=1))
    assert str(price(t, session, UTC).total_cost.excl_vat) == "0.50"
    assert str(price(t, session, AMSTERDAM).total_cost.excl_vat) == "0.10"  # 11:00 local


def test_durations_are_real_seconds_across_fall_back():
    t = tariff(element(time_("0"), max_duration=3600), element(time_("6.00")))
    # 00:30Z-02:30Z spans the repeated hour; the second hour starts at 01:30Z, not at a
    # local clock reading.
    result = price(t, totals("2024-10-27T00:30:00Z", "2024-10-27T02:30:00Z", 0, 2), AMSTERDAM)
    assert result.exact_total_cost.excl_vat == Fraction(6)
