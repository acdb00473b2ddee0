"""The portal's tariff pages (list, detail, create, new version, peak/off-peak builder,
assignments) and the price simulator (/portal/simulator/), with the test client."""

from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tariffs.models import Tariff, TariffAssignment, TariffAuditEntry, TariffVersion
from tariffs.selectors import quote_price
from tests.factories import TariffFactory, TariffVersionFactory

from .tariffs_helpers import (
    AMSTERDAM,
    builder_body,
    local_input,
    network,
    next_weekday,
)

pytestmark = pytest.mark.django_db

LIST = reverse("portal:tariffs")
CREATE = reverse("portal:tariff_create")
SIMULATOR = reverse("portal:simulator")
NUL = "a\x00b"


@pytest.fixture
def nets():
    return network("alpha"), network("bravo")


@pytest.fixture
def a(nets, client):
    client.force_login(nets[0].manager)
    return nets[0]


@pytest.fixture
def b(nets):
    return nets[1]


def url(name, tariff):
    return reverse(f"portal:{name}", kwargs={"pk": tariff.pk})


def html(response) -> str:
    return response.content.decode()


def _no_bravo(response):
    assert "bravo" not in html(response).lower()


# --- list and detail --------------------------------------------------------------------------

def test_the_list_shows_each_tariff_with_the_version_in_force_now(client, a, b):
    TariffVersionFactory(tariff=a.tariff, energy_price=Decimal("0.40"),
                         valid_from=timezone.now() + timedelta(days=30))  # not yet in force
    TariffFactory(operator=a.operator, code="alpha-EMPTY", name="alpha without prices")
    response = client.get(LIST)
    assert response.status_code == 200
    page = html(response)
    assert "alpha-NET" in page and "alpha-EMPTY" in page
    row = page.split(f'data-current="{a.tariff.pk}"')[1].split("</td>")[0]
    assert "v1 since" in row
    assert "none: sessions here cannot be priced" in page
    _no_bravo(response)
    assert '<a href="/portal/tariffs/">Tariffs</a>' in page.replace(' aria-current="page"', "")
    assert reverse("portal:simulator") in page  # the menu's second entry


def test_the_list_is_paginated_and_reads_in_a_fixed_number_of_queries(client, a):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(LIST).status_code == 200
        return len(captured)

    few = queries()
    for n in range(60):
        tariff = TariffFactory(operator=a.operator, code=f"alpha-{n:03d}")
        TariffVersionFactory(tariff=tariff)
    assert queries() == few
    first = client.get(LIST)
    assert first.context["page_obj"].paginator.num_pages == 2
    assert len(first.context["page_obj"].object_list) == 50
    assert "alpha-059" in html(client.get(LIST, {"page": 2}))
    assert client.get(LIST, {"page": "x\x00"}).status_code == 200  # a bad page is page 1


def test_the_detail_shows_versions_elements_and_assignments(client, a):
    client.post(url("tariff_builder", a.tariff), builder_body())
    TariffAssignment.objects.create(operator=a.operator, tariff=a.tariff, level="station",
                                    station=a.station, tariff_group=a.group,
                                    valid_from=timezone.now())
    response = client.get(url("tariff", a.tariff))
    assert response.status_code == 200
    page = html(response)
    assert "v2 · Active · <strong>in force now</strong>" in page
    assert "v1 · Retired" in page
    assert "Mon–Fri · 17:00–21:00" in page
    assert "Energy (per kWh): EUR 0.65 / kWh, VAT 21 %" in page
    assert "Energy (per kWh): EUR 0.25 / kWh, VAT 21 %" in page
    assert "alpha-CP-1" in page and "alpha fleet" in page
    assert "Network (macro)" in page


def test_the_detail_reads_in_a_fixed_number_of_queries(client, a):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url("tariff", a.tariff)).status_code == 200
        return len(captured)

    client.post(url("tariff_builder", a.tariff), builder_body())
    few = queries()
    start = next_weekday(0, 6, weeks=2)
    for n in range(12):
        client.post(url("tariff_builder", a.tariff), builder_body(
            valid_from=local_input(start + timedelta(days=n)), flat="0.10"))
    for target in ({"level": "station", "station": a.station},
                   {"level": "evse", "evse": a.evse},
                   {"level": "location", "location": a.location},
                   {"level": "region", "region": "alpha-region"}) * 5:
        TariffAssignment.objects.create(operator=a.operator, tariff=a.tariff,
                                        tariff_group=a.group, valid_from=timezone.now(),
                                        **target)
    assert a.tariff.versions.count() == 14
    assert queries() == few


