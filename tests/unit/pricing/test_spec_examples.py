"""The worked examples of OCPI 2.2.1 (mod_tariffs, mod_cdrs) priced by the engine.

Where an example of mod_tariffs disagrees with the normative step_size text of mod_cdrs ("In the
cases that TIME and PARKING_TIME Tariff Elements are both used, step_size is only taken into
account for the total parking duration"), the engine follows mod_cdrs (rule 5 of
docs/pricing.md) and the test says so.
"""

from .helpers import (
    AMSTERDAM,
    cdr,
    costs,
    element,
    energy,
    flat,
    parking,
    period,
    price,
    tariff,
    time_,
    totals,
)

WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]


def charging_then_parking(start, charge_end, end, kwh, **extra):
    """A CDR charging from start to charge_end (kWh delivered), then parking until end."""
    periods = [period(start, ENERGY=kwh, TIME=1, **extra)]
    if charge_end is not None and end != charge_end:
        periods.append(period(charge_end, PARKING_TIME=1))
    return cdr(start, end, *periods)


def test_simple_tariff_2_euro_per_hour_charging_2_5_hours_costs_5_00():
    t = tariff(element(time_("2.00", "10.0", 60)))
    result = price(t, charging_then_parking("2024-03-04T10:00:00Z", None, "2024-03-04T12:30:00Z",
                                            15))
    assert costs(result) == ("5.00", "5.50")


def test_alt_text_tariff_1_9_euro_per_hour_5_2_vat_rounds_incl_vat_to_5_00():
    t = tariff(element(time_("1.90", "5.2", 300)))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T12:30:00Z",
                          period("2024-03-04T10:00:00Z", TIME="2.5")))
    assert costs(result) == ("4.75", "5.00")  # 4.997 incl. VAT


def test_alt_url_tariff_bills_20_45_kwh_as_20_5_kwh_in_steps_of_100_wh():
    # The spec quotes 4.51/4.96 euro at the 0.22 euro real-time price.
    t = tariff(element(energy("0.22", "10.0", 100)))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z",
                          period("2024-03-04T10:00:00Z", ENERGY="20.45", TIME=2)))
    assert costs(result) == ("4.51", "4.96")
    assert result.dimensions["ENERGY"].billed == 20.5


def test_alt_url_tariff_at_0_25_per_kwh_bills_20_5_kwh():
    # The spec text says 5.50/6.05 here, which is not 20.5 × 0.25 (= 5.125): a typo in the spec.
    t = tariff(element(energy("0.25", "10.0", 100)))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z",
                          period("2024-03-04T10:00:00Z", ENERGY="20.45", TIME=2)))
    assert costs(result) == ("5.13", "5.64")


def test_simple_0_25_per_kwh_20_kwh_costs_5_00_and_5_50_incl_vat():
    t = tariff(element(energy("0.25", "10.0")))
    result = price(t, charging_then_parking("2024-03-04T10:00:00Z", None, "2024-03-04T12:00:00Z",
                                            20))
    assert costs(result) == ("5.00", "5.50")


def test_0_25_per_kwh_plus_start_fee_costs_5_50_and_6_10():
    t = tariff(element(flat("0.50", "20.0"), energy("0.25", "10.0")))
    result = price(t, charging_then_parking("2024-03-04T10:00:00Z", None, "2024-03-04T12:00:00Z",
                                            20))
    assert costs(result) == ("5.50", "6.10")
    assert str(result.total_fixed_cost.excl_vat) == "0.50"


def test_min_price_applies_below_2_kwh_and_not_above():
    t = tariff(element(energy("0.25", "10.0")),
               min_price={"excl_vat": "0.50", "incl_vat": "0.55"})
    big = price(t, charging_then_parking("2024-03-04T10:00:00Z", None, "2024-03-04T12:00:00Z",
                                         20))
    small = price(t, charging_then_parking("2024-03-04T10:00:00Z", None,
                                           "2024-03-04T10:10:00Z", "1.5"))
    assert costs(big) == ("5.00", "5.50") and big.price_limit is None
    assert costs(small) == ("0.50", "0.55") and small.price_limit == "MIN_PRICE"
    assert str(small.total_energy_cost.excl_vat) == "0.38"  # dimensions stay as they are


def test_parking_fee_billed_per_15_minutes_40_minutes_parked_costs_7_00():
    t = tariff(element(flat("0.50", "20.0"), energy("0.25", "10.0"),
                       parking("2.00", "20.0", 900)))
    result = price(t, charging_then_parking("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z",
                                            "2024-03-04T12:40:00Z", 20))
    assert costs(result) == ("7.00", "7.90")
    assert result.dimensions["PARKING_TIME"].billed == 0.75


