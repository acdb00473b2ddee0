"""Rule 4: each restriction, checked at the start of each period in the location's local time."""

import pytest

from .helpers import AMSTERDAM, UTC, cdr, element, energy, flat, period, price, tariff, time_

FALLBACK = element(energy("0.10"))


def element_for(restricted: dict, start: str, *, tz=UTC, before: list | None = None,
                **dimensions) -> int | None:
    """Which element prices the ENERGY of a one-hour period starting at ``start`` (after
    ``before`` periods), with a fallback element behind the restricted one."""
    periods = [*(before or []), period(start, **(dimensions or {"ENERGY": 1}))]
    end = _plus_hour(start)
    result = price(tariff(restricted, FALLBACK), cdr(periods[0]["start_date_time"], end,
                                                       *periods), tz)
    return [p.element_index for p in result.periods if p.dimension == "ENERGY"][-1]


def _plus_hour(instant: str) -> str:
    from datetime import datetime, timedelta
    return (datetime.fromisoformat(instant) + timedelta(hours=1)).isoformat().replace(
        "+00:00", "Z")


PEAK = element(energy("1.00"), start_time="07:00", end_time="11:00")


@pytest.mark.parametrize("start,expected", [
    ("2024-03-04T06:59:00Z", 1), ("2024-03-04T07:00:00Z", 0), ("2024-03-04T10:59:59Z", 0),
    ("2024-03-04T11:00:00Z", 1)])
def test_time_window_includes_its_start_and_excludes_its_end(start, expected):
    assert element_for(PEAK, start) == expected


@pytest.mark.parametrize("start,expected", [
    ("2024-03-04T00:00:00Z", 0), ("2024-03-04T05:59:00Z", 0), ("2024-03-04T06:00:00Z", 1)])
def test_missing_start_time_means_from_midnight(start, expected):
    assert element_for(element(energy("1"), end_time="06:00"), start) == expected


@pytest.mark.parametrize("start,expected", [
    ("2024-03-04T21:59:00Z", 1), ("2024-03-04T22:00:00Z", 0), ("2024-03-04T23:59:59Z", 0),
    ("2024-03-05T00:00:00Z", 1)])
def test_missing_end_time_means_until_the_end_of_the_day(start, expected):
    assert element_for(element(energy("1"), start_time="22:00"), start) == expected


@pytest.mark.parametrize("start,expected", [
    ("2024-03-04T23:59:59Z", 0), ("2024-03-05T00:00:00Z", 1)])
def test_end_time_00_00_means_the_end_of_the_day(start, expected):
    assert element_for(element(energy("1"), start_time="22:00", end_time="00:00"),
                       start) == expected


@pytest.mark.parametrize("start,expected", [
    ("2024-03-04T21:59:00Z", 1), ("2024-03-04T22:00:00Z", 0), ("2024-03-04T23:30:00Z", 0),
    ("2024-03-05T00:00:00Z", 0), ("2024-03-05T05:59:00Z", 0), ("2024-03-05T06:00:00Z", 1),
    ("2024-03-05T12:00:00Z", 1)])
def test_window_with_end_before_start_wraps_past_midnight(start, expected):
    assert element_for(element(energy("1"), start_time="22:00", end_time="06:00"),
                       start) == expected


@pytest.mark.parametrize("start", ["2024-03-04T09:59:00Z", "2024-03-04T10:00:00Z",
                                   "2024-03-04T18:00:00Z"])
def test_window_with_equal_start_and_end_never_holds(start):
    # start <= t < end with start == end is empty (it is not read as the whole day).
    assert element_for(element(energy("1"), start_time="10:00", end_time="10:00"), start) == 1


@pytest.mark.parametrize("start,expected", [
    ("2024-03-03T23:59:59Z", 1), ("2024-03-04T00:00:00Z", 0), ("2024-03-05T23:59:59Z", 0),
    ("2024-03-06T00:00:00Z", 1)])
def test_start_date_is_inclusive_and_end_date_exclusive(start, expected):
    restricted = element(energy("1"), start_date="2024-03-04", end_date="2024-03-06")
    assert element_for(restricted, start) == expected


def test_dates_are_local_dates():
    # 2024-03-05T23:30Z is already 2024-03-06 00:30 in Amsterdam: past the exclusive end date.
    restricted = element(energy("1"), start_date="2024-03-04", end_date="2024-03-06")
    assert element_for(restricted, "2024-03-05T23:30:00Z", tz=UTC) == 0
    assert element_for(restricted, "2024-03-05T23:30:00Z", tz=AMSTERDAM) == 1
    # and 2024-03-03T23:30Z is already 2024-03-04 in Amsterdam: on the start date.
    assert element_for(restricted, "2024-03-03T23:30:00Z", tz=AMSTERDAM) == 0


@pytest.mark.parametrize("start,expected", [
    ("2024-03-04T12:00:00Z", 0),  # Monday
    ("2024-03-05T12:00:00Z", 1),  # Tuesday
    ("2024-03-10T12:00:00Z", 0),  # Sunday
])
def test_day_of_week(start, expected):
    restricted = element(energy("1"), day_of_week=["MONDAY", "SUNDAY"])
    assert element_for(restricted, start) == expected


