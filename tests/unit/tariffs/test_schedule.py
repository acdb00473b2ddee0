from decimal import Decimal

import pytest

from tariffs.pricing.schedule import (
    DAYS,
    ScheduleError,
    peak_offpeak_elements,
    windows_from_grid,
)

PEAK = [{"type": "ENERGY", "price": Decimal("0.55"), "vat": Decimal("21"), "step_size": 1}]
OFFPEAK = [{"type": "ENERGY", "price": Decimal("0.35"), "vat": Decimal("21"), "step_size": 1}]


def _grid(peak_hours_by_day):
    return [[hour in peak_hours_by_day.get(day, ()) for hour in range(24)] for day in DAYS]


def test_consecutive_peak_hours_merge_into_one_window():
    grid = _grid({"MONDAY": {7, 8, 9, 10, 17, 18, 19, 20}})
    assert windows_from_grid(grid) == {"MONDAY": [("07:00", "11:00"), ("17:00", "21:00")]}


def test_window_running_to_midnight_ends_at_00_00():
    grid = _grid({"FRIDAY": {22, 23}})
    assert windows_from_grid(grid) == {"FRIDAY": [("22:00", "00:00")]}


def test_quarter_hour_grid():
    grid = [[slot in (28, 29) for slot in range(96)] for _ in DAYS]
    assert windows_from_grid(grid, slot_minutes=15)["SUNDAY"] == [("07:00", "07:30")]


def test_grid_of_the_wrong_shape_is_refused():
    with pytest.raises(ScheduleError, match="7 rows"):
        windows_from_grid([[False] * 24] * 6)


def test_days_with_the_same_windows_share_elements_and_offpeak_comes_last():
    weekdays = {day: [("07:00", "11:00")] for day in DAYS[:5]}
    elements = peak_offpeak_elements(weekdays, peak=PEAK, offpeak=OFFPEAK)
    assert elements == [
        {"price_components": PEAK,
         "restrictions": {"start_time": "07:00", "end_time": "11:00",
                          "day_of_week": list(DAYS[:5])}},
        {"price_components": OFFPEAK},
    ]


def test_every_day_peak_needs_no_day_restriction():
    elements = peak_offpeak_elements({day: [("17:00", "21:00")] for day in DAYS},
                                     peak=PEAK, offpeak=OFFPEAK)
    assert "day_of_week" not in elements[0]["restrictions"]


def test_flat_fee_is_its_own_first_element():
    flat = {"price": Decimal("0.50"), "vat": Decimal("21"), "step_size": 1}
    elements = peak_offpeak_elements({}, peak=PEAK, offpeak=OFFPEAK, flat=flat)
    assert elements[0] == {"price_components": [dict(flat, type="FLAT")]}
    assert elements[-1] == {"price_components": OFFPEAK}


@pytest.mark.parametrize("windows,message", [
    ({"MONDAY": [("11:00", "07:00")]}, "ends after it starts"),
    ({"MONDAY": [("07:00", "11:00"), ("10:00", "12:00")]}, "overlap"),
    ({"Funday": [("07:00", "11:00")]}, "is not a day"),
    ({"MONDAY": [("7h", "11:00")]}, "not a time of day"),
    ({"MONDAY": [("24:00", "11:00")]}, "not a time of day"),
])
def test_bad_schedules_get_a_clear_error(windows, message):
    with pytest.raises(ScheduleError, match=message):
        peak_offpeak_elements(windows, peak=PEAK, offpeak=OFFPEAK)


def test_flat_inside_peak_components_is_refused():
    with pytest.raises(ScheduleError, match="flat"):
        peak_offpeak_elements({}, peak=[{"type": "FLAT", "price": 1}], offpeak=OFFPEAK)
