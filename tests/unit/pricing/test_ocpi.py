"""OCPI 2.2.1 JSON in and out: validation names the field, import → export → import is lossless."""

import json
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from tariffs.pricing.errors import PricingInputError
from tariffs.pricing.ocpi import dumps, loads, parse_cdr, parse_tariff, tariff_to_ocpi, unwrap

from .helpers import cdr_data, element, energy, flat, parking, period, tariff_data, time_

FULL_TARIFF = """{
  "country_code": "DE", "party_id": "ALL", "id": "14", "currency": "EUR", "type": "REGULAR",
  "tariff_alt_text": [{"language": "en", "text": "2.50 start, 1.00/h"},
                      {"language": "nl", "text": "2,50 start, 1,00/u"}],
  "tariff_alt_url": "https://company.com/tariffs/14",
  "min_price": {"excl_vat": 0.50, "incl_vat": 0.55},
  "max_price": {"excl_vat": 10.00},
  "elements": [
    {"price_components": [{"type": "FLAT", "price": 2.50, "vat": 15.0, "step_size": 1}]},
    {"price_components": [{"type": "TIME", "price": 1.00, "vat": 20.0, "step_size": 900},
                          {"type": "PARKING_TIME", "price": 0, "step_size": 60}],
     "restrictions": {"start_time": "09:00", "end_time": "00:00", "start_date": "2024-01-01",
                      "end_date": "2025-01-01", "min_kwh": 0.5, "max_kwh": 50,
                      "min_current": 6, "max_current": 32.00, "min_power": 1.5,
                      "max_power": 22, "min_duration": 0, "max_duration": 7200,
                      "day_of_week": ["MONDAY", "FRIDAY"]}},
    {"price_components": [{"type": "TIME", "price": 5, "vat": 20, "step_size": 60}],
     "restrictions": {"reservation": "RESERVATION"}},
    {"price_components": [{"type": "ENERGY", "price": 0.2500, "vat": 0, "step_size": 100}]}
  ],
  "start_date_time": "2024-01-01T00:00:00Z", "end_date_time": "2025-06-30T23:59:59.5Z",
  "energy_mix": {"is_green_energy": true, "energy_sources": [{"source": "SOLAR",
                 "percentage": 100}], "supplier_name": "Sun"},
  "last_updated": "2024-01-01T12:00:00Z",
  "tax_included": "NO"
}"""


def test_full_tariff_is_parsed_into_typed_fields():
    t = parse_tariff(loads(FULL_TARIFF))
    assert (t.id, t.currency, t.country_code, t.party_id, t.type) == \
        ("14", "EUR", "DE", "ALL", "REGULAR")
    assert t.min_price.incl_vat == Decimal("0.55") and t.max_price.incl_vat is None
    r = t.elements[1].restrictions
    assert (r.start_time, r.end_time) == (time(9), time(0))
    assert (r.start_date, r.end_date) == (date(2024, 1, 1), date(2025, 1, 1))
    assert r.max_current == Decimal("32.00") and r.max_duration == 7200
    assert r.day_of_week == frozenset({"MONDAY", "FRIDAY"})
    assert t.elements[2].restrictions.reservation == "RESERVATION"
    assert t.elements[1].price_components[1].vat is None
    assert t.elements[3].price_components[0].vat == 0
    assert t.end_date_time == datetime(2025, 6, 30, 23, 59, 59, 500000, tzinfo=UTC)
    assert t.extra == {"tax_included": "NO"}


def test_import_export_import_is_lossless():
    data = loads(FULL_TARIFF)
    t = parse_tariff(data)
    exported = tariff_to_ocpi(t)
    assert parse_tariff(exported) == t
    assert parse_tariff(loads(dumps(exported))) == t
    assert exported == data  # every field of this canonical tariff comes back as it was given


def test_export_keeps_the_digits_of_every_number():
    exported = dumps(tariff_to_ocpi(parse_tariff(loads(FULL_TARIFF))))
    assert '"price": 0.2500' in exported and '"excl_vat": 10.00' in exported
    assert json.loads(exported)["elements"][0]["price_components"][0]["price"] == 2.5


