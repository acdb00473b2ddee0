"""The network, customer, token and session endpoints (emobility/api/network.py, accounts.py):
lists with pagination and their django-filter filters, details, customer and token writes with
their validation and duplicates; key and session authentication; another operator's rows (by
address, by filter, by ``?operator=``); malformed, hostile and oversized input; the sessions
list's queries."""

from decimal import Decimal
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from emobility.exactjson import dumps
from emobility.models import Customer, Membership, Token
from tests.factories import MembershipFactory

from .api_network_helpers import add_sessions, network
from .cdr_helpers import answer, error
from .cdr_helpers import get_json as get
from .cdr_helpers import post_json as post

pytestmark = pytest.mark.django_db
API = "/api/v1"


@pytest.fixture
def a():
    return network("acme", "ACM")


@pytest.fixture
def b():
    return network("bolt", "BLT")


def url(*parts: str) -> str:
    return "/".join([API, *(quote(p, safe="") for p in parts)])


def patch(client, address: str, data=None, key: str | None = None, *, raw=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.patch(address, data=raw if raw is not None else dumps(data),
                        content_type="application/json", **headers)


def listed(client, address: str, key: str, field: str, **query) -> list:
    response = client.get(address, query, HTTP_AUTHORIZATION=f"Bearer {key}")
    return [row[field] for row in answer(response)["results"]]


def assert_no_bolt(response):
    assert b"bolt" not in response.content.lower()
    assert b"blt" not in response.content.lower()


# --- authentication ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["locations", "stations", "evses", "customers", "tokens",
                                  "sessions"])
def test_every_list_needs_a_key_or_a_session(client, a, name):
    error(client.get(url(name)), 401, "not_authenticated")
    error(get(client, url(name), "emb_abcdefgh_wrong"), 401, "authentication_failed")


def test_a_signed_in_manager_reads_the_operators_rows(client, a, b):
    client.force_login(a.manager)
    response = client.get(url("locations"))
    assert [row["code"] for row in answer(response)["results"]] == ["LOC-acme-2", "LOC-acme-1"]
    assert_no_bolt(response)


def test_a_user_of_two_operators_names_one_and_only_reaches_their_own(client, a, b):
    user = a.manager
    MembershipFactory(user=user, operator=b.operator, role=Membership.Role.VIEWER)
    client.force_login(user)
    error(client.get(url("customers")), 400, "invalid")
    assert [c["reference"] for c in answer(client.get(url("customers"),
                                                      {"operator": "bolt"}))["results"]] == \
        ["BOLT-0002", "BOLT-0001"]
    error(client.get(url("customers"), {"operator": "zulu"}), 404, "not_found")
    error(client.get(url("customers"), {"operator": "bad\x00code"}), 404, "not_found")


# --- locations, stations, EVSEs ----------------------------------------------------------------

def test_the_locations_list_counts_stations_and_evses(client, a, b):
    response = get(client, url("locations"), a.key)
    data = answer(response)
    assert (data["count"], data["next"], data["previous"]) == (2, None, None)
    rotterdam, amsterdam = data["results"]
    assert amsterdam == {
        "id": a.locations[0].pk, "code": "LOC-acme-1", "name": "acme Damrak", "kind": "public",
        "region": "Noord-Holland", "time_zone": "Europe/Amsterdam",
        "address": {"address_line": "", "postal_code": "", "city": "Amsterdam",
                    "country": "NL"},
        "roaming": False, "cpo_party": None, "cpo_name": None, "stations": 1, "evses": 1,
        "created_at": amsterdam["created_at"], "updated_at": amsterdam["updated_at"]}
    assert (rotterdam["roaming"], rotterdam["cpo_party"]) == (True, "DEABC")
    assert_no_bolt(response)


