from tariffs.pricing.lint import restrictions_cover, tariff_warnings

ENERGY = {"type": "ENERGY", "price": "0.3", "step_size": 1}
TIME = {"type": "TIME", "price": "2", "step_size": 1}
FLAT = {"type": "FLAT", "price": "1", "step_size": 1}


def test_element_after_an_unrestricted_one_of_the_same_dimension_is_unreachable():
    warnings = tariff_warnings([{"price_components": [ENERGY]},
                                {"price_components": [ENERGY],
                                 "restrictions": {"start_time": "07:00", "end_time": "11:00"}}])
    assert warnings == ["Element 2: its ENERGY component is never used: element 1 always "
                        "applies first."]


def test_usual_peak_then_offpeak_tariff_has_no_warning():
    assert tariff_warnings([
        {"price_components": [ENERGY],
         "restrictions": {"start_time": "07:00", "end_time": "11:00",
                          "day_of_week": ["MONDAY", "TUESDAY"]}},
        {"price_components": [ENERGY]},
    ]) == []


def test_other_dimensions_do_not_shadow():
    assert tariff_warnings([{"price_components": [TIME]},
                            {"price_components": [ENERGY]}]) == []


def test_narrower_window_on_fewer_days_is_covered():
    earlier = {"start_time": "07:00", "end_time": "11:00", "day_of_week": ["MONDAY", "FRIDAY"]}
    later = {"start_time": "08:00", "end_time": "10:00", "day_of_week": ["MONDAY"]}
    assert restrictions_cover(earlier, later)
    assert not restrictions_cover(later, earlier)


def test_windows_wrapping_midnight():
    night = {"start_time": "22:00", "end_time": "06:00"}
    assert restrictions_cover(night, {"start_time": "23:00", "end_time": "02:00"})
    assert not restrictions_cover(night, {"start_time": "05:00", "end_time": "07:00"})


def test_ranges_must_be_inside():
    assert restrictions_cover({"min_kwh": "10"}, {"min_kwh": "20", "max_kwh": "30"})
    assert not restrictions_cover({"min_kwh": "10"}, {"max_kwh": "30"})
    assert not restrictions_cover({"max_power": "22"}, {"min_power": "11"})


def test_second_flat_after_an_unrestricted_flat_is_unreachable():
    warnings = tariff_warnings([{"price_components": [FLAT, ENERGY]},
                                {"price_components": [FLAT],
                                 "restrictions": {"min_duration": 3600}}])
    assert "Element 2: its FLAT component is never used" in warnings[0]


def test_empty_elements_and_reservations_are_reported():
    warnings = tariff_warnings([{"price_components": []},
                                {"price_components": [ENERGY],
                                 "restrictions": {"reservation": "RESERVATION"}}])
    assert warnings == ["Element 1 has no price components.",
                        "Element 2 is for reservations, which are not priced."]