def test_max_price_caps_50_kwh_at_10_00_but_not_30_kwh():
    t = tariff(element(flat("0.50", "20.0"), energy("0.25", "10.0")),
               max_price={"excl_vat": "10.00", "incl_vat": "11.00"},
               end_date_time="2019-06-30T23:59:59Z")
    capped = price(t, charging_then_parking("2024-03-04T10:00:00Z", None,
                                            "2024-03-04T12:00:00Z", 50))
    below = price(t, charging_then_parking("2024-03-04T10:00:00Z", None,
                                           "2024-03-04T12:00:00Z", 30))
    assert costs(capped) == ("10.00", "11.00") and capped.price_limit == "MAX_PRICE"
    assert costs(below) == ("8.00", "8.85")


def test_3_euro_per_hour_charging_and_5_per_hour_parking_bills_45_minutes_parking():
    t = tariff(element(time_("3.00", "10.0", 60), parking("5.00", "20.0", 300)))
    result = price(t, charging_then_parking("2024-03-04T10:00:00Z", "2024-03-04T12:30:00Z",
                                            "2024-03-04T13:12:00Z", 30))
    assert costs(result) == ("11.25", "12.75")


COMPLEX = [
    element(flat("2.50", "15.0")),
    element(time_("1.00", "20.0", 900), max_current="32.00"),
    element(time_("2.00", "20.0", 600), min_current="32.00", day_of_week=WEEKDAYS),
    element(time_("1.25", "20.0", 600), min_current="32.00", day_of_week=["SATURDAY", "SUNDAY"]),
    element(parking("5.00", "10.0", 300), start_time="09:00", end_time="18:00",
            day_of_week=WEEKDAYS),
    element(parking("6.00", "10.0", 300), start_time="10:00", end_time="17:00",
            day_of_week=["SATURDAY"]),
]


def test_complex_tariff_monday_16a_session_rounds_only_parking():
    """Spec: 8.75 (charging 147 min billed as 150). Rule 5 / mod_cdrs: with parking billed only
    the parking is rounded, so charging is billed for 147 minutes: 2.50 + 2.45 + 3.75."""
    t = tariff(*COMPLEX)
    result = price(t, cdr("2024-03-04T08:30:00Z", "2024-03-04T11:39:00Z",
                          period("2024-03-04T08:30:00Z", ENERGY=10, TIME="2.45", MAX_CURRENT=16),
                          period("2024-03-04T10:57:00Z", PARKING_TIME="0.7")), AMSTERDAM)
    assert costs(result) == ("8.70", "9.94")
    assert str(result.total_time_cost.excl_vat) == "2.45"
    assert str(result.total_parking_cost.excl_vat) == "3.75"  # 42 → 45 minutes


def test_complex_tariff_monday_16a_without_parking_rounds_charging_to_150_minutes():
    t = tariff(*COMPLEX)
    result = price(t, cdr("2024-03-04T08:30:00Z", "2024-03-04T10:57:00Z",
                          period("2024-03-04T08:30:00Z", ENERGY=10, TIME="2.45", MAX_CURRENT=16)),
                   AMSTERDAM)
    assert costs(result) == ("5.00", "5.88")  # 2.50 flat + 150 minutes at 1.00


def test_complex_tariff_saturday_43a_session_uses_weekend_time_and_saturday_parking():
    """Spec: 12.50 (charging 114 min billed as 120). Rule 5: 2.50 + 114 min at 1.25 + 75 min
    parking at 6.00 = 12.375 → 12.38."""
    t = tariff(*COMPLEX)
    result = price(t, cdr("2024-03-09T12:30:00Z", "2024-03-09T15:35:00Z",
                          period("2024-03-09T12:30:00Z", ENERGY=10, TIME="1.9", MAX_CURRENT=43),
                          period("2024-03-09T14:24:00Z", PARKING_TIME="1.1833")), AMSTERDAM)
    assert costs(result) == ("12.38", "13.98")
    assert str(result.total_parking_cost.excl_vat) == "7.50"  # 71 → 75 minutes at 6.00


def test_free_of_charge_tariff_costs_nothing():
    t = tariff(element(flat("0.00")))
    result = price(t, charging_then_parking("2024-03-04T10:00:00Z", None, "2024-03-04T12:00:00Z",
                                            20))
    assert costs(result) == ("0.00", "0.00")


