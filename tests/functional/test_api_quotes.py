"""POST /api/v1/quotes (tariffs/api/views.py): the price a session would have, which tariff
applied at which level and why, for an operator's software (API key) or a signed-in user."""

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import RequestFactory

from emobility.api.exceptions import PayloadTooLarge
from emobility.api.parsers import BoundedJSONParser
from emobility.models import Customer, Evse
from emobility.services import api_key_create
from tariffs.api.views import QuoteApi
from tariffs.models import PriceIndex, TariffAssignment, TariffGroup
from tariffs.services import tariff_group_set
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    TariffFactory,
    TariffGroupFactory,
    TariffVersionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/quotes"
T0 = datetime(2020, 1, 1, tzinfo=UTC)
START = "2026-10-15T14:00:00+02:00"


def tariff(operator, code, energy_price, *, level="network", group=None, evse=None):
    """A tariff of ``energy_price`` per kWh + 21 % VAT, assigned at ``level`` from 2020."""
    t = TariffFactory(operator=operator, code=code, name=f"Tariff {code}")
    TariffVersionFactory(tariff=t, valid_from=T0, energy_price=Decimal(energy_price))
    target = {"network": {}, "evse": {"evse": evse},
              "location": {"location": evse.station.location if evse else None}}[level]
    return TariffAssignment.objects.create(operator=operator, tariff=t, level=level,
                                           tariff_group=group, valid_from=T0, **target)


def make_operator(code):
    """An operator with an EVSE, a public tariff of 0.30/kWh on its network, a fleet tariff of
    0.25/kWh at the EVSE's location for its group "fleets", a fleet customer and an API key."""
    operator = OperatorFactory(code=code, name=f"Operator {code}")
    evse = EvseFactory(station__location__operator=operator,
                       evse_id=f"NL*{code.upper()}*E0000{len(code)}*1")
    tariff(operator, "PUBLIC", "0.30")
    fleets = TariffGroupFactory(operator=operator, code="fleets", name="Fleets")
    tariff(operator, "FLEET", "0.25", level="location", group=fleets, evse=evse)
    fleet_customer = CustomerFactory(operator=operator, reference="FLEET-1")
    tariff_group_set(customer=fleet_customer, group=fleets)
    _, key = api_key_create(operator=operator, name="CSMS", actor=None)
    return {"operator": operator, "evse": evse, "fleets": fleets,
            "fleet_customer": fleet_customer, "key": key}


@pytest.fixture
def a():
    return make_operator("opa")


@pytest.fixture
def b():
    return make_operator("opb")


def body(evse, **extra):
    return {"evse_id": evse.evse_id, "start": START, "energy_kwh": "20",
            "charging_minutes": "60", **extra}


def post(client, data, key=None, *, raw=None, **headers):
    if key is not None:
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {key}")
    content = raw if raw is not None else json.dumps(data)
    return client.post(URL, data=content, content_type="application/json", **headers)


