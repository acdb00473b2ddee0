"""A stored session as the engine's Cdr (tariffs/pricing/sessions.py): which of its times count."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from tariffs.pricing.engine import price_session
from tariffs.pricing.errors import PricingInputError
from tariffs.pricing.sessions import session_cdr

from .helpers import AMSTERDAM, element, energy, parking, tariff, time_

D = Decimal
START = datetime(2026, 10, 1, 10, tzinfo=UTC)
END = START + timedelta(hours=2)
#: 1.00 per hour charging, 2.00 per hour parked: the cost tells how the time was split
TIMES = tariff(element(time_("1.00"), parking("2.00")))


def cdr(charging_seconds: int, parking_seconds: int, end: datetime = END, **kwargs):
    return session_cdr(start=START, end=end, energy_kwh=D("10"),
                       charging_seconds=charging_seconds, parking_seconds=parking_seconds,
                       external_id="CDR-1", **kwargs)


def cost(session) -> tuple[Decimal, Decimal]:
    result = price_session(TIMES, session, AMSTERDAM)
    return result.total_time_cost.excl_vat, result.total_parking_cost.excl_vat


def test_charging_seconds_are_authoritative_and_the_rest_of_the_session_is_parking():
    # the parking_seconds column disagrees (10 minutes); the end of the session decides
    session = cdr(5400, 600)
    assert session.total_parking_time == Fraction(1, 2)
    assert session.total_time is None and session.charging_periods == ()
    assert (session.start, session.end, session.id) == (START, END, "CDR-1")
    assert session.total_energy == D("10")
    assert cost(session) == (D("1.50"), D("1.00"))


def test_without_charging_time_the_parking_seconds_count_and_the_rest_is_charging():
    session = cdr(0, 1800)
    assert session.total_parking_time == Fraction(1, 2)
    assert cost(session) == (D("1.50"), D("1.00"))


def test_whole_hours_of_parking_are_an_integer():
    session = cdr(3600, 0)
    assert session.total_parking_time == 1 and type(session.total_parking_time) is int


def test_parking_is_never_longer_than_the_session():
    assert cdr(0, 10 * 3600).total_parking_time == 2
    session = session_cdr(start=START, end=END, energy_kwh=D(0), charging_seconds=0,
                          parking_seconds=10 * 3600)
    assert cost(session) == (D("0.00"), D("4.00"))


def test_charging_longer_than_the_session_leaves_no_parking():
    session = cdr(3 * 3600, 0)
    assert session.total_parking_time == 0
    assert cost(session) == (D("2.00"), D("0.00"))


def test_parking_to_the_microsecond_of_a_session_with_fractional_seconds():
    end = END + timedelta(microseconds=500_000)
    session = cdr(5400, 0, end=end)
    assert session.total_parking_time == Fraction(1800_500_000, 3_600_000_000)


OCPI_RAW = {
    "id": "OCPI-CDR-1",
    "currency": "USD",
    "start_date_time": "2026-10-01T09:59:00Z",
    "end_date_time": "2026-10-01T12:30:00Z",
    "total_energy": 10.0,
    "charging_periods": [
        {"start_date_time": "2026-10-01T10:00:00Z",
         "dimensions": [{"type": "ENERGY", "volume": 10.0}, {"type": "TIME", "volume": 1}]},
        {"start_date_time": "2026-10-01T11:00:00Z",
         "dimensions": [{"type": "PARKING_TIME", "volume": 1}]},
    ],
}


def test_raw_ocpi_charging_periods_are_used_when_present():
    # the columns say 2 h of charging; the periods say 1 h charging then 1 h parked
    session = cdr(7200, 0, raw=OCPI_RAW)
    assert [p.start for p in session.charging_periods] == [START, START + timedelta(hours=1)]
    assert cost(session) == (D("1.00"), D("2.00"))
    # the session's own start and end are authoritative, not those of the raw record
    assert (session.start, session.end) == (START, END)
    # the currency is the tariff's: a raw record in another currency is still priced
    assert session.currency is None
    assert price_session(tariff(element(energy("0.30"))), session, AMSTERDAM) \
        .total_cost.excl_vat == D("3.00")


def test_the_sessions_energy_is_used_when_the_raw_record_has_no_total():
    raw = {k: v for k, v in OCPI_RAW.items() if k != "total_energy"}
    assert cdr(7200, 0, raw=raw).total_energy == D("10")


def test_a_raw_record_without_periods_is_priced_from_the_totals():
    for raw in ({"id": "X"}, {**OCPI_RAW, "charging_periods": []}, None, {}):
        session = cdr(5400, 0, raw=raw)
        assert session.charging_periods == ()
        assert cost(session) == (D("1.50"), D("1.00"))


def test_raw_periods_outside_the_session_are_refused():
    raw = {**OCPI_RAW, "charging_periods": [
        {"start_date_time": "2026-10-01T09:00:00Z",
         "dimensions": [{"type": "ENERGY", "volume": 10}]}]}
    with pytest.raises(PricingInputError, match=r"charging_periods\[0\].start_date_time"):
        cdr(7200, 0, raw=raw)