def test_first_hour_of_parking_free_and_first_kwh_free_counts_session_duration():
    """min/max_duration count from the start of the session (OCPI: "duration the Charging
    Session MUST last"): charging 1.25 h (20 kWh), then parking until 3 h: parking 1.25–3 h is in
    the 2.00/h band. 19 kWh × 0.20 + 1.75 h × 2.00 = 7.30 (the spec's total)."""
    t = tariff(
        element(parking("0.0", step=60), min_duration=0, max_duration=3600),
        element(parking("2.0", step=60), min_duration=3600, max_duration=10800),
        element(parking("3.0", step=60), min_duration=10800),
        element(energy("0.0"), max_kwh="1.0"),
        element(energy("0.2"), min_kwh="1.0"))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T13:00:00Z",
                          period("2024-03-04T10:00:00Z", ENERGY=1, TIME="0.05"),
                          period("2024-03-04T10:03:00Z", ENERGY=19, TIME="1.2"),
                          period("2024-03-04T11:15:00Z", PARKING_TIME="1.75")))
    assert costs(result) == ("7.30", "7.30")  # no VAT given: incl. = excl.


def test_max_power_example_prices_each_power_band():
    t = tariff(element(energy("0.20", "20.0"), max_power="16.00"),
               element(energy("0.35", "20.0"), max_power="32.00"),
               element(energy("0.50", "20.0")))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T11:00:00Z",
                          period("2024-03-04T10:00:00Z", ENERGY=1, MAX_POWER=6),
                          period("2024-03-04T10:10:00Z", ENERGY=40, MAX_POWER=48),
                          period("2024-03-04T10:55:00Z", ENERGY="0.5", MAX_POWER=4)))
    assert costs(result) == ("20.30", "24.36")


def test_max_duration_example_first_30_minutes_free():
    t = tariff(element(energy("0.00", "20.0"), max_duration=1800),
               element(energy("0.25", "20.0"), max_duration=3600),
               element(energy("0.40", "20.0")))
    result = price(t, cdr("2024-03-04T10:00:00Z", "2024-03-04T10:40:00Z",
                          period("2024-03-04T10:00:00Z", ENERGY=5, TIME="0.5"),
                          period("2024-03-04T10:30:00Z", ENERGY="1.2", TIME="0.1667")))
    assert costs(result) == ("0.30", "0.36")


STEP_TARIFF = [
    element(time_("1.20", step=1800), parking("1.00", step=900),
            start_time="00:00", end_time="17:00"),
    element(time_("2.40", step=900), parking("1.00", step=900),
            start_time="17:00", end_time="20:00"),
    element(time_("2.40", step=900), start_time="20:00", end_time="23:59"),
]


def test_step_size_switching_element_uses_last_step_on_the_total():
    """16:35–17:10 charging: 25 min at 1.20 (0.50), 35 min rounded to 45 with the 15 min step
    of the 17:00 element, so 20 min at 2.40 (0.80)."""
    t = tariff(*STEP_TARIFF)
    result = price(t, cdr("2024-03-04T16:35:00Z", "2024-03-04T17:10:00Z",
                          period("2024-03-04T16:35:00Z", TIME="0.4167"),
                          period("2024-03-04T17:00:00Z", TIME="0.1667")))
    assert costs(result) == ("1.30", "1.30")


def test_step_size_switching_to_free_parking_rounds_charging_time():
    t = tariff(*STEP_TARIFF)
    result = price(t, cdr("2024-03-04T19:55:00Z", "2024-03-04T20:07:00Z",
                          period("2024-03-04T19:55:00Z", TIME="0.0833"),
                          period("2024-03-04T20:00:00Z", TIME="0.0833"),
                          period("2024-03-04T20:05:00Z", PARKING_TIME="0.0333")))
    assert costs(result) == ("0.60", "0.60")
    assert result.total_parking_cost.excl_vat == 0


def test_step_size_switching_example_1_rounds_the_billed_parking_not_the_charging():
    """Spec (mod_tariffs): 0.50, the 2 parking minutes "within the extra 5 minutes of charging".
    mod_cdrs and rule 5: parking is billed, so only parking is rounded: 5 min × 1.20 + 5 min ×
    2.40 + 15 min × 1.00 = 0.10 + 0.20 + 0.25."""
    t = tariff(*STEP_TARIFF)
    result = price(t, cdr("2024-03-04T16:55:00Z", "2024-03-04T17:07:00Z",
                          period("2024-03-04T16:55:00Z", TIME="0.0833"),
                          period("2024-03-04T17:00:00Z", TIME="0.0833"),
                          period("2024-03-04T17:05:00Z", PARKING_TIME="0.0333")))
    assert costs(result) == ("0.55", "0.55")