def test_minimal_tariff_round_trips():
    data = {"id": "T", "currency": "EUR", "elements": [element(energy("0.3"))]}
    assert tariff_to_ocpi(parse_tariff(data)) == data


def test_envelope_is_unwrapped():
    data = tariff_data(element(energy("1")))
    assert unwrap({"data": data, "status_code": 1000, "timestamp": "2024-01-01T00:00:00Z"}) \
        is data
    assert unwrap(data) is data
    assert unwrap({"data": [data], "status_code": 1000}) is data
    with pytest.raises(PricingInputError, match="one object"):
        unwrap({"data": [data, data], "status_code": 1000})


def test_floats_from_callers_become_their_shortest_decimal():
    t = parse_tariff({"id": "T", "currency": "EUR",
                      "elements": [{"price_components": [{"type": "ENERGY", "price": 0.1,
                                                          "step_size": 1}]}]})
    assert t.elements[0].price_components[0].price == Decimal("0.1")


INVALID_TARIFFS = [
    ([], None, "must be an OCPI tariff"),
    ({"currency": "EUR", "elements": []}, "id", "is required"),
    ({"id": "T", "elements": [element(energy("1"))]}, "currency", "is required"),
    ({"id": "T", "currency": "euro", "elements": [element(energy("1"))]}, "currency",
     "ISO 4217"),
    ({"id": "T", "currency": "EUR", "elements": []}, "elements", "at least 1"),
    ({"id": "T", "currency": "EUR", "elements": [{"price_components": []}]},
     "elements[0].price_components", "at least 1"),
    ({"id": "T", "currency": "EUR", "elements": [element({
        "type": "KWH", "price": Decimal(1), "step_size": 1})]},
     "elements[0].price_components[0].type", "is not one of"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("-1"))]},
     "elements[0].price_components[0].price", "must not be negative"),
    ({"id": "T", "currency": "EUR", "elements": [element({"type": "ENERGY", "price": "0.25",
                                                          "step_size": 1})]},
     "elements[0].price_components[0].price", "must be a number"),
    ({"id": "T", "currency": "EUR", "elements": [element({"type": "ENERGY",
                                                          "price": Decimal(1),
                                                          "step_size": Decimal("1.5")})]},
     "elements[0].price_components[0].step_size", "whole number"),
    ({"id": "T", "currency": "EUR", "elements": [element({"type": "ENERGY",
                                                          "price": Decimal(1)})]},
     "elements[0].price_components[0].step_size", "is required"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("1"), start_time="24:00")]},
     "elements[0].restrictions.start_time", "is not a time of day"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("1"), end_time="7:00")]},
     "elements[0].restrictions.end_time", "is not a time of day"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("1"),
                                                         start_date="2024-02-30")]},
     "elements[0].restrictions.start_date", "not a valid date"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("1"),
                                                         day_of_week=["MONDAY", "FUNDAY"])]},
     "elements[0].restrictions.day_of_week[1]", "is not one of"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("1"), reservation="YES")]},
     "elements[0].restrictions.reservation", "is not one of"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("1"), max_kwhh=1)]},
     "elements[0].restrictions.max_kwhh", "is not a field"),
    ({"id": "T", "currency": "EUR", "elements": [{"price_components": [energy("1")],
                                                  "tariff_restrictions": {}}]},
     "elements[0].tariff_restrictions", "is not a field"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("1"))], "min_price": {}},
     "min_price.excl_vat", "is required"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("1"))], "type": "CHEAP"},
     "type", "is not one of"),
    ({"id": "T", "currency": "EUR", "elements": [element(energy("1"))],
      "last_updated": "2024-01-01 10:00"}, "last_updated", "not a date and time"),
]


@pytest.mark.parametrize("data,field,message", INVALID_TARIFFS)
def test_invalid_tariff_names_the_field(data, field, message):
    with pytest.raises(PricingInputError) as error:
        parse_tariff(data)
    assert error.value.field == field
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)


