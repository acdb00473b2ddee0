"""The one CDR validator: every rule for bad input, with the column, value and reason a person
reads (docs/cdr-csv.md, "Rules"). No database: the network lookup is filled in by hand."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emobility.cdrs.validation import (
    CdrValidator,
    NetworkLookup,
    Problem,
    Record,
    RowError,
    ValidCdr,
    parse_decimal,
    parse_time,
)
from emobility.selectors import CdrEvse, CdrToken

D = Decimal
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
AC = CdrEvse(1, "NL*ACM*E00001*1", D("22"), "Europe/Amsterdam", "CS-AMS-1")
TOKEN = CdrToken(10, "TOK1", 100, True, False, "NL-ACM-C00000001")
BLOCKED = CdrToken(11, "BLOCKED", 101, False, False, "")
BLOCKED_CUSTOMER = CdrToken(12, "BLOCKEDCUST", 102, True, True, "")


def validator(**kwargs) -> CdrValidator:
    lookup = NetworkLookup(operator_id=1)
    lookup.evses = {AC.evse_id: AC, "NL*OTH*E1*1": None, "": None}
    lookup.tokens = {t.uid: t for t in (TOKEN, BLOCKED, BLOCKED_CUSTOMER)} | {"NOPE": None,
                                                                              "": None}
    return CdrValidator(operator_id=1, currency="EUR", now=NOW, lookup=lookup, **kwargs)


def values(**changes) -> dict:
    base = {"cdr_id": "CDR-1", "start": "2026-10-01T08:00:00Z", "end": "2026-10-01T10:00:00Z",
            "evse_id": AC.evse_id, "energy_kwh": "20.5", "token_uid": "TOK1"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def check(v=None, **kwargs) -> ValidCdr | RowError:
    return validator(**kwargs).validate([Record(row=7, values=v or values(), raw={"x": "y"})])[0]


def refused(v, column, reason_part, **kwargs) -> RowError:
    outcome = check(v, **kwargs)
    assert isinstance(outcome, RowError), outcome
    assert outcome.row == 7 and outcome.column == column, outcome
    assert reason_part in outcome.reason, outcome.reason
    return outcome


def test_a_good_record_becomes_a_session_in_utc_with_defaults():
    cdr = check()
    assert isinstance(cdr, ValidCdr)
    assert cdr.start == datetime(2026, 10, 1, 8, tzinfo=UTC)
    assert cdr.energy_kwh == D("20.5000") and cdr.auth_method == "WHITELIST"
    assert cdr.contract_id == TOKEN.contract_id  # from the token when the CDR has none
    assert cdr.raw == {"x": "y"} and cdr.row == 7 and len(cdr.fingerprint) == 32


@pytest.mark.parametrize("column", ["cdr_id", "start", "end", "evse_id", "token_uid"])
def test_a_missing_required_value_is_refused(column):
    outcome = refused(values(**{column: "  "}), column, "is required")
    assert outcome.value == ""


def test_missing_energy_is_refused_naming_both_columns():
    refused(values(energy_kwh=None), "energy_kwh", "energy_kwh or energy_wh")


@pytest.mark.parametrize("raw, column, reason", [
    ("yesterday", "start", "is not a date and time"),
    ("2026-13-01T08:00:00Z", "start", "is not a date and time"),
    ("1999-12-31T08:00:00Z", "start", "before 2000"),
])
def test_an_unreadable_or_implausible_time_is_refused(raw, column, reason):
    refused(values(start=raw), column, reason)


@pytest.mark.parametrize("raw, reason", [
    ("abc", "is not a number"), ("NaN", "is not a number"), ("Infinity", "is not a number"),
    ("1e400", "is too large"), ("1,2,3", "thousands separators"), ("1.2,3.4", "separators"),
    ("-3", "must not be negative"), ("9" * 50, "too long"),
])
def test_an_unreadable_or_negative_energy_is_refused(raw, reason):
    outcome = refused(values(energy_kwh=raw), "energy_kwh", reason)
    assert outcome.value == raw


def test_end_not_after_start_is_refused():
    refused(values(end="2026-10-01T08:00:00Z"), "end", "is not after start")
    refused(values(end="2026-10-01T07:00:00Z"), "end", "is not after start")


def test_a_session_longer_than_31_days_or_ending_in_the_future_is_refused():
    refused(values(end="2026-11-02T10:00:00Z"), "end", "more than 31 days")
    refused(values(start="2026-11-25T11:00:00Z", end="2026-11-25T14:00:00Z"), "end",
            "lies in the future")


def test_energy_the_evse_cannot_deliver_in_the_time_is_refused():
    # 22 kW for 2 hours is 44 kWh; 5 % is allowed for meters and clocks.
    assert isinstance(check(values(energy_kwh="46.2")), ValidCdr)
    outcome = refused(values(energy_kwh="46.3"), "energy_kwh", "more than the EVSE (22 kW)")
    assert "at most 44.00 kWh" in outcome.reason


def test_unknown_evse_and_unknown_or_blocked_tokens_are_refused():
    refused(values(evse_id="NL*OTH*E1*1"), "evse_id", "is not an EVSE of this operator")
    refused(values(token_uid="NOPE"), "token_uid", "is not a token of this operator")
    refused(values(token_uid="BLOCKED"), "token_uid", "is blocked")
    refused(values(token_uid="BLOCKEDCUST"), "token_uid", "blocked customer")


def test_another_currency_than_the_operators_is_refused():
    refused(values(currency="usd"), "currency", "differs from the operator's currency (EUR)")
    assert check(values(currency="eur")).currency == "EUR"


def test_every_problem_of_a_row_is_reported_the_first_column_named():
    outcome = refused(values(energy_kwh="x", token_uid="NOPE", end="later"), "token_uid",
                      "token_uid: is not a token")
    assert "energy_kwh: is not a number ('x')" in outcome.reason
    assert "end: is not a date and time" in outcome.reason


@pytest.mark.parametrize("raw, kwh", [
    ("12,5", "12.5"), ("1.234,5", "1234.5"), ("1,234.5", "1234.5"), ("1 234,5", "1234.5"),
    ("1\u00a0234,5", "1234.5"), (" 7 ", "7"), ("1.2E+01", "12"), ("1.234.567", "1234567"),
    ("1,234,567", "1234567"), ("-0,5", "-0.5"),
])
def test_numbers_as_people_write_them(raw, kwh):
    assert parse_decimal(raw, "energy_kwh") == D(kwh)


def test_energy_in_wh_and_more_decimals_than_stored_are_converted_and_rounded_half_up():
    v = values(energy_kwh=None, energy_wh="20500,05")
    assert check(v).energy_kwh == D("20.5001")
    assert check(values(energy_kwh="1.00005")).energy_kwh == D("1.0001")


def test_naive_times_are_read_in_the_location_time_zone_or_utc():
    v = values(start="2026-07-01 10:00", end="2026-07-01 11:00")
    assert check(v).start == datetime(2026, 7, 1, 8, tzinfo=UTC)  # CEST
    assert check(v, naive_times="UTC").start == datetime(2026, 7, 1, 10, tzinfo=UTC)
    with_offset = values(start="2026-07-01T10:00:00+02:00", end="2026-07-01T11:00:00Z")
    assert check(with_offset, naive_times="UTC").start == datetime(2026, 7, 1, 8, tzinfo=UTC)


def test_day_first_formats_only_where_the_profile_allows_them():
    v = values(start="01-10-2026 10:00", end="01-10-2026 11:30")
    refused(v, "start", "is not a date and time")
    cdr = check(v, formats=("%d-%m-%Y %H:%M",))
    assert cdr.start == datetime(2026, 10, 1, 8, tzinfo=UTC)


def test_charging_and_parking_time_must_fit_the_session():
    cdr = check(values(charging_minutes="90", parking_minutes="30"))
    assert (cdr.charging_seconds, cdr.parking_seconds) == (5400, 1800)
    # rounded minutes a minute over: taken off parking
    cdr = check(values(charging_minutes="90,5", parking_minutes="30.5"))
    assert (cdr.charging_seconds, cdr.parking_seconds) == (5430, 1770)
    refused(values(charging_minutes="100", parking_minutes="30"), "parking_minutes",
            "exceed the session's duration (2h 00m)")
    refused(values(parking_minutes="-1"), "parking_minutes", "must not be negative")
    assert check(values(parking_hours="0.5")).parking_seconds == 1800


def test_texts_too_long_or_with_control_characters_are_refused():
    refused(values(cdr_id="C" * 65), "cdr_id", "longer than 64")
    refused(values(authorization_reference="a\x00b"), "authorization_reference",
            "control characters")
    refused(values(auth_method="magic"), "auth_method", "must be one of")
    assert check(values(auth_method="auth request")).auth_method == "AUTH_REQUEST"


def test_formula_like_text_is_kept_as_text():
    cdr = check(values(cdr_id="=HYPERLINK(\"http://x\")", contract_id="+31-EVIL"))
    assert cdr.external_id.startswith("=") and cdr.contract_id == "+31-EVIL"


def test_station_id_of_a_portal_export_must_match_the_evse():
    assert isinstance(check(values(station_id="cs-ams-1")), ValidCdr)
    refused(values(station_id="CS-OTHER"), "station_id", "does not match the EVSE's station")


def test_meter_values_must_not_run_backwards():
    refused(values(meter_start_wh="1000", meter_stop_wh="900"), "meter_stop_wh", "is lower")


def test_json_values_of_the_wrong_type_are_refused_not_crashed_on():
    refused(values(cdr_id={"a": 1}), "cdr_id", "must be text")
    refused(values(energy_kwh=True), "energy_kwh", "is not a number")
    assert check(values(energy_kwh=D("20.5"))).energy_kwh == D("20.5")


def test_parse_time_refuses_absurdly_long_text():
    with pytest.raises(Problem, match="too long"):
        parse_time("2026-10-01T08:00:00Z" * 3, "start", None)


# --- properties --------------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0"), max_value=D("99999999"), places=4, allow_nan=False,
                      allow_infinity=False)


def _written(number: Decimal, style: int) -> str:
    plain = format(number, "f")
    whole, _, fraction = plain.partition(".")
    grouped = f"{int(whole):,}"
    if style == 0:
        return plain
    if style == 1:
        return plain.replace(".", ",")
    if style == 2:
        return grouped + ("." + fraction if fraction else "")
    return grouped.replace(",", ".") + ("," + fraction if fraction else "")


@given(amounts, st.integers(min_value=0, max_value=3))
def test_a_number_reads_back_exactly_however_it_is_written(number, style):
    text = _written(number, style)
    if style == 3 and "," not in text and text.count(".") == 1:
        return  # "1.234": one dot is a decimal point (documented), not a thousands dot
    if style == 2 and "." not in text and text.count(",") == 1:
        return  # "1,234": one comma is a decimal comma (documented), not a thousands comma
    assert parse_decimal(text, "energy_kwh") == number


@given(st.decimals(min_value=D("0"), max_value=D("44"), places=4),
       st.integers(min_value=0, max_value=1))
def test_the_same_cdr_written_differently_has_the_same_fingerprint(kwh, style):
    a = check(values(energy_kwh=format(kwh, "f")))
    b = check(values(energy_kwh=_written(kwh, style),
                     start="2026-10-01 10:00", end="2026-10-01T12:00:00+02:00"))
    assert isinstance(a, ValidCdr) and isinstance(b, ValidCdr)
    assert a.fingerprint == b.fingerprint
    c = check(values(energy_kwh=format(kwh + D("0.0001"), "f")))
    assert c.fingerprint != a.fingerprint