@pytest.mark.parametrize(("query", "codes"), [
    ({"kind": "semi_public"}, ["LOC-acme-2"]),
    ({"country": "NL"}, ["LOC-acme-2", "LOC-acme-1"]),
    ({"country": "BE"}, []),
    ({"region": "Noord-Holland"}, ["LOC-acme-1"]),
    ({"city": "ROTTERDAM"}, ["LOC-acme-2"]),
    ({"roaming": "true"}, ["LOC-acme-2"]),
    ({"roaming": "false"}, ["LOC-acme-1"]),
    ({"roaming": ""}, ["LOC-acme-2", "LOC-acme-1"]),
    ({"kind": "semi_public", "roaming": "false"}, []),
])
def test_locations_filters(client, a, query, codes):
    assert listed(client, url("locations"), a.key, "code", **query) == codes


@pytest.mark.parametrize(("query", "field"), [
    ({"kind": "castle"}, "kind"),
    ({"roaming": "maybe"}, "roaming"),
    ({"country": "NLD"}, "country"),
    ({"city": "Amster\x00dam"}, "city"),
    ({"region": "x" * 101}, "region"),
])
def test_malformed_location_filters_answer_400_with_the_field(client, a, query, field):
    body = error(client.get(url("locations"), query, HTTP_AUTHORIZATION=f"Bearer {a.key}"),
                 400, "invalid")
    assert list(body["fields"]) == [field]
    assert body["message"].startswith(f"{field}: ")


def test_one_location_with_its_stations_and_evses(client, a, b):
    data = answer(get(client, url("locations", "LOC-acme-2"), a.key))
    assert data["code"] == "LOC-acme-2"
    assert data["station_list"] == [{
        "identity": "CS-acme-2", "vendor": "ABB", "model": "",
        "evses": [{"id": a.evses[1].pk, "evse_id": "NL*ACM*E00002*1", "power_type": "DC",
                   "max_power_kw": "150.00", "station": "CS-acme-2", "location": "LOC-acme-2",
                   "created_at": data["station_list"][0]["evses"][0]["created_at"],
                   "updated_at": data["station_list"][0]["evses"][0]["updated_at"]}]}]


@pytest.mark.parametrize("name, key", [
    ("locations", "LOC-bolt-1"), ("stations", "CS-bolt-1"), ("evses", "NL*BLT*E00001*1"),
    ("customers", "BOLT-0001"), ("tokens", "BLT0000000001"), ("sessions", "CDR-bolt-01-0"),
])
def test_another_operators_row_answers_404_like_one_that_does_not_exist(client, a, b, name,
                                                                        key):
    theirs = error(get(client, url(name, key), a.key), 404, "not_found")
    missing = error(get(client, url(name, key.replace("bolt", "none").replace("BLT", "NON")
                                    .replace("BOLT", "NONE")), a.key), 404, "not_found")
    assert theirs == missing
    # B's own key does reach it
    answer(get(client, url(name, key), b.key))
    # naming B's operator with A's key is refused, for lists and rows
    error(get(client, url(name) + "?operator=bolt", a.key), 404, "not_found")
    error(get(client, url(name, key) + "?operator=bolt", a.key), 404, "not_found")


@pytest.mark.parametrize("name", ["locations", "stations", "evses", "customers", "tokens",
                                  "sessions"])
@pytest.mark.parametrize("segment", ["9" * 30, "x" * 5000, "a\x00b", "%00", "' OR 1=1 --",
                                     "..", "\u202e\u0000"])
def test_hostile_keys_in_the_address_answer_404(client, a, name, segment):
    error(get(client, url(name, segment), a.key), 404, "not_found")


def test_stations_filters_and_owner(client, a, b):
    data = answer(get(client, url("stations"), a.key))
    assert [(s["identity"], s["location"]["code"], s["owner"], s["evses"])
            for s in data["results"]] == [("CS-acme-1", "LOC-acme-1", None, 1),
                                          ("CS-acme-2", "LOC-acme-2", "ACME-0002", 1)]
    assert listed(client, url("stations"), a.key, "identity", location="LOC-acme-2") == \
        ["CS-acme-2"]
    assert listed(client, url("stations"), a.key, "identity", vendor="alfen") == ["CS-acme-1"]
    assert listed(client, url("stations"), a.key, "identity", owner="ACME-0002") == \
        ["CS-acme-2"]
    # B's keys find nothing
    assert listed(client, url("stations"), a.key, "identity", location="LOC-bolt-2") == []
    assert listed(client, url("stations"), a.key, "identity", owner="BOLT-0002") == []
    error(get(client, url("stations") + "?owner=" + "x" * 41, a.key), 400, "invalid")


