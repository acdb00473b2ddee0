"""Energy that follows a price index (tariffs/pricing/indexed.py): the price of an interval, the
intervals a session needs, the tariff materialized for a session and for a local day."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tariffs.pricing.engine import price_segments, price_session, split_totals_into_periods
from tariffs.pricing.errors import PricingInputError
from tariffs.pricing.indexed import (
    IndexGapError,
    IndexInterval,
    IndexRule,
    intervals_covering,
    materialize,
    materialize_day,
)
from tariffs.pricing.ocpi import parse_tariff, tariff_to_ocpi
from tariffs.pricing.types import Cdr, CdrDimension, ChargingPeriod

from .helpers import AMSTERDAM, element, energy, parking, tariff

D = Decimal


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def series(first: str, *values: str, minutes: int = 60) -> list[IndexInterval]:
    """Consecutive index values from ``first`` (UTC), one per ``minutes``."""
    start = at(first)
    step = timedelta(minutes=minutes)
    return [IndexInterval(start + k * step, start + (k + 1) * step, D(v))
            for k, v in enumerate(values)]


def totals(start: str, end: str, kwh: str, parking_hours: str | int = 0) -> Cdr:
    return Cdr(start=at(start), end=at(end), total_energy=D(kwh),
               total_parking_time=D(str(parking_hours)), currency="EUR", id="S1")


RULE = IndexRule(index="nl-da")
#: element 0 follows the index (its static 0.30 is only what OCPI shows), element 1 does not
INDEXED = tariff(element(energy("0.30", "21"), parking("2.00", "21")), element(energy("0.99")))
RULES = {(0, 0): RULE}


# --- IndexRule.price --------------------------------------------------------------------------

def test_index_price_applies_the_percentage_markup_then_the_absolute_one():
    rule = IndexRule(index="nl-da", markup_pct=D("10"), markup_abs=D("0.05"))
    assert rule.price(D("0.10")) == D("0.16")  # 0.10 × 1.10 + 0.05, not (0.10 + 0.05) × 1.10


def test_index_price_is_exact_without_rounding():
    rule = IndexRule(index="nl-da", markup_pct=D("3.5"), markup_abs=D("0.0001"))
    assert rule.price(D("0.123456")) == D("0.12787696")


def test_a_negative_market_price_is_floored_at_zero_by_default():
    rule = IndexRule(index="nl-da", markup_abs=D("0.05"))
    assert rule.price(D("-0.20")) == 0
    assert rule.price(D("-0.05")) == 0
    assert rule.price(D("-0.04")) == D("0.01")


def test_an_explicit_negative_floor_lets_the_price_go_below_zero_down_to_the_floor():
    rule = IndexRule(index="nl-da", markup_abs=D("0.05"), floor=D("-0.10"))
    assert rule.price(D("-0.12")) == D("-0.07")
    assert rule.price(D("-0.50")) == D("-0.10")


def test_a_floor_above_the_market_price_raises_it():
    rule = IndexRule(index="nl-da", floor=D("0.08"))
    assert rule.price(D("0.02")) == D("0.08")
    assert rule.price(D("0.09")) == D("0.09")


def test_the_cap_limits_the_price_after_the_markup():
    rule = IndexRule(index="nl-da", markup_pct=D("20"), cap=D("0.45"))
    assert rule.price(D("0.50")) == D("0.45")      # 0.60 capped
    assert rule.price(D("0.25")) == D("0.30")      # under the cap


# --- intervals_covering -----------------------------------------------------------------------

def test_a_session_starting_mid_interval_gets_the_interval_in_force_and_the_following_ones():
    values = series("2026-10-01T09:00", "0.1", "0.2", "0.3", "0.4", "0.5")
    found = intervals_covering(values, at("2026-10-01T10:30"), at("2026-10-01T12:15"), "nl-da")
    assert [i.start for i in found] == [at("2026-10-01T10:00"), at("2026-10-01T11:00"),
                                        at("2026-10-01T12:00")]


def test_a_session_ending_on_an_interval_boundary_does_not_need_the_next_interval():
    values = series("2026-10-01T10:00", "0.1", "0.2")
    found = intervals_covering(values, at("2026-10-01T10:30"), at("2026-10-01T12:00"), "nl-da")
    assert [i.value for i in found] == [D("0.1"), D("0.2")]


def test_quarter_hour_intervals_are_found_the_same_way():
    values = series("2026-10-01T10:00", "1", "2", "3", "4", "5", minutes=15)
    found = intervals_covering(values, at("2026-10-01T10:20"), at("2026-10-01T10:46"), "nl-da")
    assert [i.value for i in found] == [D("2"), D("3"), D("4")]


def test_a_gap_in_the_middle_raises_naming_the_index_and_the_first_missing_instant():
    values = [*series("2026-10-01T10:00", "0.1", "0.2"), *series("2026-10-01T13:00", "0.4")]
    with pytest.raises(IndexGapError) as error:
        intervals_covering(values, at("2026-10-01T10:30"), at("2026-10-01T13:30"), "nl-da")
    assert "price index nl-da has no price for 2026-10-01T12:00:00Z" in str(error.value)
    assert isinstance(error.value, PricingInputError)


def test_a_gap_at_the_start_names_the_session_start():
    values = series("2026-10-01T11:00", "0.1", "0.2")
    with pytest.raises(IndexGapError, match="no price for 2026-10-01T10:30:00Z"):
        intervals_covering(values, at("2026-10-01T10:30"), at("2026-10-01T11:30"), "nl-da")


def test_a_gap_at_the_end_names_the_end_of_the_last_interval():
    values = series("2026-10-01T10:00", "0.1", "0.2")
    with pytest.raises(IndexGapError, match="no price for 2026-10-01T12:00:00Z"):
        intervals_covering(values, at("2026-10-01T10:30"), at("2026-10-01T12:00:01"), "nl-da")


def test_an_empty_index_raises_naming_the_session_start():
    with pytest.raises(IndexGapError, match="nl-da has no price for 2026-10-01T10:30:00Z"):
        intervals_covering([], at("2026-10-01T10:30"), at("2026-10-01T11:00"), "nl-da")


def test_an_instant_session_still_needs_the_interval_it_falls_in():
    values = series("2026-10-01T10:00", "0.1")
    assert intervals_covering(values, at("2026-10-01T10:59"), at("2026-10-01T10:59"),
                              "nl-da") == values
    with pytest.raises(IndexGapError):
        intervals_covering(values, at("2026-10-01T11:00"), at("2026-10-01T11:00"), "nl-da")


# --- materialize + price_session --------------------------------------------------------------

def test_a_totals_session_is_priced_interval_by_interval():
    # 2 kWh over 14:30-15:30 UTC at constant power: 1 kWh in each hour.
    # 14:00 → 0.20 × 1.10 + 0.02 = 0.24; 15:00 → 0.40 × 1.10 + 0.02 = 0.46.
    rule = IndexRule(index="nl-da", markup_pct=D("10"), markup_abs=D("0.02"))
    values = series("2026-10-01T13:00", "9", "0.20", "0.40", "9")
    cdr = totals("2026-10-01T14:30", "2026-10-01T15:30", "2")
    materialized = materialize(INDEXED, {(0, 0): rule}, {"nl-da": values}, cdr.start, cdr.end)
    result = price_session(materialized.tariff, cdr, AMSTERDAM)
    assert result.total_cost.excl_vat == D("0.70")          # 0.24 + 0.46
    assert result.total_cost.incl_vat == D("0.85")          # 0.70 × 1.21 = 0.847
    energy_periods = [p for p in result.periods if p.dimension == "ENERGY"]
    assert [(p.start, p.volume, p.component.price) for p in energy_periods] == [
        (at("2026-10-01T14:30"), 1, D("0.24")), (at("2026-10-01T15:00"), 1, D("0.46"))]
    # each priced element comes from element 0 of the tariff and one interval of the index
    assert [materialized.origin[p.element_index] for p in energy_periods] == [
        (0, values[1]), (0, values[2])]


def test_materialize_keeps_the_elements_that_do_not_follow_an_index():
    values = series("2026-10-01T14:00", "0.20", "0.40")
    materialized = materialize(INDEXED, RULES, {"nl-da": values}, at("2026-10-01T14:30"),
                               at("2026-10-01T15:30"))
    assert len(materialized.tariff.elements) == 3
    assert materialized.tariff.elements[-1] == INDEXED.elements[1]
    assert materialized.origin == ((0, values[0]), (0, values[1]), (1, None))
    # the other components of an indexed element keep their price in every interval
    assert [e.price_components[1].price for e in materialized.tariff.elements[:2]] == [
        D("2.00"), D("2.00")]


def test_without_rules_the_tariff_is_unchanged():
    materialized = materialize(INDEXED, {}, {}, at("2026-10-01T14:30"), at("2026-10-01T15:30"))
    assert materialized.tariff is INDEXED
    assert materialized.origin == ((0, None), (1, None))


def test_a_missing_index_value_makes_the_session_unpriceable():
    values = series("2026-10-01T14:00", "0.20")
    with pytest.raises(IndexGapError, match="2026-10-01T15:00:00Z"):
        materialize(INDEXED, RULES, {"nl-da": values}, at("2026-10-01T14:30"),
                    at("2026-10-01T15:30"))


def test_parking_after_charging_is_priced_by_the_indexed_elements_other_component():
    # 1 kWh from 14:30 to 15:00, then parked until 15:30 at 2.00/h.
    values = series("2026-10-01T14:00", "0.20", "0.40")
    cdr = totals("2026-10-01T14:30", "2026-10-01T15:30", "1", "0.5")
    materialized = materialize(INDEXED, RULES, {"nl-da": values}, cdr.start, cdr.end)
    result = price_session(materialized.tariff, cdr, AMSTERDAM)
    assert result.total_energy_cost.excl_vat == D("0.20")
    assert result.total_parking_cost.excl_vat == D("1.00")


def test_a_session_with_charging_periods_takes_the_interval_in_force_at_each_periods_start():
    values = series("2026-10-01T14:00", "0.20", "0.40")
    cdr = Cdr(start=at("2026-10-01T14:30"), end=at("2026-10-01T15:30"), currency="EUR",
              charging_periods=(
                  ChargingPeriod(at("2026-10-01T14:30"), (CdrDimension("ENERGY", D("1")),)),
                  ChargingPeriod(at("2026-10-01T15:00"), (CdrDimension("ENERGY", D("3")),))))
    materialized = materialize(INDEXED, RULES, {"nl-da": values}, cdr.start, cdr.end)
    result = price_session(materialized.tariff, cdr, AMSTERDAM)
    assert result.total_energy_cost.excl_vat == D("1.40")    # 1 × 0.20 + 3 × 0.40


def test_the_repeated_hour_of_the_dst_fall_back_night_gets_both_of_its_prices():
    # Amsterdam, 25 October 2026: 02:00-03:00 local happens at 00:00 UTC (CEST) and again at
    # 01:00 UTC (CET). 4 kWh at constant power from 00:00 to 02:00 UTC: 2 kWh in each hour.
    values = series("2026-10-25T00:00", "0.10", "0.30")
    cdr = totals("2026-10-25T00:00", "2026-10-25T02:00", "4")
    materialized = materialize(INDEXED, RULES, {"nl-da": values}, cdr.start, cdr.end)
    result = price_session(materialized.tariff, cdr, AMSTERDAM)
    assert result.total_energy_cost.excl_vat == D("0.80")    # 2 × 0.10 + 2 × 0.30
    energy_periods = [p for p in result.periods if p.dimension == "ENERGY"]
    assert [(p.start.astimezone(AMSTERDAM).strftime("%H:%M%z"), p.component.price)
            for p in energy_periods] == [("02:00+0200", D("0.10")), ("02:00+0100", D("0.30"))]


def test_a_materialized_tariff_has_no_ocpi_form():
    values = series("2026-10-01T14:00", "0.20", "0.40")
    materialized = materialize(INDEXED, RULES, {"nl-da": values}, at("2026-10-01T14:30"),
                               at("2026-10-01T15:30"))
    with pytest.raises(PricingInputError, match="materialized from a price index"):
        tariff_to_ocpi(materialized.tariff)


# --- materialize_day --------------------------------------------------------------------------

def _day_values(day_start_utc: str, hours: int) -> list[IndexInterval]:
    return series(day_start_utc, *(f"0.{k + 10}" for k in range(hours)))


def test_materialize_day_writes_one_time_window_per_local_hour():
    # 1 June 2026 in Amsterdam (UTC+2) runs from 31 May 22:00 UTC to 1 June 22:00 UTC.
    values = _day_values("2026-05-31T22:00", 24)
    rule = IndexRule(index="nl-da", markup_abs=D("0.01"))
    day = materialize_day(INDEXED, {(0, 0): rule}, {"nl-da": values}, date(2026, 6, 1),
                          AMSTERDAM)
    indexed, rest = day.elements[:24], day.elements[24:]
    assert rest == INDEXED.elements[1:]
    windows = [(e.restrictions.start_time, e.restrictions.end_time) for e in indexed]
    assert windows == [(time(h), time((h + 1) % 24)) for h in range(24)]
    assert {(e.restrictions.start_date, e.restrictions.end_date) for e in indexed} == {
        (date(2026, 6, 1), date(2026, 6, 2))}
    assert [e.price_components[0].price for e in indexed] == [
        D(f"0.{k + 10}") + D("0.01") for k in range(24)]
    # it is plain OCPI: written out and read back unchanged
    assert parse_tariff(tariff_to_ocpi(day)) == day


def test_the_day_tariff_prices_a_session_of_that_day_like_the_session_tariff():
    values = _day_values("2026-05-31T22:00", 24)
    day = materialize_day(INDEXED, RULES, {"nl-da": values}, date(2026, 6, 1), AMSTERDAM)
    cdr = totals("2026-06-01T07:20", "2026-06-01T10:05", "11", "0.25")
    for_session = materialize(INDEXED, RULES, {"nl-da": values}, cdr.start, cdr.end).tariff
    assert price_session(day, cdr, AMSTERDAM).exact_total_cost == \
        price_session(for_session, cdr, AMSTERDAM).exact_total_cost


def test_materialize_day_intersects_the_intervals_with_the_elements_own_window():
    base = tariff(element(energy("0.30"), start_time="08:00", end_time="10:30"),
                  element(energy("0.25"), start_time="22:00", end_time="02:00"),
                  element(energy("0.99")))
    rules = {(0, 0): RULE, (1, 0): RULE}
    values = _day_values("2026-05-31T22:00", 24)
    day = materialize_day(base, rules, {"nl-da": values}, date(2026, 6, 1), AMSTERDAM)
    windows = [(e.restrictions.start_time, e.restrictions.end_time, e.price_components[0].price)
               for e in day.elements[:-1]]
    assert windows == [
        (time(8), time(9), D("0.18")), (time(9), time(10), D("0.19")),
        (time(10), time(10, 30), D("0.20")),
        # the window past midnight: from 00:00 to 02:00 and from 22:00 to the end of the day
        (time(0), time(1), D("0.10")), (time(1), time(2), D("0.11")),
        (time(22), time(23), D("0.32")), (time(23), time(0), D("0.33"))]
    assert day.elements[-1] == base.elements[2]


def test_materialize_day_leaves_out_an_element_that_does_not_hold_on_that_day():
    base = tariff(element(energy("0.30"), start_date="2026-07-01"), element(energy("0.99")))
    values = _day_values("2026-05-31T22:00", 24)
    day = materialize_day(base, {(0, 0): RULE}, {"nl-da": values}, date(2026, 6, 1), AMSTERDAM)
    assert day.elements == base.elements[1:]


def test_on_the_fall_back_day_the_repeated_hour_keeps_its_first_price_only():
    # 25 October 2026 in Amsterdam has 25 hours: from 24 Oct 22:00 UTC to 25 Oct 23:00 UTC.
    values = _day_values("2026-10-24T22:00", 25)
    day = materialize_day(INDEXED, RULES, {"nl-da": values}, date(2026, 10, 25), AMSTERDAM)
    indexed = day.elements[:-1]
    assert len(indexed) == 24
    by_start = {e.restrictions.start_time: e.price_components[0].price for e in indexed}
    assert by_start[time(1)] == D("0.11")   # 23:00 UTC
    assert by_start[time(2)] == D("0.12")   # 00:00 UTC, 02:00 CEST (01:00 UTC is left out)
    assert by_start[time(3)] == D("0.14")   # 02:00 UTC, 03:00 CET
    assert by_start[time(23)] == D("0.34")  # 22:00 UTC, the 25th value
    assert parse_tariff(tariff_to_ocpi(day)) == day


def test_materialize_day_refuses_a_day_the_index_does_not_cover():
    values = _day_values("2026-05-31T22:00", 23)
    with pytest.raises(IndexGapError, match="2026-06-01T21:00:00Z"):
        materialize_day(INDEXED, RULES, {"nl-da": values}, date(2026, 6, 1), AMSTERDAM)


# --- property: interval by interval, however finely the session is split ---------------------

BASES = [datetime(2026, 3, 28, 20, tzinfo=UTC), datetime(2026, 10, 24, 20, tzinfo=UTC),
         datetime(2026, 6, 3, 6, tzinfo=UTC)]


@st.composite
def indexed_sessions(draw):
    minutes = draw(st.sampled_from([15, 60]))
    rule = IndexRule(index="nl-da",
                     markup_pct=draw(st.decimals(min_value=-20, max_value=50, places=1)),
                     markup_abs=draw(st.decimals(min_value=0, max_value=D("0.1"), places=4)),
                     cap=draw(st.one_of(st.none(), st.decimals(min_value=D("0.2"),
                                                               max_value=1, places=2))))
    vat = draw(st.sampled_from([None, "0", "9", "21"]))
    step = draw(st.sampled_from([0, 1]))
    base = tariff(element(energy("0.30", vat, step)))
    start = draw(st.sampled_from(BASES)) + timedelta(seconds=draw(st.integers(0, 12 * 3600)))
    charging_s = draw(st.integers(1, 6 * 3600))
    parking_s = draw(st.integers(0, 2 * 3600))
    kwh = draw(st.decimals(min_value=0, max_value=80, places=3))
    end = start + timedelta(seconds=charging_s + parking_s)
    grid_start = start.replace(minute=start.minute - start.minute % minutes, second=0)
    n = (end - grid_start) // timedelta(minutes=minutes) + 1
    values = series(grid_start.strftime("%Y-%m-%dT%H:%M"),
                    *(str(draw(st.decimals(min_value=D("-0.2"), max_value=D("0.8"), places=5)))
                      for _ in range(n)), minutes=minutes)
    cdr = Cdr(start=start, end=end, total_energy=kwh,
              total_parking_time=Fraction(parking_s, 3600), currency="EUR")
    extra = draw(st.lists(st.fractions(min_value=0, max_value=charging_s + parking_s,
                                       max_denominator=1000), max_size=5))
    return base, rule, values, cdr, charging_s, extra


def _round_half_up(value: Fraction) -> Decimal:
    cents = value * 100
    return D((cents.numerator * 2 + cents.denominator) // (2 * cents.denominator)) / 100


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(indexed_sessions())
def test_an_indexed_session_costs_the_sum_over_intervals_however_finely_it_is_split(case):
    base, rule, values, cdr, charging_s, extra = case
    materialized = materialize(base, {(0, 0): rule}, {"nl-da": values}, cdr.start, cdr.end)
    plain = price_session(materialized.tariff, cdr, AMSTERDAM)
    finer = price_segments(materialized.tariff, cdr, split_totals_into_periods(
        materialized.tariff, cdr, AMSTERDAM, extra), AMSTERDAM)
    assert finer.exact_total_cost == plain.exact_total_cost
    assert finer.total_cost == plain.total_cost

    # by hand: kWh delivered in each interval (constant power while charging) × its price
    charging_end = cdr.start + timedelta(seconds=charging_s)
    expected = Fraction(0)
    for interval in values:
        overlap = (min(interval.end, charging_end) - max(interval.start, cdr.start))
        if overlap <= timedelta(0):
            continue
        kwh = Fraction(cdr.total_energy) * Fraction(overlap.total_seconds()) / charging_s
        price = interval.value * (1 + rule.markup_pct / 100) + rule.markup_abs
        price = max(price, D(0))
        if rule.cap is not None:
            price = min(price, rule.cap)
        expected += kwh * Fraction(price)
    assert plain.exact_total_cost.excl_vat == expected
    assert plain.total_cost.excl_vat == _round_half_up(expected)



def test_on_the_fall_back_day_quarter_hours_of_the_repeated_hour_all_keep_their_first_price():
    # 96 + 4 quarter hours; 00:00-01:00 UTC is 02:00-03:00 CEST, 01:00-02:00 UTC 02:00-03:00 CET
    values = series("2026-10-24T22:00", *(str(k) for k in range(100)), minutes=15)
    day = materialize_day(INDEXED, RULES, {"nl-da": values}, date(2026, 10, 25), AMSTERDAM)
    indexed = day.elements[:-1]
    assert len(indexed) == 96
    repeated = [(e.restrictions.start_time, e.restrictions.end_time, e.price_components[0].price)
                for e in indexed if time(2) <= e.restrictions.start_time < time(3)]
    assert repeated == [(time(2), time(2, 15), D(8)), (time(2, 15), time(2, 30), D(9)),
                        (time(2, 30), time(2, 45), D(10)), (time(2, 45), time(3), D(11))]