def test_day_of_week_is_the_local_weekday():
    # Sunday 23:30 UTC is Monday 00:30 in Amsterdam.
    restricted = element(energy("1"), day_of_week=["MONDAY"])
    assert element_for(restricted, "2024-03-10T23:30:00Z", tz=UTC) == 1
    assert element_for(restricted, "2024-03-10T23:30:00Z", tz=AMSTERDAM) == 0


def test_kwh_restrictions_use_the_energy_delivered_before_the_period():
    t = tariff(element(energy("0.50"), max_kwh=10), element(energy("0.20"), min_kwh=10))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T13:00:00Z",
                          period("2024-03-04T10:00:00Z", ENERGY=8),     # before: 0
                          period("2024-03-04T11:00:00Z", ENERGY=2),     # before: 8
                          period("2024-03-04T12:00:00Z", ENERGY=5)))    # before: 10
    assert [p.element_index for p in result.periods if p.dimension == "ENERGY"] == [0, 0, 1]
    assert str(result.total_cost.excl_vat) == "6.00"  # 10 × 0.50 + 5 × 0.20


def test_min_kwh_is_inclusive_and_max_kwh_exclusive():
    before = [period("2024-03-04T09:00:00Z", ENERGY=10)]
    assert element_for(element(energy("1"), min_kwh=10), "2024-03-04T10:00:00Z",
                       before=before) == 0
    assert element_for(element(energy("1"), max_kwh=10), "2024-03-04T10:00:00Z",
                       before=before) == 1


def test_min_duration_is_inclusive_and_max_duration_exclusive():
    t = tariff(element(time_("6.00"), min_duration=1800, max_duration=3600),
               element(time_("1.00")))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T11:30:00Z",
                          period("2024-03-04T10:00:00Z", TIME=1),
                          period("2024-03-04T10:29:59Z", TIME=1),
                          period("2024-03-04T10:30:00Z", TIME=1),
                          period("2024-03-04T10:59:59Z", TIME=1),
                          period("2024-03-04T11:00:00Z", TIME=1)))
    assert [p.element_index for p in result.periods] == [1, 1, 0, 0, 1]


def test_duration_counts_real_seconds_since_the_session_start():
    # The session starts 10 minutes before its first period: those 10 minutes count.
    t = tariff(element(time_("6.00"), min_duration=1200), element(time_("1.00")))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T11:00:00Z",
                          period("2024-03-04T10:10:00Z", TIME=1),
                          period("2024-03-04T10:20:00Z", TIME=1)))
    assert [p.element_index for p in result.periods] == [1, 0]


@pytest.mark.parametrize("dimensions,expected", [
    ({"ENERGY": 5, "MAX_POWER": 10}, 0),
    ({"ENERGY": 5, "MAX_POWER": "10.999"}, 0),
    ({"ENERGY": 5, "MAX_POWER": 11}, 1),       # max_power is exclusive
    ({"ENERGY": 5, "MAX_POWER": 3}, 0),        # min_power is inclusive
    ({"ENERGY": 5, "MAX_POWER": "2.9"}, 1),    # below min_power
    ({"ENERGY": 3}, 0),                         # average: 3 kWh in 1 h = 3 kW (min inclusive)
    ({"ENERGY": 11}, 1),                        # average 11 kW
    ({"ENERGY": "10.99"}, 0),
])
def test_power_is_max_power_else_the_average_power_of_the_period(dimensions, expected):
    restricted = element(energy("1"), min_power=3, max_power=11)
    assert element_for(restricted, "2024-03-04T10:00:00Z", **dimensions) == expected


@pytest.mark.parametrize("dimensions,expected", [
    ({"ENERGY": 5, "MAX_CURRENT": 16}, 0),
    ({"ENERGY": 5, "MAX_CURRENT": 32}, 1),     # max_current is exclusive
    ({"ENERGY": 5, "MAX_CURRENT": 6}, 0),      # min_current is inclusive
    ({"ENERGY": 5, "MAX_CURRENT": "5.9"}, 1),
    ({"ENERGY": 5}, 0),                         # no current data: the restriction passes
])
def test_current_comes_from_max_current_and_passes_without_data(dimensions, expected):
    restricted = element(energy("1"), min_current=6, max_current=32)
    assert element_for(restricted, "2024-03-04T10:00:00Z", **dimensions) == expected


def test_all_restrictions_of_an_element_must_hold():
    restricted = element(energy("1"), start_time="07:00", end_time="11:00",
                         day_of_week=["MONDAY"])
    assert element_for(restricted, "2024-03-04T08:00:00Z") == 0  # Monday, in window
    assert element_for(restricted, "2024-03-05T08:00:00Z") == 1  # Tuesday
    assert element_for(restricted, "2024-03-04T12:00:00Z") == 1  # Monday, out of window


def test_reservation_element_never_prices_a_charging_period():
    for kind in ("RESERVATION", "RESERVATION_EXPIRES"):
        t = tariff(element(energy("9.99"), flat("5.00"), reservation=kind),
                   element(energy("0.25")))
        result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T11:00:00Z",
                              period("2024-03-04T10:00:00Z", ENERGY=4, TIME=1)))
        assert str(result.total_cost.excl_vat) == "1.00"
        assert result.total_fixed_cost.excl_vat == 0