def test_one_station_with_its_evses(client, a):
    data = answer(get(client, url("stations", "CS-acme-1"), a.key))
    assert [e["evse_id"] for e in data["evse_list"]] == ["NL*ACM*E00001*1"]


def test_evses_filters_and_one_evse_by_its_id(client, a, b):
    assert listed(client, url("evses"), a.key, "evse_id") == ["NL*ACM*E00001*1",
                                                               "NL*ACM*E00002*1"]
    assert listed(client, url("evses"), a.key, "evse_id", power_type="DC") == \
        ["NL*ACM*E00002*1"]
    assert listed(client, url("evses"), a.key, "evse_id", station="CS-acme-1") == \
        ["NL*ACM*E00001*1"]
    assert listed(client, url("evses"), a.key, "evse_id", location="LOC-acme-2") == \
        ["NL*ACM*E00002*1"]
    assert listed(client, url("evses"), a.key, "evse_id", station="CS-bolt-1") == []
    error(get(client, url("evses") + "?power_type=AC", a.key), 400, "invalid")
    data = answer(get(client, url("evses", "NL*ACM*E00002*1"), a.key))
    assert (data["max_power_kw"], data["station"], data["location"]) == \
        ("150.00", "CS-acme-2", "LOC-acme-2")


# --- customers ---------------------------------------------------------------------------------

NEW_CUSTOMER = {"reference": "ACME-0100", "name": "New driver", "country": "NL",
                "email": "new@example.com"}


def test_customers_list_and_filters(client, a, b):
    response = get(client, url("customers"), a.key)
    data = answer(response)
    assert [c["reference"] for c in data["results"]] == ["ACME-0002", "ACME-0001"]
    assert data["results"][1]["tokens"] == 1
    assert_no_bolt(response)
    assert listed(client, url("customers"), a.key, "reference", kind="business") == \
        ["ACME-0002"]
    assert listed(client, url("customers"), a.key, "reference", name="JANSEN") == \
        ["ACME-0001"]
    assert listed(client, url("customers"), a.key, "reference", country="BE") == ["ACME-0002"]
    email = a.customers[0].email
    assert listed(client, url("customers"), a.key, "reference", email=email.upper()) == \
        ["ACME-0001"]
    assert listed(client, url("customers"), a.key, "reference",
                  email=b.customers[0].email) == []
    error(get(client, url("customers") + "?status=deleted", a.key), 400, "invalid")


def test_a_customer_is_created_with_the_operators_currency_and_read_back(client, a):
    data = answer(post(client, url("customers"), NEW_CUSTOMER, a.key), 201)
    assert (data["reference"], data["name"], data["kind"], data["currency"], data["status"],
            data["tokens"]) == ("ACME-0100", "New driver", "individual", "EUR", "active", 0)
    assert answer(get(client, url("customers", "ACME-0100"), a.key))["id"] == data["id"]
    assert Customer.objects.get(pk=data["id"]).operator == a.operator


