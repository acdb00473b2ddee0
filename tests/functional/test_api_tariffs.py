"""The tariff endpoints (tariffs/api/views.py): the list and its filters, one tariff with its
versions, elements and components, and its OCPI 2.2.1 form (the version in force now or at
``?at=``, numbers exact); another operator's tariffs; malformed and hostile input."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest

from tariffs.models import PriceComponent, PriceIndex, TariffElement, TariffVersion
from tests.factories import TariffFactory, TariffVersionFactory

from .api_network_helpers import SECOND_VERSION_FROM, network
from .cdr_helpers import answer, error
from .cdr_helpers import get_json as get

pytestmark = pytest.mark.django_db
TARIFFS = "/api/v1/tariffs"


@pytest.fixture
def a():
    return network("acme", "ACM")


@pytest.fixture
def b():
    return network("bolt", "BLT")


def url(code: str, rest: str = "") -> str:
    return f"{TARIFFS}/{quote(code, safe='')}" + (f"/{rest}" if rest else "")


def exact(response) -> dict:
    """The JSON of an OCPI answer, numbers read as exact decimals."""
    assert response.status_code == 200, response.content[:2000]
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content, parse_float=Decimal)


def codes(client, key, **query) -> list[str]:
    response = client.get(TARIFFS, query, HTTP_AUTHORIZATION=f"Bearer {key}")
    return [t["code"] for t in answer(response)["results"]]


def test_the_list_shows_the_version_in_force_now(client, a, b):
    draft_only = TariffFactory(operator=a.operator, code="DRAFT-acme", name="acme draft")
    TariffVersionFactory(tariff=draft_only, status=TariffVersion.Status.DRAFT, valid_from=None)
    response = get(client, TARIFFS, a.key)
    data = answer(response)
    assert [t["code"] for t in data["results"]] == ["DRAFT-acme", "STD-acme"]
    draft, standard = data["results"]
    assert standard == {
        "id": a.tariff.pk, "code": "STD-acme", "name": "acme standard", "currency": "EUR",
        "type": "REGULAR",
        "in_force": {"number": 2, "status": "active", "valid_from": "2026-10-03T00:00:00Z",
                     "valid_to": None},
        "versions": 2, "created_at": standard["created_at"],
        "updated_at": standard["updated_at"]}
    assert (draft["in_force"], draft["versions"], draft["type"]) == (None, 1, None)
    assert b"bolt" not in response.content.lower()


def test_tariff_filters(client, a, b):
    TariffVersionFactory(tariff=TariffFactory(operator=a.operator, code="GBP-acme",
                                              currency="GBP"), status="draft", valid_from=None)
    assert codes(client, a.key, type="REGULAR") == ["STD-acme"]
    assert codes(client, a.key, type="AD_HOC_PAYMENT") == []
    assert codes(client, a.key, currency="GBP") == ["GBP-acme"]
    assert codes(client, a.key, in_force="true") == ["STD-acme"]
    assert codes(client, a.key, in_force="false") == ["GBP-acme"]
    assert codes(client, a.key, in_force="") == ["GBP-acme", "STD-acme"]


@pytest.mark.parametrize(("query", "field"), [
    ({"type": "CHEAP"}, "type"), ({"in_force": "now"}, "in_force"),
    ({"currency": "EURO"}, "currency"), ({"currency": "E\x00R"}, "currency"),
])
def test_malformed_tariff_filters_answer_400(client, a, query, field):
    response = client.get(TARIFFS, query, HTTP_AUTHORIZATION=f"Bearer {a.key}")
    assert list(error(response, 400, "invalid")["fields"]) == [field]


def test_one_tariff_with_its_versions_elements_and_components(client, a):
    element = TariffElement.objects.create(version=a.versions[1], position=1, start_time="22:00",
                                           end_time="06:00", max_power=Decimal("50.00"),
                                           days_of_week=["SATURDAY", "SUNDAY"])
    PriceComponent.objects.create(element=element, type="TIME", price=Decimal("1.200000"),
                                  vat=Decimal("21.00"), step_size=60)
    data = answer(get(client, url("STD-acme"), a.key))
    assert [v["number"] for v in data["version_list"]] == [2, 1]
    second, first = data["version_list"]
    assert (first["status"], first["valid_to"]) == ("retired", "2026-10-03T00:00:00Z")
    assert second["elements"] == [
        {"position": 0, "restrictions": None, "price_components": [
            {"type": "ENERGY", "price": "0.4", "vat": "21", "step_size": 1,
             "price_index": None}]},
        {"position": 1,
         "restrictions": {"start_time": "22:00", "end_time": "06:00", "max_power": "50",
                          "day_of_week": ["SATURDAY", "SUNDAY"]},
         "price_components": [{"type": "TIME", "price": "1.2", "vat": "21", "step_size": 60,
                               "price_index": None}]}]
    assert data["in_force"]["number"] == 2


def test_the_ocpi_form_is_the_version_in_force_now_with_exact_numbers(client, a):
    response = get(client, url("STD-acme", "ocpi"), a.key)
    assert b'"price": 0.4' in response.content  # a JSON number, written as stored
    data = exact(response)
    assert (data["id"], data["currency"], data["country_code"], data["party_id"]) == \
        ("STD-acme", "EUR", "NL", "ACM")
    assert data["elements"] == [{"price_components": [
        {"type": "ENERGY", "price": Decimal("0.4"), "vat": Decimal("21"), "step_size": 1}]}]
    assert data["start_date_time"] == "2026-10-03T00:00:00Z"
    assert "end_date_time" not in data


def test_the_ocpi_form_at_a_time_is_the_version_then(client, a):
    data = exact(get(client, url("STD-acme", "ocpi") + "?at=2026-10-02T23:59:59%2B02:00",
                     a.key))
    assert data["elements"][0]["price_components"][0]["price"] == Decimal("0.3")
    assert data["end_date_time"] == "2026-10-03T00:00:00Z"
    at_switch = SECOND_VERSION_FROM.isoformat().replace("+00:00", "Z")
    data = exact(get(client, url("STD-acme", "ocpi") + f"?at={at_switch}", a.key))
    assert data["elements"][0]["price_components"][0]["price"] == Decimal("0.4")


def test_no_version_in_force_answers_404_with_the_reason(client, a):
    found = error(get(client, url("STD-acme", "ocpi") + "?at=2019-06-01T00:00:00Z", a.key),
                  404, "not_found")
    assert "no version in force" in found["message"]
    draft_only = TariffFactory(operator=a.operator, code="DRAFT-acme")
    TariffVersionFactory(tariff=draft_only, status=TariffVersion.Status.DRAFT, valid_from=None)
    error(get(client, url("DRAFT-acme", "ocpi"), a.key), 404, "not_found")


def test_a_version_that_follows_a_price_index_is_exported_as_the_tariff_of_that_day(client, a):
    index = PriceIndex.objects.create(operator=a.operator, code="EPEX-NL", name="EPEX NL",
                                      interval_minutes=60)
    component = PriceComponent.objects.get(element__version=a.versions[1])
    component.price_index = index
    component.index_markup_abs = Decimal("0.10")
    component.save()
    # no index prices on that day: the export is refused with the reason, never a 500
    found = error(get(client, url("STD-acme", "ocpi") + "?at=2026-11-01T12:00:00Z", a.key),
                  422, "not_exportable")
    assert "EPEX-NL" in found["message"] or "2026-11-01" in found["message"]


@pytest.mark.parametrize("at", ["2026-10-02T08:00:00", "tomorrow", "1999-01-01T00:00:00Z",
                                "2100-01-01T00:00:00Z", "2026-10-02T08:00:00Z%00"])
def test_malformed_at_answers_400(client, a, at):
    body = error(get(client, url("STD-acme", "ocpi") + f"?at={quote(at, safe='%:')}", a.key),
                 400, "invalid")
    assert list(body["fields"]) == ["at"]


def test_another_operators_tariff_answers_404(client, a, b):
    for rest in ("", "ocpi"):
        theirs = error(get(client, url("STD-bolt", rest), a.key), 404, "not_found")
        assert theirs == error(get(client, url("STD-none", rest), a.key), 404, "not_found")
        answer(get(client, url("STD-bolt", rest), b.key)) if not rest else \
            exact(get(client, url("STD-bolt", rest), b.key))
        error(get(client, url("STD-acme", rest) + "?operator=bolt", a.key), 404, "not_found")
    error(get(client, TARIFFS + "?operator=bolt", a.key), 404, "not_found")


@pytest.mark.parametrize("code", ["9" * 40, "x" * 5000, "a\x00b", "' OR 1=1 --", ".."])
@pytest.mark.parametrize("rest", ["", "ocpi"])
def test_hostile_codes_answer_404(client, a, code, rest):
    error(get(client, url(code, rest), a.key), 404, "not_found")


def test_session_authentication_and_no_authentication(client, a):
    error(client.get(TARIFFS), 401, "not_authenticated")
    error(client.get(url("STD-acme", "ocpi")), 401, "not_authenticated")
    client.force_login(a.viewer)
    assert [t["code"] for t in answer(client.get(TARIFFS))["results"]] == ["STD-acme"]
    assert exact(client.get(url("STD-acme", "ocpi")))["id"] == "STD-acme"


def test_the_ocpi_form_round_trips_through_the_parser(client, a):
    """What the endpoint answers is a valid OCPI tariff for the pricing engine."""
    from tariffs.pricing.ocpi import parse_tariff

    tariff = parse_tariff(exact(get(client, url("STD-acme", "ocpi"), a.key)))
    assert tariff.currency == "EUR"
    assert datetime(2026, 10, 3, tzinfo=UTC) == tariff.start_date_time


def test_the_tariffs_list_reads_a_page_in_a_fixed_number_of_queries(client, a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            answer(get(client, TARIFFS, a.key))
        return len(captured.captured_queries)

    answer(get(client, TARIFFS, a.key))  # the key's first use is recorded once
    few = queries()
    for n in range(5):
        tariff = TariffFactory(operator=a.operator, code=f"MORE-{n}")
        TariffVersionFactory(tariff=tariff, number=1)
        TariffVersionFactory(tariff=tariff, number=2, status="draft", valid_from=None)
    assert answer(get(client, TARIFFS, a.key))["count"] == 6
    assert queries() == few
