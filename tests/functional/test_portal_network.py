"""The portal's Network pages (/portal/network/): the operator's locations, a location's stations
and EVSEs with the tariff in force now for each tariff group (the tariffs app's resolution),
read in a fixed number of queries, and never another operator's rows."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tariffs.models import TariffAssignment, TariffGroup
from tariffs.services import tariff_assign
from tests.factories import (
    EvseFactory,
    LocationFactory,
    MembershipFactory,
    OperatorFactory,
    StationFactory,
    TariffFactory,
    TariffVersionFactory,
)

pytestmark = pytest.mark.django_db

NETWORK = reverse("portal:network")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _location_url(location):
    return reverse("portal:network_location", kwargs={"pk": location.pk})


def _tariff(operator, code, price="0.30", **version):
    tariff = TariffFactory(operator=operator, code=code, name=f"{code} name")
    TariffVersionFactory(tariff=tariff, energy_price=Decimal(price), **version)
    return tariff


@pytest.fixture
def net():
    """Operator alpha: a location with two stations (one EVSE each, a second EVSE on the first),
    a network tariff for everyone, a station tariff for the fleet group, an EVSE tariff for
    everyone on one EVSE; operator bravo with its own location."""
    a = OperatorFactory(name="Operator alpha", code="alpha")
    location = LocationFactory(operator=a, name="alpha harbour", code="ALPHA-HARBOUR",
                               city="Utrecht", region="Utrecht", time_zone="Europe/Amsterdam")
    other_location = LocationFactory(operator=a, name="alpha station square",
                                     code="ALPHA-SQUARE", city="Zwolle")
    st1 = StationFactory(location=location, identity="ALPHA-CS-1", vendor="Alfen")
    st2 = StationFactory(location=location, identity="ALPHA-CS-2")
    e11 = EvseFactory(station=st1, evse_id="NL*ALP*E11*1")
    e12 = EvseFactory(station=st1, evse_id="NL*ALP*E12*1")
    e21 = EvseFactory(station=st2, evse_id="NL*ALP*E21*1")
    EvseFactory(station__location=other_location, evse_id="NL*ALP*E31*1")
    fleet = TariffGroup.objects.create(operator=a, code="fleet", name="alpha fleet")
    public = TariffGroup.objects.create(operator=a, code="public", name="alpha public")
    standard = _tariff(a, "ALPHA-STD")
    fleet_tariff = _tariff(a, "ALPHA-FLEET", "0.25")
    fast = _tariff(a, "ALPHA-FAST", "0.59")
    tariff_assign(tariff=standard, level=TariffAssignment.Level.NETWORK, valid_from=LONG_AGO)
    tariff_assign(tariff=fleet_tariff, level=TariffAssignment.Level.STATION, station=st1,
                  tariff_group=fleet, valid_from=LONG_AGO)
    tariff_assign(tariff=fast, level=TariffAssignment.Level.EVSE, evse=e12,
                  valid_from=LONG_AGO)
    manager = MembershipFactory(operator=a, role="manager").user

    b = OperatorFactory(name="Operator bravo", code="bravo")
    b_location = LocationFactory(operator=b, name="bravo depot", code="BRAVO-DEPOT")
    EvseFactory(station__location=b_location, station__identity="BRAVO-CS-1",
                evse_id="NL*BRV*E11*1")
    TariffGroup.objects.create(operator=b, code="bravo-fleet", name="bravo fleet")
    tariff_assign(tariff=_tariff(b, "BRAVO-STD"), level=TariffAssignment.Level.NETWORK,
                  valid_from=LONG_AGO)
    return {"a": a, "b": b, "location": location, "other_location": other_location,
            "st1": st1, "st2": st2, "e11": e11, "e12": e12, "e21": e21, "fleet": fleet,
            "public": public, "b_location": b_location, "manager": manager}


@pytest.fixture
def client_a(client, net):
    client.force_login(net["manager"])
    return client


def _cells(html: str, evse_id: str) -> str:
    """The table row of an EVSE (its cells' text, up to the end of the row)."""
    start = html.index(evse_id)
    return html[start:html.index("</tr>", start)]


def test_the_menu_has_network_and_the_list_shows_the_operators_locations_with_counts(client_a,
                                                                                     net):
    page = client_a.get(NETWORK)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="{NETWORK}"' in html
    assert "alpha harbour" in html and "alpha station square" in html
    assert "bravo" not in html.lower()
    rows = {row.pk: row for row in page.context["page_obj"]}
    assert rows[net["location"].pk].station_count == 2
    assert rows[net["location"].pk].evse_count == 3
    assert rows[net["other_location"].pk].evse_count == 1
    assert _location_url(net["location"]) in html


def test_the_search_finds_locations_by_name_code_or_city(client_a, net):
    for text in ("harbour", "ALPHA-SQUARE", "zwolle"):
        page = client_a.get(NETWORK, {"q": text})
        names = [row.name for row in page.context["page_obj"]]
        assert len(names) == 1, (text, names)
    page = client_a.get(NETWORK, {"q": "bravo"})
    assert page.status_code == 200 and list(page.context["page_obj"]) == []
    assert "No locations found" in page.content.decode()


@pytest.mark.parametrize("q", ["x" * 101, "harbour\x00"])
def test_an_oversized_or_nul_search_is_refused_with_an_error(client_a, net, q):
    page = client_a.get(NETWORK, {"q": q})
    assert page.status_code == 400
    assert list(page.context["page_obj"]) == []
    assert page.context["form"].errors["q"]


def test_a_page_number_out_of_range_or_not_a_number_shows_a_page(client_a, net):
    for value in ("999999999999", "abc", "-1"):
        page = client_a.get(NETWORK, {"page": value})
        assert page.status_code == 200


def test_the_location_page_shows_the_tariff_in_force_per_evse_and_group(client_a, net):
    page = client_a.get(_location_url(net["location"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "ALPHA-CS-1" in html and "ALPHA-CS-2" in html and "Alfen" in html
    assert "Group: alpha fleet" in html and "Group: alpha public" in html
    assert "bravo" not in html.lower()
    rows = {row["evse"].evse_id: row["tariffs"] for item in page.context["stations"]
            for row in item["evses"]}
    assert set(rows) == {"NL*ALP*E11*1", "NL*ALP*E12*1", "NL*ALP*E21*1"}

    def codes(evse_id):
        # every customer, then the groups by name (alpha fleet, alpha public)
        return [cell.resolution.version.tariff.code for cell in rows[evse_id]]

    # station 1: the fleet's station tariff beats the network tariff for the fleet only
    assert codes("NL*ALP*E11*1") == ["ALPHA-STD", "ALPHA-FLEET", "ALPHA-STD"]
    # the EVSE-level tariff for everyone is the most specific level: it wins for every group
    assert codes("NL*ALP*E12*1") == ["ALPHA-FAST", "ALPHA-FAST", "ALPHA-FAST"]
    assert codes("NL*ALP*E21*1") == ["ALPHA-STD", "ALPHA-STD", "ALPHA-STD"]
    fleet_cell = rows["NL*ALP*E11*1"][1]
    assert fleet_cell.for_group and fleet_cell.level_label == "Station (micro)"
    assert "ALPHA-FLEET" in _cells(html, "NL*ALP*E11*1")
    assert "ALPHA-FAST" in _cells(html, "NL*ALP*E12*1")
    assert "EVSE (micro)" in _cells(html, "NL*ALP*E12*1")


def test_expired_assignments_and_future_versions_are_not_in_force_now(client_a, net):
    now = timezone.now()
    # the EVSE tariff ends an hour ago: the network tariff applies again
    TariffAssignment.objects.filter(evse=net["e12"]).update(valid_to=now - timedelta(hours=1))
    # a tariff assigned to station 2 from tomorrow on is not in force yet
    later = _tariff(net["a"], "ALPHA-LATER")
    tariff_assign(tariff=later, level=TariffAssignment.Level.STATION, station=net["st2"],
                  valid_from=now + timedelta(days=1))
    page = client_a.get(_location_url(net["location"]))
    rows = {row["evse"].evse_id: row["tariffs"] for item in page.context["stations"]
            for row in item["evses"]}
    assert rows["NL*ALP*E12*1"][0].resolution.version.tariff.code == "ALPHA-STD"
    assert rows["NL*ALP*E21*1"][0].resolution.version.tariff.code == "ALPHA-STD"
    assert "ALPHA-LATER" not in page.content.decode()


def test_a_tariff_without_a_version_in_force_says_there_is_no_tariff(client_a, net):
    draft_only = TariffFactory(operator=net["a"], code="ALPHA-DRAFT")
    TariffVersionFactory(tariff=draft_only, status="draft", valid_from=None)
    tariff_assign(tariff=draft_only, level=TariffAssignment.Level.EVSE, evse=net["e21"],
                  valid_from=LONG_AGO)
    page = client_a.get(_location_url(net["location"]))
    html = page.content.decode()
    row = _cells(html, "NL*ALP*E21*1")
    assert "No tariff" in row and "ALPHA-DRAFT" in row and "no active version" in row


def test_an_operator_without_any_assignment_shows_no_tariff_rather_than_failing(client, net):
    lone = OperatorFactory(name="Operator lone")
    evse = EvseFactory(station__location__operator=lone, evse_id="NL*LON*E1*1")
    client.force_login(MembershipFactory(operator=lone, role="viewer").user)
    page = client.get(_location_url(evse.station.location))
    assert page.status_code == 200
    assert "No tariff applies" in _cells(page.content.decode(), "NL*LON*E1*1")


def test_the_location_page_reads_a_fixed_number_of_queries_however_many_evses_and_groups(
        client_a, net):
    url = _location_url(net["location"])
    client_a.get(url)
    with CaptureQueriesContext(connection) as small:
        assert client_a.get(url).status_code == 200
    for n in range(4):
        station = StationFactory(location=net["location"], identity=f"ALPHA-MORE-{n}")
        for m in range(3):
            evse = EvseFactory(station=station, evse_id=f"NL*ALP*E9{n}{m}*1")
            if m == 0:
                tariff_assign(tariff=_tariff(net["a"], f"ALPHA-X{n}"),
                              level=TariffAssignment.Level.EVSE, evse=evse,
                              valid_from=LONG_AGO)
        TariffGroup.objects.create(operator=net["a"], code=f"g{n}", name=f"alpha g{n}")
    with CaptureQueriesContext(connection) as large:
        page = client_a.get(url)
    assert page.status_code == 200
    assert sum(len(item["evses"]) for item in page.context["stations"]) == 15
    assert len(large.captured_queries) == len(small.captured_queries), [
        q["sql"][:120] for q in large.captured_queries]
    assert len(large.captured_queries) <= 16


def test_the_list_reads_a_fixed_number_of_queries_however_many_locations(client_a, net):
    with CaptureQueriesContext(connection) as small:
        client_a.get(NETWORK)
    for n in range(10):
        EvseFactory(station__location__operator=net["a"], station__location__name=f"alpha {n}")
    with CaptureQueriesContext(connection) as large:
        page = client_a.get(NETWORK)
    assert len(page.context["page_obj"]) == 12
    assert len(large.captured_queries) == len(small.captured_queries)


def test_stations_are_paginated_on_the_location_page(client_a, net, monkeypatch):
    monkeypatch.setattr("portal.pages.network.PAGE_SIZE", 1)
    first = client_a.get(_location_url(net["location"]))
    second = client_a.get(_location_url(net["location"]), {"page": 2})
    assert [i["station"].identity for i in first.context["stations"]] == ["ALPHA-CS-1"]
    assert [i["station"].identity for i in second.context["stations"]] == ["ALPHA-CS-2"]
    assert "?page=2" in first.content.decode()


def test_another_operators_location_is_not_found(client_a, net):
    assert client_a.get(_location_url(net["b_location"])).status_code == 404
    assert client_a.get(reverse("portal:network_location",
                                kwargs={"pk": 2**62})).status_code == 404
    assert client_a.get("/portal/network/locations/abc/").status_code == 404
    assert client_a.get("/portal/network/locations/-1/").status_code == 404


def test_the_other_operator_sees_only_its_own_network(client, net):
    client.force_login(MembershipFactory(operator=net["b"], role="viewer").user)
    html = client.get(NETWORK).content.decode()
    assert "bravo depot" in html and "alpha" not in html.lower()
    assert client.get(_location_url(net["location"])).status_code == 404
    page = client.get(_location_url(net["b_location"]))
    assert page.status_code == 200 and "BRAVO-STD" in page.content.decode()
    assert "alpha" not in page.content.decode().lower()


def test_a_viewer_may_read_the_network_and_a_stranger_is_sent_to_log_in(client, net):
    client.force_login(MembershipFactory(operator=net["a"], role="viewer").user)
    assert client.get(_location_url(net["location"])).status_code == 200
    client.logout()
    response = client.get(NETWORK)
    assert response.status_code == 302 and reverse("portal:login") in response.url


def test_writes_are_not_allowed(client_a, net):
    assert client_a.post(NETWORK).status_code == 405
    assert client_a.post(_location_url(net["location"])).status_code == 405