def test_a_second_customer_with_the_same_reference_answers_409(client, a, b):
    answer(post(client, url("customers"), NEW_CUSTOMER, a.key), 201)
    error(post(client, url("customers"), {**NEW_CUSTOMER, "name": "Other"}, a.key), 409,
          "duplicate_reference")
    # another operator may use the same reference
    answer(post(client, url("customers"), NEW_CUSTOMER, b.key), 201)
    assert Customer.objects.filter(reference="ACME-0100").count() == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "X", "country": "NL"}, "reference"),
    ({"reference": "R-1", "country": "NL"}, "name"),
    ({"reference": "R-1", "name": "X"}, "country"),
    ({**NEW_CUSTOMER, "reference": "A/B"}, "reference"),
    ({**NEW_CUSTOMER, "reference": "x" * 41}, "reference"),
    ({**NEW_CUSTOMER, "name": 42}, "name"),
    ({**NEW_CUSTOMER, "name": "Nul\x00l"}, "name"),
    ({**NEW_CUSTOMER, "country": "nl"}, "country"),
    ({**NEW_CUSTOMER, "email": "not-an-address"}, "email"),
    ({**NEW_CUSTOMER, "vat_number": "NL123"}, "vat_number"),
    ({**NEW_CUSTOMER, "currency": "XYZ"}, "currency"),
    ({**NEW_CUSTOMER, "kind": "robot"}, "kind"),
    ({**NEW_CUSTOMER, "payment_terms_days": 9999}, "payment_terms_days"),
    ({**NEW_CUSTOMER, "language": "tlh"}, "language"),
])
def test_invalid_customers_answer_400_with_the_field_and_store_nothing(client, a, body, field):
    found = error(post(client, url("customers"), body, a.key), 400, "invalid")
    assert field in found["fields"]
    assert not Customer.objects.filter(operator=a.operator, name__in=["X", "New driver"]) \
        .exists()


def test_malformed_and_oversized_customer_bodies(client, a):
    error(post(client, url("customers"), raw="{not json", key=a.key), 400, "malformed_json")
    error(post(client, url("customers"), ["a", "list"], a.key), 400, "invalid")
    big = {**NEW_CUSTOMER, "address_line": "x" * (17 * 1024)}
    error(post(client, url("customers"), big, a.key), 413, "payload_too_large")
    assert not Customer.objects.filter(reference="ACME-0100").exists()


def test_a_customer_is_updated_in_part(client, a):
    data = answer(patch(client, url("customers", "ACME-0001"),
                        {"status": "blocked", "city": "Utrecht", "reference": "IGNORED"},
                        a.key))
    assert (data["reference"], data["status"], data["address"]["city"]) == \
        ("ACME-0001", "blocked", "Utrecht")
    customer = Customer.objects.get(pk=a.customers[0].pk)
    assert (customer.status, customer.city, customer.name) == ("blocked", "Utrecht",
                                                               "acme Jansen")
    found = error(patch(client, url("customers", "ACME-0001"), {"name": ""}, a.key), 400,
                  "invalid")
    assert list(found["fields"]) == ["name"]


def test_another_operators_customer_cannot_be_changed(client, a, b):
    error(patch(client, url("customers", "BOLT-0001"), {"status": "blocked"}, a.key), 404,
          "not_found")
    assert Customer.objects.get(pk=b.customers[0].pk).status == "active"
    error(post(client, url("customers") + "?operator=bolt", NEW_CUSTOMER, a.key), 404,
          "not_found")
    error(post(client, url("customers"), {**NEW_CUSTOMER, "operator": "bolt"}, a.key), 404,
          "not_found")
    assert not Customer.objects.filter(operator=b.operator, reference="ACME-0100").exists()


def test_a_signed_in_viewer_reads_but_cannot_write(client, a):
    client.force_login(a.viewer)
    answer(client.get(url("customers")))
    error(post(client, url("customers"), NEW_CUSTOMER), 403, "permission_denied")
    error(patch(client, url("customers", "ACME-0001"), {"status": "blocked"}), 403,
          "permission_denied")
    client.force_login(a.manager)
    answer(post(client, url("customers"), NEW_CUSTOMER), 201)


# --- tokens ------------------------------------------------------------------------------------

def test_tokens_list_and_filters(client, a, b):
    response = get(client, url("tokens"), a.key)
    assert [(t["uid"], t["customer"], t["type"]) for t in answer(response)["results"]] == [
        ("ACM0000000001", "ACME-0001", "RFID"), ("ACM0000000002", "ACME-0002", "APP_USER")]
    assert_no_bolt(response)
    assert listed(client, url("tokens"), a.key, "uid", customer="ACME-0002") == \
        ["ACM0000000002"]
    assert listed(client, url("tokens"), a.key, "uid", type="RFID") == ["ACM0000000001"]
    assert listed(client, url("tokens"), a.key, "uid", contract_id="nl-acm-c00000002") == \
        ["ACM0000000002"]
    Token.objects.filter(pk=a.tokens[0].pk).update(valid=False)
    assert listed(client, url("tokens"), a.key, "uid", valid="false") == ["ACM0000000001"]
    assert listed(client, url("tokens"), a.key, "uid", valid="true") == ["ACM0000000002"]
    assert listed(client, url("tokens"), a.key, "uid", customer="BOLT-0001") == []
    for bad in ("valid=yes", "type=CARD", "customer=" + "x" * 41, "customer=a%00b"):
        error(get(client, url("tokens") + "?" + bad, a.key), 400, "invalid")