def test_invalid_json_and_non_numbers_are_refused():
    with pytest.raises(PricingInputError, match="invalid JSON"):
        loads("{")
    with pytest.raises(PricingInputError, match="invalid JSON"):
        loads('{"price": NaN}')


def test_cdr_is_parsed_with_utc_instants_and_decimal_volumes():
    c = parse_cdr(loads(json.dumps(cdr_data(
        "2024-03-04T11:00:00+01:00", "2024-03-04T12:00:00",
        {"start_date_time": "2024-03-04T10:00:00Z",
         "dimensions": [{"type": "ENERGY", "volume": 1.5}], "tariff_id": "T1"},
        total_energy=1.5, cdr_location={"id": "ignored"}))))
    assert c.start == c.charging_periods[0].start == datetime(2024, 3, 4, 10, tzinfo=UTC)
    assert c.end == datetime(2024, 3, 4, 12, tzinfo=UTC)  # no designator: UTC
    assert c.charging_periods[0].dimensions[0].volume == Decimal("1.5")
    assert c.charging_periods[0].tariff_id == "T1"


INVALID_CDRS = [
    (cdr_data("2024-03-04T10:00:00Z", "2024-03-04T09:00:00Z", period("2024-03-04T10:00:00Z")),
     "end_date_time", "before start_date_time"),
    ({"end_date_time": "2024-03-04T09:00:00Z"}, "start_date_time", "is required"),
    (cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z"), "total_energy", "is required"),
    (cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z",
              period("2024-03-04T11:00:00Z", ENERGY=1), period("2024-03-04T10:30:00Z")),
     "charging_periods[1].start_date_time", "before the start of the previous period"),
    (cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z",
              period("2024-03-04T09:00:00Z", ENERGY=1)),
     "charging_periods[0].start_date_time", "before start_date_time"),
    (cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z",
              period("2024-03-04T13:00:00Z", ENERGY=1)),
     "charging_periods[0].start_date_time", "after end_date_time"),
    (cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z",
              period("2024-03-04T10:00:00Z", KWH=1)),
     "charging_periods[0].dimensions[0].type", "is not one of"),
    (cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z",
              period("2024-03-04T10:00:00Z", TIME=-1)),
     "charging_periods[0].dimensions[0].volume", "must not be negative"),
    (cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z", total_energy=1,
              total_time=-2), "total_time", "must not be negative"),
    (cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z", total_energy=1,
              currency="EURO"), "currency", "ISO 4217"),
]


@pytest.mark.parametrize("data,field,message", INVALID_CDRS)
def test_invalid_cdr_names_the_field(data, field, message):
    for name in ("total_energy", "total_time"):
        if isinstance(data.get(name), int):
            data[name] = Decimal(data[name])
    with pytest.raises(PricingInputError) as error:
        parse_cdr(data)
    assert error.value.field == field
    assert message in str(error.value)


def test_a_dimension_given_twice_in_a_period_is_refused():
    data = cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:00:00Z",
                    period("2024-03-04T10:00:00Z", ENERGY=1))
    data["charging_periods"][0]["dimensions"].append({"type": "ENERGY", "volume": Decimal(2)})
    with pytest.raises(PricingInputError, match=r"dimensions\[1\].type: ENERGY is given twice"):
        parse_cdr(data)


def test_builders_used_in_these_tests_make_valid_ocpi():
    parse_tariff(tariff_data(element(flat("1"), energy("0.3"), time_("1"), parking("2"))))


def test_an_astronomically_large_number_is_refused_cleanly_not_with_an_overflow():
    from decimal import Decimal

    from tariffs.pricing.ocpi import PricingInputError, loads, parse_tariff

    data = loads('{"id": "T", "currency": "EUR", "elements": [{"price_components": '
                 '[{"type": "ENERGY", "price": 1e999999999, "step_size": 1}]}]}')
    assert data["elements"][0]["price_components"][0]["price"] == Decimal("1e999999999")
    with pytest.raises(PricingInputError, match="price: is too large"):
        parse_tariff(data)
