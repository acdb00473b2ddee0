"""POST /api/v1/cdrs (emobility/api/cdrs.py, emobility/cdrs/ocpi.py and push.py): OCPI 2.2.1
CDRs pushed one by one or in lists, validated by the one validator, stored exactly once, rated at
once; malformed, hostile and oversized input; another operator's network."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from emobility.cdrs.ocpi import record_from_ocpi
from emobility.cdrs.push import cdrs_receive
from emobility.cdrs.validation import Record, RowError
from emobility.exactjson import dumps as exact_dumps
from emobility.models import ChargingSession
from tariffs.models import PriceComponent, RatingRun, SessionPrice, TariffAssignment, TariffElement
from tests.factories import MembershipFactory, TariffFactory, TariffVersionFactory, UserFactory

from .cdr_helpers import error, floats_in, ocpi_cdr, post_json

pytestmark = pytest.mark.django_db
URL = "/api/v1/cdrs"


def post(client, data, key, **kwargs):
    return post_json(client, URL, data, key, **kwargs)


def ok(response) -> dict:
    assert response.status_code == 200, response.content[:3000]
    return response.json()


def only(response) -> dict:
    """The one result of a request that sent one CDR."""
    results = response.json()["results"]
    assert len(results) == 1
    return results[0]


def refused(client, net, cdr, field, reason_part) -> dict:
    """``cdr`` sent alone is refused (422) for ``field``; nothing is stored."""
    response = post(client, cdr, net.key)
    err = error(response, 422, "cdrs_refused")
    result = only(response)
    assert result["status"] == "refused", result
    assert result["field"] == field, result
    assert reason_part in result["reason"], result["reason"]
    assert err["message"] == result["reason"]
    assert not ChargingSession.objects.exists()
    return result


# --- one CDR, a list ---------------------------------------------------------------------------

def test_one_ocpi_cdr_is_stored_as_it_was_received_and_rated_at_once(client, cdr_net):
    data = ok(post(client, ocpi_cdr(), cdr_net.key))
    assert data["counts"] == {"received": 1, "imported": 1, "duplicates": 0, "conflicts": 0,
                              "refused": 0, "rated": 1, "settled": 1, "rating_failed": 0}
    result = data["results"][0]
    session = ChargingSession.objects.get()
    assert result == {
        "index": None, "cdr_id": "CDR-1", "status": "imported", "session": session.pk,
        "rating": {"status": "settled", "currency": "EUR",
                   "total_cost": {"excl_vat": "8.20", "incl_vat": "9.92"},
                   "settlement": {"currency": "EUR", "discounts": "0.00",
                                  "credit_used": "0.00", "amount_due": "9.92"}}}
    assert session.operator == cdr_net.operator and session.evse == cdr_net.evse
    assert session.token == cdr_net.token and session.customer == cdr_net.token.customer
    assert session.source == ChargingSession.Source.API
    assert session.start == datetime(2026, 10, 1, 8, tzinfo=UTC)
    assert session.end == datetime(2026, 10, 1, 10, tzinfo=UTC)
    assert session.energy_kwh == Decimal("20.5")
    assert session.parking_seconds == 1800
    assert session.contract_id == "NL-ACM-C00000001"
    assert session.ocpi_session_id == "SESSION-1"
    assert session.auth_method == "WHITELIST" and session.authorization_reference == "AUTH-1"
    assert session.tariff_reference == "STD"
    assert session.cpo_cost_excl_vat.amount == Decimal("8.20")
    assert str(session.cpo_cost_excl_vat.currency) == "EUR"
    assert session.cdr_import is None and session.import_row is None
    assert session.status == ChargingSession.Status.SETTLED  # rated, then settled at once
    # the CDR as received: numbers are the exact decimals that were sent, never floats
    assert session.raw == ocpi_cdr()
    assert session.raw["total_energy"] == Decimal("20.5")
    assert isinstance(session.raw["charging_periods"][0]["dimensions"][0]["volume"], Decimal)
    assert floats_in(session.raw) == []
    run = RatingRun.objects.get()
    assert run.trigger == RatingRun.Trigger.IMPORT and run.rated == 1
    assert "CDRs received through the API (key " in run.reason
    assert floats_in(data) == []


def test_a_list_of_cdrs_answers_for_each_in_order(client, cdr_net):
    cdrs = [ocpi_cdr(f"CDR-{n}", start_date_time=f"2026-10-0{n}T08:00:00Z",
                     end_date_time=f"2026-10-0{n}T10:00:00Z", periods=False)
            for n in range(1, 4)]
    data = ok(post(client, cdrs, cdr_net.key))
    assert [r["index"] for r in data["results"]] == [0, 1, 2]
    assert [r["cdr_id"] for r in data["results"]] == ["CDR-1", "CDR-2", "CDR-3"]
    assert {r["status"] for r in data["results"]} == {"imported"}
    assert data["counts"]["imported"] == 3 and data["counts"]["rated"] == 3
    sessions = {s.external_id: s.pk for s in ChargingSession.objects.all()}
    assert [r["session"] for r in data["results"]] == [sessions[f"CDR-{n}"] for n in (1, 2, 3)]
    assert RatingRun.objects.count() == 1  # one rating call for the whole list


def test_a_list_with_good_and_bad_cdrs_answers_200_and_stores_the_good_ones(client, cdr_net):
    cdrs = [ocpi_cdr("GOOD"), ocpi_cdr("BAD", cdr_location={"evse_id": "NL*ACM*E99999*1"}),
            "not a CDR", 42, None, [1, 2]]
    data = ok(post(client, cdrs, cdr_net.key))
    statuses = [r["status"] for r in data["results"]]
    assert statuses == ["imported", "refused", "refused", "refused", "refused", "refused"]
    assert data["results"][1]["field"] == "cdr_location.evse_id"
    assert data["results"][1]["reason"] == ("cdr_location.evse_id: is not an EVSE of this "
                                            "operator ('NL*ACM*E99999*1')")
    assert data["results"][2] == {"index": 2, "cdr_id": "", "status": "refused", "field": "",
                                  "value": "not a CDR",
                                  "reason": "is not an OCPI CDR (a JSON object) but text"}
    assert data["results"][3]["reason"] == "is not an OCPI CDR (a JSON object) but a number"
    assert data["results"][4]["reason"] == "is not an OCPI CDR (a JSON object) but null"
    assert data["results"][5]["reason"] == "is not an OCPI CDR (a JSON object) but a list"
    assert list(ChargingSession.objects.values_list("external_id", flat=True)) == ["GOOD"]


def test_when_no_cdr_of_a_list_is_accepted_the_answer_is_422_with_every_result(client, cdr_net):
    response = post(client, ["x", ocpi_cdr(cdr_token={"uid": "NOPE"})], cdr_net.key)
    err = error(response, 422, "cdrs_refused")
    assert err["message"] == ("No CDR was accepted: 2 refused, 0 in conflict with a CDR "
                              "received before (see results).")
    data = response.json()
    assert [r["status"] for r in data["results"]] == ["refused", "refused"]
    assert data["results"][1]["field"] == "cdr_token.uid"
    assert data["counts"]["refused"] == 2


# --- priced from its charging periods ------------------------------------------------------------

def tiered_tariff_at(evse):
    """ENERGY 0.50/kWh until 10 kWh were delivered, 0.20/kWh from then on (no VAT), assigned to
    ``evse``: priced from periods of 8 and 12 kWh every kWh costs 0.50 (the second period starts
    at 8 kWh), priced from the totals 10 kWh cost 0.50 and 10 kWh 0.20."""
    tariff = TariffFactory(operator=evse.operator, code="TIERED")
    version = TariffVersionFactory(tariff=tariff)
    version.elements.all().delete()
    for position, price, limits in ((0, "0.50", {"max_kwh": Decimal(10)}),
                                    (1, "0.20", {"min_kwh": Decimal(10)})):
        element = TariffElement.objects.create(version=version, position=position, **limits)
        PriceComponent.objects.create(element=element, type="ENERGY", price=Decimal(price),
                                      vat=None, step_size=1)
    TariffAssignment.objects.create(operator=evse.operator, tariff=tariff, level="evse",
                                    evse=evse, valid_from=datetime(2020, 1, 1, tzinfo=UTC))


def test_an_ocpi_cdr_with_charging_periods_is_priced_from_its_periods(client, cdr_net):
    tiered_tariff_at(cdr_net.evse)
    periods = [
        {"start_date_time": "2026-10-01T08:00:00Z",
         "dimensions": [{"type": "ENERGY", "volume": 8}, {"type": "TIME", "volume": 1}]},
        {"start_date_time": "2026-10-01T09:00:00Z",
         "dimensions": [{"type": "ENERGY", "volume": 12}, {"type": "TIME", "volume": 1}]},
    ]
    with_periods = ocpi_cdr("WITH-PERIODS", charging_periods=periods, total_energy=20,
                            total_parking_time=0)
    totals_only = ocpi_cdr("TOTALS-ONLY", periods=False, total_energy=20,
                           total_parking_time=0)
    data = ok(post(client, [with_periods, totals_only], cdr_net.key))
    priced = {r["cdr_id"]: r["rating"]["total_cost"]["excl_vat"] for r in data["results"]}
    assert priced == {"WITH-PERIODS": "10.00", "TOTALS-ONLY": "7.00"}
    price = SessionPrice.objects.get(session__external_id="WITH-PERIODS")
    assert price.breakdown["total_cost"]["excl_vat"] == "10.00"
    assert price.tariff_version.tariff.code == "TIERED"


def test_charging_periods_the_engine_cannot_read_are_refused_before_anything_is_stored(
        client, cdr_net):
    early = [{"start_date_time": "2026-10-01T07:00:00Z",
              "dimensions": [{"type": "ENERGY", "volume": 20}]}]
    refused(client, cdr_net, ocpi_cdr(charging_periods=early),
            "charging_periods[0].start_date_time", "is before start_date_time")
    unknown = [{"start_date_time": "2026-10-01T08:00:00Z",
                "dimensions": [{"type": "FLUX", "volume": 20}]}]
    refused(client, cdr_net, ocpi_cdr(charging_periods=unknown),
            "charging_periods[0].dimensions[0].type", "'FLUX' is not one of")
    not_a_time = [{"start_date_time": "at eight", "dimensions": []}]
    refused(client, cdr_net, ocpi_cdr(charging_periods=not_a_time),
            "charging_periods[0].start_date_time", "is not a date and time")


def test_a_session_no_tariff_prices_is_imported_and_answers_why_rating_failed(client, cdr_net):
    cdr = ocpi_cdr(start_date_time="2019-06-01T08:00:00Z", end_date_time="2019-06-01T10:00:00Z",
                   periods=False)
    data = ok(post(client, cdr, cdr_net.key))
    rating = data["results"][0]["rating"]
    assert rating["status"] == "rating_failed"
    assert rating["reason"].startswith("No tariff applies")
    assert data["counts"]["rating_failed"] == 1
    assert ChargingSession.objects.get().status == ChargingSession.Status.RATING_FAILED


def test_when_rating_breaks_off_the_cdrs_stay_stored_and_imported(client, cdr_net, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the rating engine is down")

    monkeypatch.setattr("emobility.api.cdrs.sessions_rate", broken)
    data = ok(post(client, ocpi_cdr(), cdr_net.key))
    assert data["results"][0]["status"] == "imported"
    assert data["results"][0]["rating"] == {"status": "imported"}
    assert ChargingSession.objects.get().status == ChargingSession.Status.IMPORTED


# --- sent again -------------------------------------------------------------------------------

def test_a_cdr_sent_again_is_a_duplicate_and_changes_nothing(client, cdr_net):
    first = only(post(client, ocpi_cdr(), cdr_net.key))
    before = ChargingSession.objects.values().get()
    again = post(client, ocpi_cdr(), cdr_net.key)
    assert again.status_code == 200  # accepted: the back office has it
    assert only(again) == {"index": None, "cdr_id": "CDR-1", "status": "duplicate",
                           "session": first["session"],
                           "reason": "this CDR was received before; the stored session is "
                                     "unchanged"}
    assert ChargingSession.objects.values().get() == before
    assert RatingRun.objects.count() == 1


def test_the_same_cdr_written_differently_is_still_a_duplicate(client, cdr_net):
    post(client, ocpi_cdr(), cdr_net.key)
    same = ocpi_cdr(start_date_time="2026-10-01T10:00:00+02:00", total_energy=Decimal("20.50"))
    same["charging_periods"][0]["start_date_time"] = "2026-10-01T08:00:00+00:00"
    same["charging_periods"][0]["dimensions"].reverse()
    same["charging_periods"][0]["dimensions"][0]["volume"] = Decimal("1.50")
    assert only(post(client, same, cdr_net.key))["status"] == "duplicate"


@pytest.mark.parametrize("change", [
    {"total_energy": Decimal("21")},
    {"end_date_time": "2026-10-01T10:30:00Z"},
    {"cdr_token": {"uid": "04A1B2C3D4E5F6", "contract_id": "NL-ACM-C99999999"}},
    {"charging_periods": [{"start_date_time": "2026-10-01T08:00:00Z",
                           "dimensions": [{"type": "ENERGY", "volume": Decimal("20.5")}]}]},
])
def test_a_changed_cdr_with_the_same_id_is_a_conflict_and_the_stored_one_is_kept(
        client, cdr_net, change):
    first = only(post(client, ocpi_cdr(), cdr_net.key))
    before = ChargingSession.objects.values().get()
    response = post(client, ocpi_cdr(**change), cdr_net.key)
    err = error(response, 422, "cdrs_refused")
    result = only(response)
    assert result == {
        "index": None, "cdr_id": "CDR-1", "status": "conflict", "session": first["session"],
        "field": "id", "value": "CDR-1",
        "reason": "id: a CDR with this id was received before with other content; the stored "
                  "one is kept (send a correction as a new CDR id)"}
    assert err["message"] == result["reason"]
    assert ChargingSession.objects.values().get() == before


def test_within_a_list_the_first_cdr_of_an_id_counts(client, cdr_net):
    cdrs = [ocpi_cdr("A"), ocpi_cdr("A"), ocpi_cdr("A", total_energy=Decimal("19")),
            ocpi_cdr("B", periods=False)]
    data = ok(post(client, cdrs, cdr_net.key))
    results = data["results"]
    assert [r["status"] for r in results] == ["imported", "duplicate", "conflict", "imported"]
    assert results[1]["reason"] == "the same CDR as index 0 of this list"
    assert results[2]["reason"].startswith("id: the CDR at index 0 of this list has this id "
                                           "with other content; the first one counts")
    assert results[1]["session"] == results[2]["session"] == results[0]["session"]
    assert ChargingSession.objects.get(external_id="A").energy_kwh == Decimal("20.5")
    assert data["counts"] == {"received": 4, "imported": 2, "duplicates": 1, "conflicts": 1,
                              "refused": 0, "rated": 2, "settled": 2, "rating_failed": 0}


def test_a_list_repeating_a_conflicting_cdr_reports_each_as_a_conflict(client, cdr_net):
    post(client, ocpi_cdr("A"), cdr_net.key)
    changed = ocpi_cdr("A", total_energy=Decimal("19"))
    response = post(client, [changed, changed], cdr_net.key)
    error(response, 422, "cdrs_refused")
    assert [r["status"] for r in response.json()["results"]] == ["conflict", "conflict"]


def test_a_refused_cdr_can_be_sent_again_corrected(client, cdr_net):
    refused(client, cdr_net, ocpi_cdr(total_energy=Decimal("-1")), "total_energy",
            "must not be negative")
    assert only(post(client, ocpi_cdr(), cdr_net.key))["status"] == "imported"


# --- what the validator refuses, named as in the CDR --------------------------------------------

def test_a_cdr_without_its_required_fields_lists_each(client, cdr_net):
    result = refused(client, cdr_net, {}, "id", "id: is required")
    for part in ("start_date_time: is required", "end_date_time: is required",
                 "cdr_location.evse_id: is required", "cdr_token.uid: is required",
                 "total_energy: is required"):
        assert part in result["reason"]


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"cdr_location": {"evse_id": "NL*ACM*E99999*1"}}, "cdr_location.evse_id",
     "is not an EVSE of this operator"),
    ({"cdr_token": {"uid": "UNKNOWN"}}, "cdr_token.uid", "is not a token of this operator"),
    ({"cdr_token": {"uid": "BLOCKEDACM"}}, "cdr_token.uid", "is blocked"),
    ({"cdr_token": {"uid": "BLOCKEDCUSTACM"}}, "cdr_token.uid", "belongs to a blocked customer"),
    ({"currency": "GBP"}, "currency", "differs from the operator's currency (EUR)"),
    ({"auth_method": "MAGIC"}, "auth_method", "must be one of AUTH_REQUEST, COMMAND"),
    ({"end_date_time": "2026-10-01T07:00:00Z"}, "end_date_time", "is not after start"),
    ({"start_date_time": "tomorrow"}, "start_date_time", "is not a date and time"),
    ({"total_energy": Decimal("50")}, "total_energy", "is more than the EVSE (22"),
    ({"total_parking_time": Decimal("3")}, "total_parking_time",
     "exceed the session's duration"),
    ({"total_cost": {"excl_vat": Decimal("-1")}}, "total_cost.excl_vat",
     "must not be negative"),
    ({"tariffs": [{"id": "T" * 37}]}, "tariffs[0].id", "is longer than 36 characters"),
    ({"session_id": "S\x01"}, "session_id", "holds control characters"),
    ({"total_time": Decimal("-2")}, "total_time", "must not be negative"),
])
def test_what_the_validator_refuses_is_named_as_in_the_cdr(client, cdr_net, changes, field,
                                                          reason):
    result = refused(client, cdr_net, ocpi_cdr(periods=False, **changes), field, reason)
    assert result["reason"].startswith(f"{field}: ")


def test_a_session_that_ends_in_the_future_is_refused(client, cdr_net):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    refused(client, cdr_net, ocpi_cdr(periods=False, start_date_time=start.isoformat(),
                                      end_date_time=(start + timedelta(hours=1)).isoformat()),
            "end_date_time", "lies in the future")


def test_an_ocpi_time_without_an_offset_is_utc(client, cdr_net):
    ok(post(client, ocpi_cdr(periods=False, start_date_time="2026-10-01T08:00:00",
                             end_date_time="2026-10-01T10:00:00"), cdr_net.key))
    assert ChargingSession.objects.get().start == datetime(2026, 10, 1, 8, tzinfo=UTC)


# --- wrong JSON types ---------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"id": 42}, "id", "must be text, not a number"),
    ({"cdr_token": "04A1B2C3D4E5F6"}, "cdr_token", "must be an object, not text"),
    ({"cdr_token": {"uid": ["04A1B2C3D4E5F6"]}}, "cdr_token.uid", "must be text, not a list"),
    ({"cdr_location": [1]}, "cdr_location", "must be an object, not a list"),
    ({"cdr_location": {"evse_id": {"id": 1}}}, "cdr_location.evse_id",
     "must be text, not an object"),
    ({"total_energy": "20.5"}, "total_energy", "must be a number, not text"),
    ({"total_energy": True}, "total_energy", "must be a number, not true/false"),
    ({"total_cost": Decimal("8.2")}, "total_cost", "must be an object, not a number"),
    ({"total_cost": {"excl_vat": "8.20"}}, "total_cost.excl_vat", "must be a number"),
    ({"tariffs": {"id": "STD"}}, "tariffs", "must be a list, not an object"),
    ({"tariffs": ["STD"]}, "tariffs[0]", "must be an object, not text"),
    ({"charging_periods": "all of them"}, "charging_periods", "must be a list, not text"),
    ({"charging_periods": [None]}, "charging_periods[0]", "must not be null"),
    ({"charging_periods": [{"dimensions": []}]}, "charging_periods[0].start_date_time",
     "is required"),
    ({"charging_periods": [{"start_date_time": "2026-10-01T08:00:00Z",
                            "dimensions": [{"type": "ENERGY", "volume": "20.5"}]}]},
     "charging_periods[0].dimensions[0].volume", "must be a number, not text"),
    ({"charging_periods": [{"start_date_time": "2026-10-01T08:00:00Z",
                            "dimensions": [{"type": "ENERGY"}]}]},
     "charging_periods[0].dimensions[0].volume", "is required"),
    ({"credit": "no"}, "credit", "must be true or false, not text"),
])
def test_a_part_of_the_wrong_json_type_is_refused_with_its_path(client, cdr_net, changes, field,
                                                               reason):
    result = refused(client, cdr_net, ocpi_cdr(**changes), field, reason)
    assert result["reason"].startswith(f"{field}: ")


def test_the_door_turns_anything_into_a_record_or_a_reason_never_an_exception():
    for value in ("x", 1, Decimal("1.5"), None, True, [], [{}], {"id": {}}, {"a": [[[]]]}):
        outcome = record_from_ocpi(value, 3)
        assert isinstance(outcome, Record | RowError)
        assert outcome.row == 3


def test_the_service_answers_the_doors_refusals_in_order(cdr_net):
    records = [record_from_ocpi(ocpi_cdr("A"), 0), record_from_ocpi("nope", 1),
               record_from_ocpi(ocpi_cdr("A"), 2)]
    received = cdrs_receive(operator=cdr_net.operator, records=records,
                            source=ChargingSession.Source.OCPI)
    assert [(r.index, r.status) for r in received] == [(0, "imported"), (1, "refused"),
                                                       (2, "duplicate")]
    assert ChargingSession.objects.get().source == ChargingSession.Source.OCPI


# --- malformed, hostile and oversized input -----------------------------------------------------

@pytest.mark.parametrize("raw", ["{", '{"id": }', "not json", "[1, 2", '{"total_energy": NaN}',
                                 '{"total_energy": Infinity}', '[{"total_energy": -Infinity}]',
                                 "[" * 30_000 + "]" * 30_000, '{"a": 1' + "0" * 5000 + "}"])
def test_malformed_json_answers_400(client, cdr_net, raw):
    err = error(post(client, None, cdr_net.key, raw=raw), 400, "malformed_json")
    assert err["message"].startswith("The body is not valid JSON") or "nested" in err["message"]
    assert not ChargingSession.objects.exists()


def test_a_body_that_is_not_utf8_answers_400(client, cdr_net):
    error(post(client, None, cdr_net.key, raw=b'{"id": "\xff\xfe"}'), 400, "malformed_json")


@pytest.mark.parametrize("raw", ['"a CDR"', "42", "null", "true", "[]"])
def test_json_that_is_neither_a_cdr_nor_a_list_of_cdrs_answers_400(client, cdr_net, raw):
    err = error(post(client, None, cdr_net.key, raw=raw), 400, "invalid")
    assert list(err["fields"]) == ["non_field_errors"]


def test_an_empty_body_answers_400(client, cdr_net):
    response = post(client, None, cdr_net.key, raw=b"")
    assert error(response, 400, "invalid")["message"].startswith("The body is empty")


def test_a_body_that_is_not_json_answers_415(client, cdr_net):
    response = client.post(URL, data="id=1", content_type="application/x-www-form-urlencoded",
                           HTTP_AUTHORIZATION=f"Bearer {cdr_net.key}")
    error(response, 415, "unsupported_media_type")


def test_a_cdr_nested_absurdly_deep_is_refused_not_stored(client, cdr_net):
    deep = {"x": 1}
    for _ in range(40):
        deep = {"x": deep}
    result = refused(client, cdr_net, ocpi_cdr(remark=None, extra=deep), "extra" + ".x" * 15,
                     "is nested more than 16 levels deep")
    assert result["cdr_id"] == "CDR-1"


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"remark": "x" * 100_000}, "remark", "is longer than 5,000 characters"),
    ({"id": "C" * 40}, "id", "is longer than 39 characters"),
    ({"cdr_location": {"evse_id": "E" * 1_000_000}}, "cdr_location.evse_id",
     "is longer than 5,000 characters"),
    ({"remark": "nul\x00byte"}, "remark", "holds a NUL character"),
    ({"remark": "lone \ud800 surrogate"}, "remark", "lone surrogate"),
    ({"id": "CDR-\ud800"}, "id", "lone surrogate"),
    ({"vendor": {"na\ud800me": 1}}, "vendor", "has a field name longer than 100 characters or "
                                              "with control characters"),
    ({"total_energy": Decimal("1E+999999")}, "total_energy", "is not a plausible number"),
    ({"total_energy": Decimal("1E-999999")}, "total_energy", "is not a plausible number"),
    ({"vendor": {"reading": Decimal("1E+400")}}, "vendor.reading", "is not a plausible number"),
    ({"vendor": 10**40}, "vendor", "is not a plausible number"),
    ({"k" * 200: 1}, "(the CDR)", "has a field name longer than 100 characters"),
])
def test_hostile_values_anywhere_in_a_cdr_are_refused_not_stored(client, cdr_net, changes,
                                                                 field, reason):
    refused(client, cdr_net, ocpi_cdr(**changes), field, reason)


def test_a_body_over_5_mb_answers_413_before_it_is_read(client, cdr_net):
    body = exact_dumps([ocpi_cdr(f"C{n}", remark="x" * 4000) for n in range(1500)])
    assert len(body) > 5 * 1024 * 1024
    err = error(post(client, None, cdr_net.key, raw=body), 413, "payload_too_large")
    assert err["message"] == "The request body is larger than 5120 KB."
    assert not ChargingSession.objects.exists()


def test_a_list_of_more_than_1000_cdrs_answers_413(client, cdr_net):
    err = error(post(client, [{}] * 1001, cdr_net.key), 413, "payload_too_large")
    assert err["message"] == ("Send at most 1,000 CDRs per request; this list has 1,001. "
                              "Split it.")


def test_a_list_of_1000_cdrs_is_taken(client, cdr_net):
    cdrs = [ocpi_cdr(f"C{n:04d}", periods=False,
                     start_date_time=f"2026-10-01T{n // 60 % 24:02d}:{n % 60:02d}:00Z",
                     end_date_time=f"2026-10-02T{n // 60 % 24:02d}:{n % 60:02d}:00Z")
            for n in range(1000)]
    data = ok(post(client, cdrs, cdr_net.key))
    assert data["counts"]["imported"] == 1000 and data["counts"]["rated"] == 1000
    assert ChargingSession.objects.count() == 1000


# --- tenancy and authentication -----------------------------------------------------------------

def test_another_operators_evse_and_token_are_refused_like_unknown_ones(client, cdr_net,
                                                                       other_net):
    theirs = ocpi_cdr(cdr_location={"evse_id": other_net.evse.evse_id},
                      cdr_token={"uid": other_net.token.uid})
    result = refused(client, cdr_net, theirs, "cdr_location.evse_id",
                     "is not an EVSE of this operator")
    assert "cdr_token.uid: is not a token of this operator" in result["reason"]
    unknown = refused(client, cdr_net, ocpi_cdr(cdr_location={"evse_id": "NL*BLT*E77777*1"},
                                                cdr_token={"uid": "NOPE"}),
                      "cdr_location.evse_id", "is not an EVSE of this operator")
    assert (result["reason"].replace(other_net.evse.evse_id, "?").replace(other_net.token.uid, "?")
            == unknown["reason"].replace("NL*BLT*E77777*1", "?").replace("NOPE", "?"))
    # the other operator's own key imports it
    assert only(post(client, theirs, other_net.key))["status"] == "imported"


def test_cdr_ids_are_per_operator(client, cdr_net, other_net):
    mine = only(post(client, ocpi_cdr("SAME"), cdr_net.key))
    theirs = only(post(client, ocpi_cdr("SAME", cdr_location={"evse_id": other_net.evse.evse_id},
                                        cdr_token={"uid": other_net.token.uid}),
                       other_net.key))
    assert mine["status"] == theirs["status"] == "imported"
    assert mine["session"] != theirs["session"]
    # a key never learns of the other operator's session: the same CDR is a duplicate of its own
    assert only(post(client, ocpi_cdr("SAME"), cdr_net.key))["session"] == mine["session"]


def test_without_a_key_the_answer_is_401(client, cdr_net):
    error(post(client, ocpi_cdr(), None), 401, "not_authenticated")
    error(post(client, ocpi_cdr(), "emb_abcdefgh_wrong"), 401, "authentication_failed")


def test_a_signed_in_viewer_may_not_push_cdrs_but_a_finance_user_may(client, cdr_net):
    client.force_login(MembershipFactory(operator=cdr_net.operator, role="viewer").user)
    err = error(post(client, ocpi_cdr(), None), 403, "permission_denied")
    assert "role does not allow" in err["message"]
    client.force_login(MembershipFactory(operator=cdr_net.operator, role="finance").user)
    assert only(post(client, ocpi_cdr(), None))["status"] == "imported"
    assert RatingRun.objects.get().actor is not None


def test_a_user_of_two_operators_names_one_in_the_query(client, cdr_net, other_net):
    user = UserFactory()
    MembershipFactory(user=user, operator=cdr_net.operator)
    MembershipFactory(user=user, operator=other_net.operator)
    client.force_login(user)
    error(post(client, ocpi_cdr(), None), 400, "invalid")
    assert only(post_json(client, f"{URL}?operator=acme", ocpi_cdr()))["status"] == "imported"


def test_get_is_not_allowed(client, cdr_net):
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {cdr_net.key}")
    error(response, 405, "method_not_allowed")