def test_a_token_is_created_for_a_customer_and_a_duplicate_uid_answers_409(client, a):
    body = {"uid": "ACM0000000099", "customer": "ACME-0001", "visual_number": "ACM-99"}
    data = answer(post(client, url("tokens"), body, a.key), 201)
    assert (data["uid"], data["customer"], data["type"], data["valid"]) == \
        ("ACM0000000099", "ACME-0001", "RFID", True)
    error(post(client, url("tokens"), body, a.key), 409, "duplicate_uid")
    assert Token.objects.filter(uid="ACM0000000099").count() == 1
    without = answer(post(client, url("tokens"), {"uid": "ACM0000000098"}, a.key), 201)
    assert without["customer"] is None


def test_a_token_for_another_operators_customer_is_refused(client, a, b):
    found = error(post(client, url("tokens"), {"uid": "ACM0000000099",
                                               "customer": "BOLT-0001"}, a.key), 400, "invalid")
    assert found["fields"] == {"customer": ["No customer with this reference."]}
    found = error(patch(client, url("tokens", "ACM0000000001"), {"customer": "BOLT-0001"},
                        a.key), 400, "invalid")
    assert Token.objects.get(pk=a.tokens[0].pk).customer == a.customers[0]
    assert not Token.objects.filter(uid="ACM0000000099").exists()


@pytest.mark.parametrize(("body", "field"), [
    ({}, "uid"),
    ({"uid": "A/B"}, "uid"),
    ({"uid": "has space"}, "uid"),
    ({"uid": "x" * 37}, "uid"),
    ({"uid": 12345}, "uid"),
    ({"uid": "OK1", "type": "CARD"}, "type"),
    ({"uid": "OK1", "valid": "perhaps"}, "valid"),
    ({"uid": "OK1", "contract_id": "x" * 37}, "contract_id"),
    ({"uid": "OK1", "customer": "a\x00b"}, "customer"),
])
def test_invalid_tokens_answer_400(client, a, body, field):
    assert field in error(post(client, url("tokens"), body, a.key), 400, "invalid")["fields"]
    assert Token.objects.filter(operator=a.operator).count() == 2


def test_a_token_is_blocked_and_moved_to_another_customer(client, a):
    data = answer(patch(client, url("tokens", "ACM0000000001"),
                        {"valid": False, "customer": "ACME-0002"}, a.key))
    assert (data["valid"], data["customer"]) == (False, "ACME-0002")
    data = answer(patch(client, url("tokens", "ACM0000000001"), {"customer": None}, a.key))
    assert data["customer"] is None
    error(patch(client, url("tokens", "BLT0000000001"), {"valid": False}, a.key), 404,
          "not_found")


# --- sessions ----------------------------------------------------------------------------------

def test_sessions_are_listed_newest_first_with_their_current_price(client, a, b):
    response = get(client, url("sessions"), a.key)
    data = answer(response)
    assert [s["cdr_id"] for s in data["results"]] == ["CDR-acme-04-2", "CDR-acme-02-1",
                                                      "CDR-acme-01-0"]
    first, second, third = data["results"]
    # 20.5 kWh at 0.40 (version 2, from 3 October) and 0.30 (version 1), +21 % VAT
    assert first["price"] == {
        "currency": "EUR", "excl_vat": "8.20", "vat": "1.72", "incl_vat": "9.92",
        "tariff": "STD-acme", "tariff_version": 2, "level": "network", "retail_plan": None,
        "explanation": first["price"]["explanation"], "rated_at": first["price"]["rated_at"]}
    assert (third["price"]["incl_vat"], third["price"]["tariff_version"]) == ("7.44", 1)
    # the roaming location's session has no retail plan to price it
    assert (second["status"], second["price"]) == ("rating_failed", None)
    assert second["rating_failure_reason"].startswith("Roaming session at DEABC")
    assert (first["status"], first["energy_kwh"], first["evse_id"], first["station"],
            first["location"], first["customer"], first["token"]) == (
        "rated", "20.5000", "NL*ACM*E00001*1", "CS-acme-1", "LOC-acme-1", "ACME-0001",
        "ACM0000000001")
    assert_no_bolt(response)