def test_another_operators_tariff_is_not_found_anywhere(client, a, b):
    for name in ("tariff", "tariff_version_new", "tariff_builder", "tariff_assign"):
        assert client.get(url(name, b.tariff)).status_code == 404, name
    for name, body in (("tariff_version_new", {"energy": "0.01", "vat": "21",
                                               "time_step": "60"}),
                       ("tariff_builder", builder_body()),
                       ("tariff_assign", {"level": "network"})):
        assert client.post(url(name, b.tariff), body).status_code == 404, name
    assert b.tariff.versions.count() == 1
    assert not TariffAssignment.objects.filter(tariff=b.tariff, level="station").exists()
    assert client.get("/portal/tariffs/abc/").status_code == 404
    assert client.get("/portal/tariffs/99999999999999999999/").status_code == 404


# --- viewers ----------------------------------------------------------------------------------

def test_a_viewer_reads_tariffs_but_cannot_change_them(client, nets):
    a = nets[0]
    client.force_login(a.viewer)
    assert client.get(LIST).status_code == 200
    detail = client.get(url("tariff", a.tariff))
    assert detail.status_code == 200
    assert url("tariff_builder", a.tariff) not in html(detail)
    assert reverse("portal:tariff_create") not in html(client.get(LIST))
    for target in (CREATE, url("tariff_version_new", a.tariff), url("tariff_builder", a.tariff),
                   url("tariff_assign", a.tariff)):
        assert client.get(target).status_code == 403, target
        assert client.post(target, {"code": "X", "name": "X", "currency": "EUR",
                                    **builder_body(), "level": "network"}).status_code == 403
    assert Tariff.objects.filter(operator=a.operator).count() == 1
    assert a.tariff.versions.count() == 1
    assert TariffAssignment.objects.filter(tariff=a.tariff).count() == 1
    # the simulator writes nothing: a viewer may use it
    assert client.get(SIMULATOR).status_code == 200


# --- create -----------------------------------------------------------------------------------

def test_creating_a_tariff(client, a):
    assert client.get(CREATE).status_code == 200
    response = client.post(CREATE, {"code": "alpha-PEAK", "name": "Peak pricing",
                                    "currency": "EUR", "type": "REGULAR"})
    tariff = Tariff.objects.get(operator=a.operator, code="alpha-PEAK")
    assert response.status_code == 302 and response.url == url("tariff", tariff)
    assert tariff.type == "REGULAR" and str(tariff.currency) == "EUR"
    assert TariffAuditEntry.objects.filter(tariff=tariff, action="created").exists()
    assert "Tariff alpha-PEAK created" in html(client.get(response.url))