def test_cdr_step_size_charging_21_minutes_then_parking_7_bills_21_and_10():
    t = tariff(element(time_("6.00", step=300), parking("6.00", step=300)))
    result = price(t, charging_then_parking("2024-03-04T10:00:00Z", "2024-03-04T10:21:00Z",
                                            "2024-03-04T10:28:00Z", 5))
    assert str(result.total_time_cost.excl_vat) == "2.10"  # 21 minutes, not 25
    assert str(result.total_parking_cost.excl_vat) == "1.00"  # 10 minutes


def test_cdr_step_size_energy_rounds_the_session_total_not_the_last_period():
    """4.3 kWh before 17:00 at 0.20, 1.1 kWh after at 0.27, step 500 Wh: 5.4 → 5.5 kWh in
    total, so 1.2 kWh after 17:00 (not 1.5)."""
    t = tariff(element(energy("0.20", step=500), end_time="17:00"),
               element(energy("0.27", step=500), start_time="17:00"))
    result = price(t, cdr("2024-03-04T16:00:00Z", "2024-03-04T18:00:00Z",
                          period("2024-03-04T16:00:00Z", ENERGY="4.3", TIME=1),
                          period("2024-03-04T17:00:00Z", ENERGY="1.1", TIME=1)))
    assert costs(result) == ("1.18", "1.18")  # 0.86 + 0.324
    assert result.dimensions["ENERGY"].billed == 5.5


def test_cdr_step_size_time_28_minutes_rounds_to_30_with_24_after_17():
    t = tariff(element(time_("5", step=600), end_time="17:00"),
               element(time_("7", step=600), start_time="17:00"))
    result = price(t, cdr("2024-03-04T16:54:00Z", "2024-03-04T17:22:00Z",
                          period("2024-03-04T16:54:00Z", TIME="0.1"),
                          period("2024-03-04T17:00:00Z", TIME="0.3667")))
    assert costs(result) == ("3.30", "3.30")  # 0.50 + 24 min × 7.00/h


def test_cdr_step_size_with_time_and_parking_rounds_only_parking():
    """1.00/h charging, 2.00/h parking, both 10 min steps: 21 min charging + 16 min parking is
    billed 21 + 20 minutes."""
    t = tariff(element(time_("1.00", step=600), parking("2.00", step=600)))
    result = price(t, charging_then_parking("2024-03-04T10:00:00Z", "2024-03-04T10:21:00Z",
                                            "2024-03-04T10:37:00Z", 3))
    assert result.dimensions["TIME"].billed == result.dimensions["TIME"].volume
    assert result.dimensions["PARKING_TIME"].billed * 60 == 20
    assert costs(result) == ("1.02", "1.02")  # 0.35 + 0.6667


def test_cdr_example_2_euro_per_hour_step_5_minutes_costs_4_00():
    t = tariff(element(time_("2.00", "10.0", 300)), id="12", country_code="BE", party_id="BEC")
    result = price(t, cdr("2015-06-29T21:39:09Z", "2015-06-29T23:37:32Z",
                          {"start_date_time": "2015-06-29T21:39:09Z",
                           "dimensions": [{"type": "TIME", "volume": 1.973}],
                           "tariff_id": "12"},
                          total_energy="15.342", total_time="1.973"))
    assert costs(result) == ("4.00", "4.40")


def test_reservation_element_does_not_price_and_the_rest_does():
    t = tariff(element(time_("5.00", "20.0", 60), reservation="RESERVATION"),
               element(flat("0.50", "20.0"), energy("0.25", "10.0")))
    result = price(t, charging_then_parking("2024-03-04T10:00:00Z", None, "2024-03-04T12:00:00Z",
                                            20))
    assert costs(result) == ("5.50", "6.10")


def test_totals_only_cdr_is_priced_like_the_same_session_with_periods():
    t = tariff(element(flat("0.50", "20.0"), energy("0.25", "10.0"),
                       parking("2.00", "20.0", 900)))
    result = price(t, totals("2024-03-04T10:00:00Z", "2024-03-04T12:40:00Z", 20, "2.666666",
                             "0.666666"))
    assert costs(result) == ("7.00", "7.90")