def error(response, status, code):
    """The error body of ``response``, after checking its status and shape."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {"error"}
    assert data["error"]["code"] == code
    assert isinstance(data["error"]["message"], str) and data["error"]["message"]
    assert set(data["error"]) <= {"code", "message", "fields"}
    return data["error"]


def floats_in(value) -> list:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats_in(v)]
    if isinstance(value, list):
        return [f for v in value for f in floats_in(v)]
    return []


# --- quotes --------------------------------------------------------------------------------

def test_quote_prices_20_kwh_at_030_with_21_percent_vat_and_says_why(client, a):
    response = post(client, body(a["evse"]), a["key"])
    assert response.status_code == 200, response.content
    quote = response.json()
    assert quote["total_cost"] == {"excl_vat": "6.00", "incl_vat": "7.26"}
    assert quote["total_energy_cost"] == {"excl_vat": "6.00", "incl_vat": "7.26"}
    assert quote["currency"] == "EUR"
    assert quote["total_energy"] == "20" and quote["total_time"] == "1"
    assert quote["tariff"]["id"] == "PUBLIC" and quote["tariff"]["level"] == "network"
    assert quote["tariff"]["tariff_group"] is None
    assert quote["tariff"]["why"].startswith("Network (macro) assignment")
    assert "for every customer" in quote["tariff"]["why"]
    # 14:00 in Amsterdam (CEST) is 12:00 UTC
    assert quote["periods"][0]["start"] == "2026-10-15T12:00:00Z"
    assert quote["lines"][0]["price"] == "0.3" and quote["lines"][0]["vat"] == "21"


def test_every_number_in_a_quote_is_a_string_never_a_float(client, a):
    response = post(client, body(a["evse"], energy_kwh=12.3456, charging_minutes=47.5,
                                 parking_minutes=12.25), a["key"])
    assert response.status_code == 200
    assert floats_in(response.json()) == []
    assert response.json()["total_energy"] == "12.3456"


def test_parking_minutes_extend_the_session_after_charging(client, a):
    response = post(client, body(a["evse"], parking_minutes="30"), a["key"])
    quote = response.json()
    assert quote["total_time"] == "1.5" and quote["total_parking_time"] == "0.5"
    assert quote["total_cost"]["incl_vat"] == "7.26"  # the tariff charges energy only


@pytest.mark.parametrize(("minutes", "hours"), [
    ("90", "1.5"),
    ("90.0083", "1.5"),  # 5400.498 s rounds down to 5400 s
    ("90.0084", "1.500278"),  # 5400.504 s rounds up to 5401 s = 1.500277… h
    ("0.5", "0.008333"),  # 30 s
])
def test_minutes_are_rounded_half_up_to_whole_seconds(client, a, minutes, hours):
    quote = post(client, body(a["evse"], charging_minutes=minutes), a["key"]).json()
    assert quote["total_time"] == hours


def test_a_customer_in_a_group_gets_the_groups_tariff(client, a):
    quote = post(client, body(a["evse"], customer="FLEET-1"), a["key"]).json()
    assert quote["tariff"]["id"] == "FLEET"
    assert quote["tariff"]["level"] == "location"
    assert quote["tariff"]["tariff_group"] == "fleets"
    assert "for tariff group Fleets" in quote["tariff"]["why"]
    assert quote["total_cost"] == {"excl_vat": "5.00", "incl_vat": "6.05"}


def test_an_explicit_tariff_group_gets_the_groups_tariff(client, a):
    quote = post(client, body(a["evse"], tariff_group="fleets"), a["key"]).json()
    assert quote["tariff"]["id"] == "FLEET" and quote["tariff"]["tariff_group"] == "fleets"
    assert quote["total_cost"] == {"excl_vat": "5.00", "incl_vat": "6.05"}


def test_a_customer_without_a_group_gets_the_tariff_for_every_customer(client, a):
    CustomerFactory(operator=a["operator"], reference="PRIVATE-1")
    quote = post(client, body(a["evse"], customer="PRIVATE-1"), a["key"]).json()
    assert quote["tariff"]["id"] == "PUBLIC"
    assert quote["total_cost"] == {"excl_vat": "6.00", "incl_vat": "7.26"}


def test_customer_and_tariff_group_together_are_refused(client, a):
    err = error(post(client, body(a["evse"], customer="FLEET-1", tariff_group="fleets"),
                     a["key"]), 400, "invalid")
    assert err["message"] == "Give either customer or tariff_group, not both."
    assert err["fields"] == {"non_field_errors": [err["message"]]}


def test_no_applicable_tariff_answers_422_with_the_reason(client, a):
    err = error(post(client, body(a["evse"], start="2019-06-01T12:00:00Z"), a["key"]),
                422, "no_tariff")
    assert err["message"].startswith("No tariff applies: no assignment")
    assert "2019-06-01T12:00:00+00:00" in err["message"]
    assert "fields" not in err


def test_a_session_that_cannot_be_priced_answers_422_with_the_reason(client, a):
    index = PriceIndex.objects.create(operator=a["operator"], code="nl-da", name="NL DA")
    tariff_ = TariffFactory(operator=a["operator"], code="DYN")
    version = TariffVersionFactory(tariff=tariff_, valid_from=T0)
    version.elements.get().components.update(price_index=index)
    TariffAssignment.objects.create(operator=a["operator"], tariff=tariff_, level="evse",
                                    evse=a["evse"], valid_from=T0)
    err = error(post(client, body(a["evse"]), a["key"]), 422, "cannot_price")
    assert "nl-da has no price for 2026-10-15T12:00:00Z" in err["message"]


# --- tenancy -------------------------------------------------------------------------------

def test_a_key_cannot_quote_another_operators_evse_nor_tell_that_it_exists(client, a, b):
    others = post(client, body(b["evse"]), a["key"])
    assert Evse.objects.filter(evse_id="NL*XYZ*E99999*1").count() == 0
    missing = post(client, body(b["evse"], evse_id="NL*XYZ*E99999*1"), a["key"])
    assert error(others, 404, "not_found") == error(missing, 404, "not_found")
    assert error(others, 404, "not_found")["message"] == "No EVSE with this evse_id."
    # while B's own key quotes it
    assert post(client, body(b["evse"]), b["key"]).status_code == 200


def test_a_key_cannot_quote_for_another_operators_customer_nor_tell_that_it_exists(client, a,
                                                                                   b):
    CustomerFactory(operator=b["operator"], reference="ONLY-AT-B")
    assert not Customer.objects.filter(reference="NOWHERE").exists()
    others = post(client, body(a["evse"], customer="ONLY-AT-B"), a["key"])
    missing = post(client, body(a["evse"], customer="NOWHERE"), a["key"])
    assert error(others, 404, "not_found") == error(missing, 404, "not_found")


def test_a_key_cannot_quote_for_another_operators_tariff_group_nor_tell_that_it_exists(
        client, a, b):
    TariffGroupFactory(operator=b["operator"], code="only-at-b")
    assert not TariffGroup.objects.filter(code="nowhere").exists()
    others = post(client, body(a["evse"], tariff_group="only-at-b"), a["key"])
    missing = post(client, body(a["evse"], tariff_group="nowhere"), a["key"])
    assert error(others, 404, "not_found") == error(missing, 404, "not_found")


def test_a_key_cannot_act_for_another_operator_by_naming_it(client, a, b):
    others = post(client, body(b["evse"], operator="opb"), a["key"])
    missing = post(client, body(b["evse"], operator="nobody"), a["key"])
    assert error(others, 404, "not_found") == error(missing, 404, "not_found")
    # naming its own operator is fine
    assert post(client, body(a["evse"], operator="opa"), a["key"]).status_code == 200


# --- authentication ------------------------------------------------------------------------

def test_without_credentials_the_answer_is_401_with_a_bearer_challenge(client, a):
    response = post(client, body(a["evse"]))
    error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("header", [
    "Bearer emb_abcdefgh_not-the-secret",
    "Bearer not-a-key-at-all",
    "Bearer " + "x" * 5000,
    "Bearer",
    "Bearer two parts",
    "Api-Key emb_zzzzzzzz_zzzz",
])
def test_a_wrong_key_answers_401(client, a, header):
    err = error(post(client, body(a["evse"]), HTTP_AUTHORIZATION=header), 401,
                "authentication_failed")
    assert a["key"] not in err["message"]


def test_a_real_prefix_with_a_wrong_secret_answers_401(client, a):
    forged = a["key"][:13] + "A" * 43  # "emb_<prefix>_" and another secret
    assert forged != a["key"]
    err = error(post(client, body(a["evse"]), forged), 401, "authentication_failed")
    assert err["message"] == "Invalid API key."


def test_the_api_key_scheme_is_accepted_too(client, a):
    response = post(client, body(a["evse"]), HTTP_AUTHORIZATION=f"Api-Key {a['key']}")
    assert response.status_code == 200


def test_basic_authentication_is_not_accepted(client, a):
    user = MembershipFactory(operator=a["operator"]).user
    response = post(client, body(a["evse"]),
                    HTTP_AUTHORIZATION=f"Basic {user.username}:pw")
    error(response, 401, "not_authenticated")


# --- session authentication ----------------------------------------------------------------

def test_a_signed_in_member_of_one_operator_gets_a_quote(client, a, b):
    client.force_login(MembershipFactory(operator=a["operator"], role="viewer").user)
    assert post(client, body(a["evse"])).json()["total_cost"]["incl_vat"] == "7.26"
    error(post(client, body(b["evse"])), 404, "not_found")


def test_a_session_request_without_the_csrf_token_is_refused(a):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(MembershipFactory(operator=a["operator"]).user)
    err = error(post(browser, body(a["evse"])), 403, "permission_denied")
    assert err["message"].startswith("CSRF Failed")


def test_a_user_of_two_operators_must_say_which_one(client, a, b):
    user = UserFactory()
    MembershipFactory(user=user, operator=a["operator"])
    MembershipFactory(user=user, operator=b["operator"])
    client.force_login(user)
    err = error(post(client, body(b["evse"])), 400, "invalid")
    assert "several operators" in err["message"] and "opa, opb" in err["message"]
    assert list(err["fields"]) == ["operator"]
    assert post(client, body(b["evse"], operator="opb")).status_code == 200
    assert client.post(f"{URL}?operator=opb", data=json.dumps(body(b["evse"])),
                       content_type="application/json").status_code == 200
    # the operator named decides where the EVSE is looked up
    error(post(client, body(b["evse"], operator="opa")), 404, "not_found")


def test_a_user_naming_an_operator_they_do_not_belong_to_gets_404(client, a, b):
    client.force_login(MembershipFactory(operator=a["operator"]).user)
    others = post(client, body(b["evse"], operator="opb"))
    missing = post(client, body(b["evse"], operator="nobody"))
    assert error(others, 404, "not_found") == error(missing, 404, "not_found")


def test_a_superuser_names_the_operator(client, a, b):
    client.force_login(UserFactory(is_superuser=True))
    error(post(client, body(b["evse"])), 400, "invalid")
    assert post(client, body(b["evse"], operator="opb")).status_code == 200


def test_a_user_without_a_membership_is_refused(client, a):
    client.force_login(UserFactory())
    err = error(post(client, body(a["evse"])), 403, "permission_denied")
    assert err["message"] == "Your user does not act for any operator."


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["{", '{"evse_id": }', "not json", "[1, 2", '{"a": NaN}',
                                 '{"a": Infinity}', "[" * 30_000 + "]" * 30_000,
                                 '{"a": 1' + "0" * 5000 + "}"])
def test_malformed_json_answers_400(client, a, raw):
    err = error(post(client, None, a["key"], raw=raw), 400, "malformed_json")
    assert err["message"].startswith("The body is not valid JSON") or "nested" in err["message"]


def test_a_body_that_is_not_utf8_answers_400(client, a):
    error(post(client, None, a["key"], raw=b'{"evse_id": "\xff\xfe"}'), 400, "malformed_json")


@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null"])
def test_json_that_is_not_an_object_answers_400(client, a, raw):
    err = error(post(client, None, a["key"], raw=raw), 400, "invalid")
    assert list(err["fields"]) == ["non_field_errors"]


def test_an_empty_body_lists_every_missing_field(client, a):
    response = client.post(URL, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {a['key']}")
    err = error(response, 400, "invalid")
    assert set(err["fields"]) == {"evse_id", "start", "energy_kwh", "charging_minutes"}
    assert err["fields"]["start"] == ["This field is required."]
    assert err["message"].startswith("evse_id: This field is required. (and 3 more")


def test_a_body_that_is_not_json_answers_415(client, a):
    response = client.post(URL, data="evse_id=x", content_type="application/x-www-form-urlencoded",
                           HTTP_AUTHORIZATION=f"Bearer {a['key']}")
    error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(("field", "value"), [
    ("evse_id", 12345), ("evse_id", ["NL*OPA*E00003*1"]), ("evse_id", {"id": 1}),
    ("evse_id", None), ("customer", 42), ("customer", None), ("customer", ""),
    ("customer", ["FLEET-1"]), ("tariff_group", []), ("tariff_group", 5),
    ("start", 1760000000), ("start", True), ("start", "tomorrow"),
    ("start", "2026-02-30T10:00:00Z"), ("start", "2026-10-15"), ("energy_kwh", "abc"),
    ("energy_kwh", True), ("energy_kwh", [20]), ("energy_kwh", None), ("energy_kwh", ""),
    ("charging_minutes", "1h"), ("charging_minutes", False), ("parking_minutes", {"m": 1}),
    ("operator", 7),
])
def test_wrong_types_answer_400_naming_the_field(client, a, field, value):
    err = error(post(client, body(a["evse"], **{field: value}), a["key"]), 400, "invalid")
    assert list(err["fields"]) == [field]
    assert err["message"].startswith(f"{field}: ")


@pytest.mark.parametrize(("field", "value", "says"), [
    ("energy_kwh", "-1", "greater than or equal to 0"),
    ("energy_kwh", -0.0001, "greater than or equal to 0"),
    ("energy_kwh", "1000.0001", "less than or equal to 1000"),
    ("energy_kwh", 1001, "less than or equal to 1000"),
    ("energy_kwh", "1e400", "no more than 8 digits"),
    ("energy_kwh", "20.12345", "no more than 4 decimal places"),
    ("energy_kwh", "NaN", "valid number"),
    ("energy_kwh", "Infinity", "valid number"),
    ("energy_kwh", "9" * 2000, "String value too large"),
    ("charging_minutes", "-1", "at least 0 minutes"),
    ("charging_minutes", 10081, "at most 10080 minutes (7 days)"),
    ("charging_minutes", "1e12", "no more than 9 digits"),
    ("parking_minutes", -5, "at least 0 minutes"),
    ("parking_minutes", "99999", "at most 10080 minutes (7 days)"),
    ("start", "9999-12-31T23:59:59-01:00", "out of range"),
    ("start", "2100-01-01T00:00:00Z", "before 2100-01-01"),
    ("start", "1999-12-31T23:59:59Z", "from 2000-01-01"),
])
def test_negative_and_absurd_values_answer_400(client, a, field, value, says):
    err = error(post(client, body(a["evse"], **{field: value}), a["key"]), 400, "invalid")
    assert list(err["fields"]) == [field]
    assert says in err["fields"][field][0], err["fields"][field]


def test_the_longest_times_and_most_energy_allowed_are_priced(client, a):
    response = post(client, body(a["evse"], energy_kwh="1000", charging_minutes="10080",
                                 parking_minutes="10080", start="2099-12-31T23:59:59Z"),
                    a["key"])
    assert response.status_code == 200, response.content
    assert response.json()["total_cost"] == {"excl_vat": "300.00", "incl_vat": "363.00"}


def test_zero_energy_and_zero_time_is_a_free_quote_not_an_error(client, a):
    response = post(client, body(a["evse"], energy_kwh=0, charging_minutes=0), a["key"])
    assert response.status_code == 200
    quote = response.json()
    assert quote["total_cost"] == {"excl_vat": "0.00", "incl_vat": "0.00"}
    assert quote["tariff"]["id"] == "PUBLIC" and quote["lines"] == []


@pytest.mark.parametrize("start", ["2026-10-15T14:00:00", "2026-10-15 14:00"])
def test_a_start_without_a_utc_offset_is_refused(client, a, start):
    err = error(post(client, body(a["evse"], start=start), a["key"]), 400, "invalid")
    assert "UTC offset" in err["fields"]["start"][0]


@pytest.mark.parametrize("start", ["2026-10-15T12:00:00Z", "2026-10-15T14:00:00+02:00",
                                   "2026-10-15T07:00:00-05:00"])
def test_the_same_instant_in_any_offset_gives_the_same_quote(client, a, start):
    quote = post(client, body(a["evse"], start=start), a["key"]).json()
    assert quote["periods"][0]["start"] == "2026-10-15T12:00:00Z"


CONTROL_CHARACTERS = ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f", "\x85",
                      "\x9f"]


def test_pythons_iso_parser_reads_a_time_with_a_trailing_nul():
    """Why the API checks for control characters itself: ``fromisoformat`` takes the NUL."""
    assert datetime.fromisoformat("2026-10-02T08:00:00Z\x00") == datetime(2026, 10, 2, 8,
                                                                          tzinfo=UTC)


@pytest.mark.parametrize("control", CONTROL_CHARACTERS)
@pytest.mark.parametrize("where", ["end", "start", "middle"])
def test_a_start_with_a_control_character_is_refused_clearly(client, a, control, where):
    start = {"end": f"2026-10-02T08:00:00Z{control}", "start": f"{control}2026-10-02T08:00:00Z",
             "middle": f"2026-10-02T08:00{control}:00Z"}[where]
    err = error(post(client, body(a["evse"], start=start), a["key"]), 400, "invalid")
    assert set(err["fields"]) == {"start"}
    assert err["fields"]["start"] == [
        "Give the time without control characters (such as NUL or a line break), e.g. "
        "2026-10-15T14:00:00+02:00."]
    assert control not in err["message"]


def test_a_start_with_a_trailing_nul_as_a_json_escape_is_refused(client, a):
    raw = json.dumps(body(a["evse"], start="2026-10-02T08:00:00Z\x00"))
    assert "\\u0000" in raw
    err = error(post(client, None, a["key"], raw=raw), 400, "invalid")
    assert "control characters" in err["fields"]["start"][0]


def test_the_same_start_without_the_control_character_is_priced(client, a):
    response = post(client, body(a["evse"], start="2026-10-02T08:00:00Z"), a["key"])
    assert response.status_code == 200, response.content
    assert response.json()["periods"][0]["start"] == "2026-10-02T08:00:00Z"


HOSTILE = {
    "sql": "'; DROP TABLE emobility_evse; --",
    "html": "<script>alert(1)</script>",
    "unicode": "Ünïcødé ⚡ 日本語 🚗",
    "long": "A" * 10_000,
    "nul": "NL*OPA\x00*E1",
    "surrogate": "\ud800\udfff\ud800",
    "rtl": "\u202eevil\u202c",
}
TEXT_FIELDS = ["evse_id", "customer", "tariff_group", "start", "energy_kwh",
               "charging_minutes", "parking_minutes", "operator"]


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_strings_in_any_field_get_a_clear_answer_and_change_nothing(client, a, field,
                                                                            kind):
    evses = Evse.objects.count()
    response = post(client, body(a["evse"], **{field: HOSTILE[kind]}), a["key"])
    # A customer reference is free text: a harmless one that is no customer is "not found".
    # Anything else is refused as invalid.
    if field == "customer" and kind in ("sql", "html", "unicode", "rtl"):
        err = error(response, 404, "not_found")
        assert err["message"] == "No customer with this reference."
    else:
        err = error(response, 400, "invalid")
        assert list(err["fields"]) == [field]
    assert b"<script>" not in response.content
    assert Evse.objects.count() == evses
    assert post(client, body(a["evse"]), a["key"]).status_code == 200


def test_an_evse_id_is_matched_exactly_never_as_a_pattern(client, a):
    assert a["evse"].evse_id == "NL*OPA*E00003*1"
    for evse_id in ("NL*OPA*E*", "NL*OPA*E00003*", "nl*opa*e00003*1"):
        response = post(client, body(a["evse"], evse_id=evse_id), a["key"])
        assert response.status_code in (400, 404), evse_id
        assert "total_cost" not in response.json()
    error(post(client, body(a["evse"], evse_id="NL*OPA*E*"), a["key"]), 404, "not_found")
    error(post(client, body(a["evse"], evse_id="NL*OPA*E%"), a["key"]), 400, "invalid")


# --- size, method, address -----------------------------------------------------------------

def test_a_body_over_64_kb_answers_413(client, a):
    data = body(a["evse"], padding="x" * (64 * 1024))
    err = error(post(client, data, a["key"]), 413, "payload_too_large")
    assert err["message"] == "The request body is larger than 64 KB."


def test_a_body_just_under_64_kb_is_accepted(client, a):
    data = body(a["evse"], padding="")
    data["padding"] = "x" * (64 * 1024 - len(json.dumps(data)))
    assert len(json.dumps(data)) == 64 * 1024
    assert post(client, data, a["key"]).status_code == 200


def test_the_parser_counts_the_bytes_received_not_only_the_declared_length():
    request = RequestFactory().post(URL)
    request.META.pop("CONTENT_LENGTH", None)
    parser = BoundedJSONParser()
    context = {"view": QuoteApi(), "request": request}
    stream = io.BytesIO(b'{"padding": "' + b"x" * (64 * 1024) + b'"}')
    with pytest.raises(PayloadTooLarge):
        parser.parse(stream, "application/json", context)
    assert parser.parse(io.BytesIO(b'{"n": 0.1}'), "application/json", context) == {
        "n": Decimal("0.1")}


def test_other_methods_answer_405_in_the_error_body(client, a):
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {a['key']}")
    err = error(response, 405, "method_not_allowed")
    assert err["message"] == 'Method "GET" not allowed.'


def test_an_unknown_api_address_answers_404_in_the_error_body(client):
    error(client.get("/api/v1/nothing-here"), 404, "not_found")
    error(client.post("/api/v1/quotes/", data="{}", content_type="application/json"), 404,
          "not_found")


def test_an_unexpected_failure_answers_500_in_the_error_body(client, a, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom: internal detail")

    monkeypatch.setattr("tariffs.api.views.quote_price", broken)
    response = post(client, body(a["evse"]), a["key"])
    err = error(response, 500, "server_error")
    assert "boom" not in err["message"]


def test_a_quote_leaves_no_trace_in_the_database(client, a):
    from emobility.models import ChargingSession
    from tariffs.models import SessionPrice

    post(client, body(a["evse"]), a["key"])
    assert ChargingSession.objects.count() == 0 and SessionPrice.objects.count() == 0


def test_start_times_in_different_seasons_keep_their_local_meaning(client, a):
    winter = post(client, body(a["evse"], start="2026-01-15T14:00:00+01:00"), a["key"]).json()
    assert winter["periods"][0]["start"] == "2026-01-15T13:00:00Z"
    end = datetime(2026, 1, 15, 13, tzinfo=UTC) + timedelta(hours=1)
    assert winter["periods"][0]["end"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