@pytest.mark.parametrize(("query", "cdr_ids"), [
    ({"status": "rated"}, ["CDR-acme-04-2", "CDR-acme-01-0"]),
    ({"status": "rating_failed"}, ["CDR-acme-02-1"]),
    ({"status": "invoiced"}, []),
    ({"source": "csv"}, ["CDR-acme-04-2", "CDR-acme-02-1", "CDR-acme-01-0"]),
    ({"evse": "NL*ACM*E00002*1"}, ["CDR-acme-02-1"]),
    ({"station": "CS-acme-1"}, ["CDR-acme-04-2", "CDR-acme-01-0"]),
    ({"location": "LOC-acme-2"}, ["CDR-acme-02-1"]),
    ({"customer": "ACME-0002"}, ["CDR-acme-02-1"]),
    ({"token": "ACM0000000001"}, ["CDR-acme-04-2", "CDR-acme-01-0"]),
    ({"start_from": "2026-10-02T08:00:00Z"}, ["CDR-acme-04-2", "CDR-acme-02-1"]),
    ({"start_before": "2026-10-02T10:00:00+01:00"}, ["CDR-acme-02-1", "CDR-acme-01-0"]),
    ({"start_before": "2026-10-02T10:00:00+02:00"}, ["CDR-acme-01-0"]),
    ({"start_from": "2026-10-02T00:00:00Z", "start_before": "2026-10-03T00:00:00Z"},
     ["CDR-acme-02-1"]),
    ({"station": "CS-acme-1", "customer": "ACME-0002"}, []),
    # B's keys: nothing of A's, and never B's
    ({"evse": "NL*BLT*E00001*1"}, []),
    ({"customer": "BOLT-0001"}, []),
    ({"location": "LOC-bolt-1"}, []),
    ({"token": "BLT0000000001"}, []),
])
def test_sessions_filters(client, a, b, query, cdr_ids):
    assert listed(client, url("sessions"), a.key, "cdr_id", **query) == cdr_ids


@pytest.mark.parametrize(("query", "field"), [
    ({"status": "paid"}, "status"),
    ({"source": "fax"}, "source"),
    ({"start_from": "2026-10-02T08:00:00"}, "start_from"),
    ({"start_from": "yesterday"}, "start_from"),
    ({"start_before": "1999-12-31T23:00:00Z"}, "start_before"),
    ({"start_before": "9999-12-31T23:59:59-23:59"}, "start_before"),
    ({"start_from": "2026-13-45T08:00:00Z"}, "start_from"),
    ({"evse": "x" * 49}, "evse"),
    ({"token": "a\x00b"}, "token"),
])
def test_malformed_session_filters_answer_400(client, a, query, field):
    response = client.get(url("sessions"), query, HTTP_AUTHORIZATION=f"Bearer {a.key}")
    assert list(error(response, 400, "invalid")["fields"]) == [field]


@pytest.mark.parametrize("value", ["2026-10-02T08:00:00Z\x00", "2026-10-02T08:00:00Z\n",
                                   "\t2026-10-02T08:00:00Z", "2026-10-02T08:00\x1b:00Z"])
def test_a_session_time_filter_with_a_control_character_answers_400(client, a, value):
    response = client.get(url("sessions"), {"start_from": value},
                          HTTP_AUTHORIZATION=f"Bearer {a.key}")
    assert error(response, 400, "invalid")["fields"] == {"start_from": [
        "Give the time without control characters (such as NUL or a line break), e.g. "
        "2026-10-15T14:00:00+02:00."]}