@pytest.mark.parametrize("body,field,message", [
    ({"code": "alpha-NET"}, "code", "A tariff with this id already exists."),
    ({"code": "ALPHA-net"}, "code", "A tariff with this id already exists."),
    ({"code": ""}, "code", "This field is required."),
    ({"code": "x" * 37}, "code", "at most 36 characters"),
    ({"code": "with space"}, "code", "Use letters, digits"),
    ({"code": NUL}, "code", "Null characters are not allowed."),
    ({"name": "n" * 10_000}, "name", "at most 200 characters"),
    ({"name": NUL}, "name", "Null characters are not allowed."),
    ({"currency": "XXX"}, "currency", "Select a valid choice"),
    ({"type": "CHEAPEST"}, "type", "Select a valid choice"),
])
def test_creating_a_tariff_refuses_bad_input_saying_why(client, a, body, field, message):
    data = {"code": "alpha-NEW", "name": "New", "currency": "EUR", "type": "", **body}
    response = client.post(CREATE, data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not Tariff.objects.filter(code="alpha-NEW").exists()


def test_a_tariff_id_of_another_operator_is_free_here(client, a, b):
    response = client.post(CREATE, {"code": "X-1", "name": "x", "currency": "EUR"})
    assert response.status_code == 302
    assert client.post(CREATE, {"code": "x-1", "name": "x", "currency": "EUR"}
                       ).status_code == 400


# --- a new version with one set of prices -----------------------------------------------------

def _simple(**changes):
    body = {"energy": "0.42", "time": "", "parking": "1.20", "flat": "0.35", "vat": "21",
            "time_step": "300", "valid_from": "", "valid_to": "", "note": "Winter prices"}
    body.update(changes)
    return body


def test_a_new_version_replaces_the_one_in_force(client, a):
    old = a.tariff.versions.get()
    response = client.post(url("tariff_version_new", a.tariff), _simple())
    assert response.status_code == 302, html(response)
    new = a.tariff.versions.get(number=old.number + 1)
    old.refresh_from_db()
    assert new.status == "active" and old.status == "retired"
    assert old.valid_to == new.valid_from
    assert new.note == "Winter prices"
    components = {(c.element.position, c.type): (c.price, c.vat, c.step_size) for c in
                  new.elements.get(position=1).components.select_related("element")}
    assert components == {(1, "ENERGY"): (Decimal("0.42"), Decimal(21), 1),
                          (1, "PARKING_TIME"): (Decimal("1.20"), Decimal(21), 300)}
    assert new.elements.get(position=0).components.get().type == "FLAT"
    quote = quote_price(evse=a.evse, start=timezone.now() + timedelta(days=1),
                        energy_kwh=Decimal(10), charging_seconds=3600, parking_seconds=3600)
    assert quote.resolution.version == new
    # 10 × 0.42 + 1 h × 1.20 + 0.35 = 5.75 excl. VAT
    assert quote.priced.summary["total_cost"] == {"excl_vat": "5.75", "incl_vat": "6.96"}


def test_a_new_version_may_start_later_and_end(client, a):
    start = next_weekday(0, 6)
    response = client.post(url("tariff_version_new", a.tariff), _simple(
        valid_from=local_input(start), valid_to=local_input(start + timedelta(days=2))))
    assert response.status_code == 302
    new = a.tariff.versions.order_by("-number").first()
    assert new.valid_from == start.replace(tzinfo=AMSTERDAM)
    assert new.valid_to == (start + timedelta(days=2)).replace(tzinfo=AMSTERDAM)


@pytest.mark.parametrize("change,field,message", [
    ({"energy": ""}, "energy", "Give the price per kWh"),
    ({"energy": "-0.01"}, "energy", "A price cannot be negative."),
    ({"energy": "0.1234567"}, "energy", "Use at most 6 decimals."),
    ({"energy": "1e40"}, "energy", "A price is at most 9999."),
    ({"energy": "12345678901234"}, "energy", "at most 9999"),
    ({"energy": "abc"}, "energy", "Enter a price as a number"),
    ({"energy": "NaN"}, "energy", "Enter a price as a number"),
    ({"energy": NUL}, "energy", "Enter a price as a number"),
    ({"parking": "-1"}, "parking", "A price cannot be negative."),
    ({"vat": "101"}, "vat", "at most 100"),
    ({"vat": ""}, "vat", "Give the VAT rate"),
    ({"time_step": "-5"}, "time_step", "greater than or equal to 0"),
    ({"time_step": "1" * 40}, "time_step", "less than or equal to 86400"),
    ({"valid_from": "2020-01-01T10:00"}, "valid_from", "cannot start in the past"),
    ({"valid_from": "not a date"}, "valid_from", "Enter a valid date/time."),
    ({"valid_to": "2020-01-01T10:00"}, "valid_to", "must end after it starts"),
    ({"note": "n" * 301}, "note", "at most 300 characters"),
])
def test_a_new_version_refuses_bad_prices_saying_what_is_wrong(client, a, change, field,
                                                               message):
    response = client.post(url("tariff_version_new", a.tariff), _simple(**change))
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert message in errors, response.context["form"].errors
    assert message.split("%")[0] in html(response).replace("&#x27;", "'")
    assert a.tariff.versions.count() == 1


def test_a_version_starting_before_the_one_in_force_is_refused_and_nothing_is_kept(client, a):
    later = next_weekday(2, 8, weeks=3)
    assert client.post(url("tariff_version_new", a.tariff),
                       _simple(valid_from=local_input(later))).status_code == 302
    response = client.post(url("tariff_version_new", a.tariff),
                           _simple(valid_from=local_input(later - timedelta(days=1))))
    assert response.status_code == 400
    assert "the new version must start after it" in " ".join(
        response.context["form"].non_field_errors())
    assert a.tariff.versions.count() == 2  # no draft left behind


# --- the peak/off-peak builder ----------------------------------------------------------------

def test_the_builder_makes_an_active_version_with_ocpi_time_window_elements(client, a):
    page = client.get(url("tariff_builder", a.tariff))
    assert page.status_code == 200
    assert page.content.decode().count('type="checkbox"') == 7 * 24
    assert '<span class="visually-hidden">Monday 17:00–18:00</span>' in html(page)
    response = client.post(url("tariff_builder", a.tariff), builder_body(
        peak_time="2.00", offpeak_time="0", flat="0.50"))
    assert response.status_code == 302, response.context["form"].errors
    version = a.tariff.versions.get(status="active")
    assert version.number == 2
    elements = list(version.elements.prefetch_related("components"))
    assert [(e.days_of_week, e.start_time, e.end_time) for e in elements] == [
        ([], "", ""),
        (["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"], "17:00", "21:00"),
        ([], "", "")]
    assert [[(c.type, c.price) for c in e.components.all()] for e in elements] == [
        [("FLAT", Decimal("0.50"))],
        [("ENERGY", Decimal("0.65")), ("TIME", Decimal("2.00"))],
        [("ENERGY", Decimal("0.25")), ("TIME", Decimal("0"))]]
    assert "Peak/off-peak prices from the portal" in version.note
    # priced by the same code path as rating: 18:00 on a Tuesday is peak, 23:00 off-peak
    peak = quote_price(evse=a.evse, start=next_weekday(1, 18).replace(tzinfo=AMSTERDAM),
                       energy_kwh=Decimal(10), charging_seconds=3600)
    offpeak = quote_price(evse=a.evse, start=next_weekday(1, 23).replace(tzinfo=AMSTERDAM),
                          energy_kwh=Decimal(10), charging_seconds=3600)
    weekend = quote_price(evse=a.evse, start=next_weekday(5, 18).replace(tzinfo=AMSTERDAM),
                          energy_kwh=Decimal(10), charging_seconds=3600)
    assert peak.priced.summary["total_energy_cost"]["excl_vat"] == "6.50"
    assert offpeak.priced.summary["total_energy_cost"]["excl_vat"] == "2.50"
    assert weekend.priced.summary["total_energy_cost"]["excl_vat"] == "2.50"


def test_the_builder_starts_from_the_grid_of_the_version_it_made(client, a):
    client.post(url("tariff_builder", a.tariff), builder_body())
    page = html(client.get(url("tariff_builder", a.tariff)))
    assert 'name="peak_1_18" id="id_peak_1_18" checked' in page
    assert 'name="peak_5_18" id="id_peak_5_18" checked' not in page
    assert page.count("checked") == 5 * 4


@pytest.mark.parametrize("change,field,message", [
    ({f"peak_{d}_{h}": None for d in range(5) for h in range(17, 21)}, None,
     "Mark at least one peak hour in the grid"),
    ({f"peak_{d}_{h}": "on" for d in range(7) for h in range(24)}, None,
     "Every hour is marked peak"),
    ({"peak_energy": ""}, "peak_energy", "Give the peak price per kWh."),
    ({"offpeak_energy": None}, "offpeak_energy", "Give the off-peak price per kWh."),
    ({"peak_energy": "-0.10"}, "peak_energy", "A price cannot be negative."),
    ({"offpeak_energy": "0.1234567"}, "offpeak_energy", "Use at most 6 decimals."),
    ({"peak_energy": "99999"}, "peak_energy", "A price is at most 9999."),
    ({"peak_energy": "0,65"}, "peak_energy", "Enter a price as a number"),
    ({"peak_time": "1.00"}, "offpeak_time", "Give this price too"),
    ({"offpeak_parking": "1.00"}, "peak_parking", "Give this price too"),
    ({"flat": "-1"}, "flat", "A price cannot be negative."),
    ({"valid_from": "2021-03-01T00:00"}, "valid_from", "cannot start in the past"),
    ({"valid_from": "9999-12-31T23:59"}, "valid_from", "before 2100"),
    ({"valid_from": NUL}, "valid_from", "Enter a valid date/time."),
    ({"note": NUL}, "note", "Null characters are not allowed."),
])
def test_the_builder_says_what_is_wrong(client, a, change, field, message):
    response = client.post(url("tariff_builder", a.tariff), builder_body(**change))
    assert response.status_code == 400
    form = response.context["form"]
    errors = form.non_field_errors() if field is None else form.errors.get(field, [])
    assert message in " ".join(errors), form.errors
    assert message in html(response).replace("&#x27;", "'")
    assert a.tariff.versions.count() == 1


def test_the_builder_ignores_cells_that_are_not_in_the_grid(client, a):
    response = client.post(url("tariff_builder", a.tariff), builder_body(
        peak_7_3="on", peak_0_24="on", **{"peak_-1_2": "on", "peak_0_x": "on"}))
    assert response.status_code == 302
    version = a.tariff.versions.get(status="active")
    assert version.elements.count() == 2


def test_an_oversized_builder_post_is_refused_without_a_version(client, a):
    body = builder_body(note="n" * 100_000, peak_energy="9" * 5000)
    response = client.post(url("tariff_builder", a.tariff), body)
    assert response.status_code == 400
    assert a.tariff.versions.count() == 1


# --- assignments ------------------------------------------------------------------------------

def _assign(**changes):
    body = {"level": "station", "evse": "", "station": "", "location": "", "region": "",
            "tariff_group": "", "valid_from": "", "valid_to": ""}
    body.update(changes)
    return body


def test_assigning_a_tariff_to_a_station_for_a_tariff_group(client, a):
    tariff = TariffFactory(operator=a.operator, code="alpha-FLEET")
    TariffVersionFactory(tariff=tariff, energy_price=Decimal("0.20"))
    page = client.get(url("tariff_assign", tariff))
    assert page.status_code == 200 and "alpha-CP-1" in html(page)
    response = client.post(url("tariff_assign", tariff), _assign(
        station=a.station.pk, tariff_group=a.group.pk, location=a.location.pk))
    assert response.status_code == 302, response.context["form"].errors
    assignment = TariffAssignment.objects.get(tariff=tariff)
    assert (assignment.level, assignment.station, assignment.tariff_group,
            assignment.location) == ("station", a.station, a.group, None)
    assert TariffAuditEntry.objects.filter(tariff=tariff, action="assigned").exists()
    start = timezone.now() + timedelta(hours=1)
    for_fleet = quote_price(evse=a.evse, start=start, energy_kwh=Decimal(1),
                            charging_seconds=600, customer=a.customer)
    for_others = quote_price(evse=a.evse, start=start, energy_kwh=Decimal(1),
                             charging_seconds=600)
    assert for_fleet.resolution.version.tariff == tariff
    assert for_others.resolution.version.tariff == a.tariff


@pytest.mark.parametrize(("zone", "utc_hour"), [("Europe/Amsterdam", 23),
                                                 ("America/New_York", 5)])
def test_validity_is_typed_in_the_operators_time_zone(client, a, zone, utc_hour):
    """Midnight of 1 January 2031, typed in the operator's (invoicing) time zone."""
    from invoicing.models import InvoicingSettings

    InvoicingSettings.objects.create(operator=a.operator, time_zone=zone)
    body = _assign(level="network", valid_from="2031-01-01T00:00")
    assert client.post(url("tariff_assign", a.tariff), body).status_code == 302
    created = TariffAssignment.objects.filter(tariff=a.tariff).order_by("-pk").first()
    assert created.valid_from.astimezone(UTC).hour == utc_hour


@pytest.mark.parametrize("level", ["evse", "location", "region", "network"])
def test_assigning_at_every_level(client, a, level):
    target = {"evse": a.evse.pk, "location": a.location.pk, "region": "alpha-region",
              "network": None}[level]
    body = _assign(level=level, **({level: target} if target else {}))
    assert client.post(url("tariff_assign", a.tariff), body).status_code == 302
    assert TariffAssignment.objects.filter(tariff=a.tariff, level=level).count() == (
        2 if level == "network" else 1)


def test_assigning_refuses_another_operators_rows(client, a, b):
    for body, field in ((_assign(station=b.station.pk), "station"),
                        (_assign(level="evse", evse=b.evse.pk), "evse"),
                        (_assign(level="location", location=b.location.pk), "location"),
                        (_assign(level="network", tariff_group=b.group.pk), "tariff_group")):
        response = client.post(url("tariff_assign", a.tariff), body)
        assert response.status_code == 400
        assert "not in your network" in " ".join(response.context["form"].errors[field])
        _no_bravo(response)
    assert TariffAssignment.objects.filter(tariff=a.tariff).count() == 1


@pytest.mark.parametrize("change,field,message", [
    ({}, "station", "Choose the station this tariff applies at."),
    ({"level": "region"}, "region", "Choose the region this tariff applies at."),
    ({"level": "planet"}, "level", "Select a valid choice"),
    ({"station": "abc"}, "station", "not in your network"),
    ({"station": NUL}, "station", "Null characters are not allowed."),
    ({"station": "9" * 30}, "station", "not in your network"),
    ({"level": "region", "region": "r" * 101}, "region", "at most 100 characters"),
    ({"level": "network", "valid_from": "2019-05-01T00:00"}, "valid_from",
     "cannot start in the past"),
    ({"level": "network", "valid_to": "2001-01-01T00:00"}, "valid_to",
     "must end after it starts"),
])
def test_assigning_says_what_is_wrong(client, a, change, field, message):
    response = client.post(url("tariff_assign", a.tariff), _assign(**change))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert TariffAssignment.objects.filter(tariff=a.tariff).count() == 1


# --- the price simulator ----------------------------------------------------------------------

def _simulate(at, **changes):
    body = {"evse": at.pk, "tariff_group": "", "customer": "",
            "start": local_input(next_weekday(1, 18)), "energy_kwh": "10",
            "charging_minutes": "60", "parking_minutes": "0"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def _peak_tariff(client, a):
    tariff = TariffFactory(operator=a.operator, code="alpha-PEAK", name="alpha peak")
    assert client.post(url("tariff_builder", tariff), builder_body()).status_code == 302
    assert client.post(url("tariff_assign", tariff), _assign(station=a.station.pk)
                       ).status_code == 302
    return tariff


def test_the_simulator_form_starts_at_the_operators_first_evse(client, a, b):
    response = client.get(SIMULATOR)
    assert response.status_code == 200
    page = html(response)
    assert a.evse.evse_id in page and "alpha fleet" in page
    _no_bravo(response)


def test_the_simulator_prices_peak_and_off_peak_as_rating_would(client, a):
    tariff = _peak_tariff(client, a)
    peak = client.post(SIMULATOR, _simulate(a.evse, parking_minutes="30"))
    assert peak.status_code == 200, peak.context["form"].errors
    result = peak.context["result"]
    assert result["total"] == {"excl_vat": "6.50", "incl_vat": "7.87", "vat": "1.37"}
    assert result["version"].tariff == tariff and result["version"].number == 1
    assert result["level"] == "Station (micro)" and result["target"] == "alpha-CP-1"
    assert result["matched_group"] is None
    page = html(peak)
    assert 'data-total="excl">EUR 6.50' in page and 'data-total="incl">EUR 7.87' in page
    assert "Station (micro)" in page and "alpha-PEAK" in page and "v1" in page
    rows = {row["dimension"]: row for row in result["dimensions"]}
    assert rows["ENERGY"]["excl_vat"] == "6.50" and rows["ENERGY"]["billed"] == "10 kWh"
    assert rows["PARKING_TIME"]["excl_vat"] == "0.00"
    # the same figures as the quote API's code path
    start = next_weekday(1, 18).replace(tzinfo=AMSTERDAM)
    quote = quote_price(evse=a.evse, start=start, energy_kwh=Decimal(10),
                        charging_seconds=3600, parking_seconds=1800)
    assert quote.priced.summary["total_cost"] == {"excl_vat": "6.50", "incl_vat": "7.87"}
    late = client.post(SIMULATOR, _simulate(a.evse, start=local_input(next_weekday(1, 23))))
    assert late.context["result"]["total"]["excl_vat"] == "2.50"


def test_the_simulators_amounts_are_written_in_the_pages_language(client, a):
    _peak_tariff(client, a)
    dutch = client.post(SIMULATOR, _simulate(a.evse), HTTP_ACCEPT_LANGUAGE="nl")
    page = html(dutch)
    assert 'data-total="excl">EUR 6,50' in page and 'data-total="incl">EUR 7,87' in page


def test_the_simulator_says_which_group_matched(client, a):
    _peak_tariff(client, a)
    fleet = TariffFactory(operator=a.operator, code="alpha-FLEET")
    TariffVersionFactory(tariff=fleet, energy_price=Decimal("0.10"))
    client.post(url("tariff_assign", fleet), _assign(station=a.station.pk,
                                                     tariff_group=a.group.pk))
    by_customer = client.post(SIMULATOR, _simulate(a.evse, customer="alpha-C1"))
    result = by_customer.context["result"]
    assert result["tariff"] == fleet and result["matched_group"] == a.group
    assert result["customer_group"] == a.group
    assert result["total"]["excl_vat"] == "1.00"
    assert "for tariff group alpha fleet" in html(by_customer)
    by_group = client.post(SIMULATOR, _simulate(a.evse, tariff_group=a.group.pk))
    assert by_group.context["result"]["tariff"] == fleet


def test_the_simulator_shows_why_nothing_applies(client, a):
    TariffAssignment.objects.filter(tariff=a.tariff).delete()
    response = client.post(SIMULATOR, _simulate(a.evse))
    assert response.status_code == 400
    assert "No tariff applies" in " ".join(response.context["form"].non_field_errors())


def test_the_simulator_refuses_another_operators_rows(client, a, b):
    for body, field in ((_simulate(b.evse), "evse"),
                        (_simulate(a.evse, tariff_group=b.group.pk), "tariff_group"),
                        (_simulate(a.evse, customer=b.customer.reference), "customer")):
        response = client.post(SIMULATOR, body)
        assert response.status_code == 400
        assert response.context["result"] is None
        assert field in response.context["form"].errors
        assert "bravo" not in html(response).lower().replace(
            b.customer.reference.lower(), "")  # only the reference typed is shown back


@pytest.mark.parametrize("change,field,message", [
    ({"evse": "abc"}, "evse", "not in your network"),
    ({"evse": NUL}, "evse", "Null characters are not allowed."),
    ({"evse": None}, "evse", "This field is required."),
    ({"customer": "alpha-C1", "tariff_group": "GROUP"}, None, "either a customer or a tariff"),
    ({"customer": "nobody"}, "customer", "No customer with this reference."),
    ({"customer": NUL}, "customer", "Null characters are not allowed."),
    ({"customer": "c" * 41}, "customer", "at most 40 characters"),
    ({"start": ""}, "start", "This field is required."),
    ({"start": "1999-12-31T23:00"}, "start", "between 2000 and 2100"),
    ({"start": "31/12/2026"}, "start", "Enter a valid date/time."),
    ({"energy_kwh": "-1"}, "energy_kwh", "cannot be negative"),
    ({"energy_kwh": "1001"}, "energy_kwh", "At most 1000 kWh."),
    ({"energy_kwh": "1e30"}, "energy_kwh", "At most 1000 kWh."),
    ({"energy_kwh": "1.23456"}, "energy_kwh", "at most 4 decimals"),
    ({"charging_minutes": "0"}, "charging_minutes", "charged for some time"),
    ({"charging_minutes": "0", "energy_kwh": "0"}, "charging_minutes", "at least a minute"),
    ({"charging_minutes": "99999999999999999999"}, "charging_minutes", "less than or equal"),
    ({"parking_minutes": "-1"}, "parking_minutes", "greater than or equal to 0"),
])
def test_the_simulator_shows_errors_in_the_form(client, a, change, field, message):
    if change.get("tariff_group") == "GROUP":
        change["tariff_group"] = a.group.pk
    response = client.post(SIMULATOR, _simulate(a.evse, **change))
    assert response.status_code == 400
    form = response.context["form"]
    errors = form.non_field_errors() if field is None else form.errors.get(field, [])
    assert message in " ".join(errors), form.errors
    assert response.context["result"] is None


def test_a_viewer_prices_sessions_in_the_simulator(client, nets):
    a = nets[0]
    client.force_login(a.viewer)
    response = client.post(SIMULATOR, _simulate(a.evse))
    assert response.status_code == 200
    assert response.context["result"]["total"]["excl_vat"] == "3.00"  # 10 kWh × 0.30


def test_the_simulator_page_needs_a_log_in(client, nets):
    response = client.get(SIMULATOR)
    assert response.status_code == 302 and "/portal/login/" in response.url
    assert client.post(SIMULATOR, _simulate(nets[0].evse)).status_code == 302


def test_tariff_versions_are_unchanged_by_the_simulator(client, a):
    before = list(TariffVersion.objects.values_list("pk", "status", "valid_to"))
    client.post(SIMULATOR, _simulate(a.evse))
    assert list(TariffVersion.objects.values_list("pk", "status", "valid_to")) == before