def test_one_session_with_its_breakdown(client, a, b):
    data = answer(get(client, url("sessions", "CDR-acme-04-2"), a.key))
    assert data["price"]["incl_vat"] == "9.92"
    assert data["breakdown"]["total_cost"] == {"excl_vat": "8.20", "incl_vat": "9.92"}
    assert data["contract_id"] is None or isinstance(data["contract_id"], str)


def test_the_sessions_list_reads_a_page_in_a_fixed_number_of_queries(client, a):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            answer(get(client, url("sessions"), a.key))
        return len(captured.captured_queries)

    answer(get(client, url("sessions"), a.key))  # the key's first use is recorded once
    few = queries()
    add_sessions(a, days=list(range(4, 24)), prefix="MORE")
    assert answer(get(client, url("sessions"), a.key))["count"] == 23
    assert queries() == few


def test_lists_are_paginated_50_a_page(client, a):
    Token.objects.bulk_create(Token(operator=a.operator, uid=f"PAGE{n:04d}") for n in range(53))
    first = answer(get(client, url("tokens"), a.key))
    assert (first["count"], len(first["results"]), first["previous"]) == (55, 50, None)
    assert first["next"].endswith("/api/v1/tokens?page=2")
    second = answer(get(client, first["next"], a.key))
    assert len(second["results"]) == 5 and second["next"] is None
    filtered = answer(get(client, url("tokens") + "?type=RFID&page=2", a.key))
    assert (filtered["count"], len(filtered["results"])) == (54, 4)  # one is an app user
    assert "type=RFID" in filtered["previous"]
    for bad in ("999", "0", "abc", "9" * 40):
        error(get(client, url("tokens") + f"?page={bad}", a.key), 404, "not_found")


def test_amounts_are_never_floats_and_energy_is_exact(client, a):
    data = answer(get(client, url("sessions"), a.key))
    assert {Decimal(s["energy_kwh"]) for s in data["results"]} == {Decimal("20.5")}


def test_a_time_filter_with_a_nul_character_is_refused(client, a):
    """Python's ISO parser stops reading at a NUL: ``…Z\\x00`` must not pass as a time."""
    response = client.get(url("sessions"), {"start_from": "2026-10-02T08:00:00Z\x00"},
                          HTTP_AUTHORIZATION=f"Bearer {a.key}")
    assert list(error(response, 400, "invalid")["fields"]) == ["start_from"]


@pytest.mark.parametrize(("method", "address"), [
    ("post", "tokens"), ("patch", "tokens/ACM0000000001"), ("patch", "customers/ACME-0001"),
])
def test_oversized_and_malformed_writes_change_nothing(client, a, method, address):
    send = post if method == "post" else patch
    big = {"uid": "ACM0000000099", "visual_number": "x" * (17 * 1024), "city": "x" * 17000}
    error(send(client, f"{API}/{address}", big, a.key), 413, "payload_too_large")
    error(send(client, f"{API}/{address}", raw='{"valid": tru', key=a.key), 400,
          "malformed_json")
    error(send(client, f"{API}/{address}", raw='{"valid": NaN}', key=a.key), 400,
          "malformed_json")
    assert Token.objects.filter(operator=a.operator).count() == 2
    assert Customer.objects.get(pk=a.customers[0].pk).city == ""


def test_the_filters_are_described_in_the_openapi_document(client):
    schema = answer(client.get("/api/schema/", {"format": "json"}))
    operation = schema["paths"]["/api/v1/sessions"]["get"]
    names = {p["name"]: p for p in operation["parameters"]}
    assert {"status", "source", "evse", "station", "location", "customer", "token",
            "start_from", "start_before"} <= set(names)
    assert names["status"]["schema"]["enum"] == ["imported", "rating_failed", "rated",
                                                 "settled", "invoiced"]
    assert names["start_from"]["schema"]["format"] == "date-time"
    assert "post" in schema["paths"]["/api/v1/customers"]
    assert "patch" in schema["paths"]["/api/v1/tokens/{uid}"]
