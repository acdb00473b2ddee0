"""The portal's Sessions pages (/portal/sessions/): the filtered, paginated list with each
session's current price (no query per session), a session's rating breakdown and settlement,
and the CSV export of the filtered list; hostile filters and another operator's rows."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from emobility.models import CdrImport, ChargingSession
from promotions.models import Coupon
from promotions.services import coupon_code_create, coupon_redeem, sessions_settle
from tariffs.models import TariffAssignment
from tariffs.services import sessions_rate, tariff_assign
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    SessionFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
)

pytestmark = pytest.mark.django_db

SESSIONS = reverse("portal:sessions")
EXPORT = reverse("portal:sessions_export")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
D = Decimal


def _at(day, hour, minute=0):
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


def _session(evse, external_id, start, *, customer=None, token=None, kwh="10.0000", **extra):
    return ChargingSession.objects.create(
        operator=evse.operator, evse=evse, customer=customer, token=token,
        external_id=external_id, start=start, end=start + timedelta(hours=1),
        energy_kwh=D(kwh), charging_seconds=3000, parking_seconds=600,
        source=ChargingSession.Source.CSV, **extra)


@pytest.fixture
def net():
    a = OperatorFactory(name="Operator alpha", code="alpha")
    ams = EvseFactory(station__location__operator=a, station__location__name="alpha Amsterdam",
                      station__location__time_zone="Europe/Amsterdam",
                      station__identity="ALPHA-CS-1", evse_id="NL*ALP*E1*1")
    nyc = EvseFactory(station__location__operator=a, station__location__name="alpha New York",
                      station__location__time_zone="America/New_York",
                      station__identity="ALPHA-CS-2", evse_id="NL*ALP*E2*1")
    tariff = TariffFactory(operator=a, code="ALPHA-STD", name="alpha standard")
    version = TariffVersionFactory(tariff=tariff, energy_price=D("0.30"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK, valid_from=LONG_AGO)
    jansen = CustomerFactory(operator=a, name="alpha Jansen", reference="ALPHA-C1")
    card = TokenFactory(customer=jansen, uid="ALPHATOKEN1", contract_id="NL-ALP-C00000001")
    hostile = CustomerFactory(operator=a, name='=HYPERLINK("http://evil.example")',
                              reference="ALPHA-C2")
    hostile_card = TokenFactory(customer=hostile, uid="ALPHATOKEN2",
                                contract_id="NL-ALP-C00000002")
    job = CdrImport.objects.create(operator=a, door=CdrImport.Door.PORTAL,
                                   file_name="alpha-october.csv", status=CdrImport.Status.DONE)
    # 23:30 UTC on 1 October is 01:30 on 2 October in Amsterdam
    night = _session(ams, "ALPHA-CDR-1", _at(1, 23, 30), customer=jansen, token=card,
                     contract_id="NL-ALP-C00000001")
    # 02:00 UTC on 2 October is 22:00 on 1 October in New York
    evening = _session(nyc, "-ALPHA-CDR-2", _at(2, 2), customer=hostile, token=hostile_card,
                       contract_id="NL-ALP-C00000002", kwh="7.5000")
    settled = _session(ams, "ALPHA-CDR-3", _at(5, 10), customer=jansen, token=card,
                       contract_id="NL-ALP-C00000001")
    failed = _session(ams, "ALPHA-CDR-4", datetime(2019, 6, 1, 10, tzinfo=UTC),
                      customer=jansen, token=card)
    unrated = _session(nyc, "ALPHA-CDR-5", _at(6, 15), cdr_import=job)
    sessions_rate(session_ids=[night.pk, evening.pk, settled.pk, failed.pk])
    coupon = Coupon.objects.create(operator=a, name="alpha welcome", unit="money",
                                   amount=D("2.00"), valid_from=LONG_AGO)
    coupon_code_create(coupon=coupon, code="ALPHA2")
    coupon_redeem(operator=a, code="ALPHA2", customer=jansen, at=_at(1, 0))
    sessions_settle(session_ids=[settled.pk])
    manager = MembershipFactory(operator=a, role="manager").user

    b = OperatorFactory(name="Operator bravo", code="bravo")
    b_evse = EvseFactory(station__location__operator=b, station__location__name="bravo depot",
                         station__identity="BRAVO-CS-1", evse_id="NL*BRV*E1*1")
    b_tariff = TariffFactory(operator=b, code="BRAVO-STD", name="bravo standard")
    TariffVersionFactory(tariff=b_tariff, energy_price=D("0.55"))
    tariff_assign(tariff=b_tariff, level=TariffAssignment.Level.NETWORK, valid_from=LONG_AGO)
    b_customer = CustomerFactory(operator=b, name="bravo driver", reference="BRAVO-C1")
    b_token = TokenFactory(customer=b_customer, uid="BRAVOTOKEN1",
                           contract_id="NL-BRV-C00000001")
    b_job = CdrImport.objects.create(operator=b, door=CdrImport.Door.API,
                                     file_name="bravo.csv", status=CdrImport.Status.DONE)
    b_session = _session(b_evse, "BRAVO-CDR-1", _at(2, 9), customer=b_customer, token=b_token,
                         contract_id="NL-BRV-C00000001", cdr_import=b_job)
    sessions_rate(session_ids=[b_session.pk])
    for s in (night, evening, settled, failed, unrated, b_session):
        s.refresh_from_db()
    return {"a": a, "ams": ams, "nyc": nyc, "version": version, "jansen": jansen,
            "hostile": hostile, "job": job, "night": night, "evening": evening,
            "settled": settled, "failed": failed, "unrated": unrated, "manager": manager,
            "b": b, "b_evse": b_evse, "b_customer": b_customer, "b_job": b_job,
            "b_session": b_session}


@pytest.fixture
def client_a(client, net):
    client.force_login(net["manager"])
    return client


def _ids(page) -> list[str]:
    return [s.external_id for s in page.context["page_obj"].object_list]


def _detail(session):
    return reverse("portal:session", kwargs={"pk": session.pk})


def _csv(response) -> list[dict]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


# --- the list ----------------------------------------------------------------------------------

def test_the_list_shows_the_operators_sessions_newest_first_with_their_current_price(client_a,
                                                                                     net):
    page = client_a.get(SESSIONS)
    assert page.status_code == 200
    assert _ids(page) == ["ALPHA-CDR-5", "ALPHA-CDR-3", "-ALPHA-CDR-2", "ALPHA-CDR-1",
                          "ALPHA-CDR-4"]
    html = page.content.decode()
    assert f'href="{SESSIONS}"' in html  # the menu entry
    assert "bravo" not in html.lower()
    assert "5 sessions" in html
    rows = {s.external_id: s for s in page.context["page_obj"].object_list}
    # 10 kWh × 0.30 = 3.00 excl. VAT, 21 % VAT: 3.63
    assert rows["ALPHA-CDR-1"].price_incl_vat == D("3.63")
    assert rows["ALPHA-CDR-1"].price_currency == "EUR"
    assert rows["ALPHA-CDR-5"].price_incl_vat is None
    assert "EUR 3.63" in html and "not priced" in html


def test_start_times_are_shown_in_the_locations_time_zone(client_a, net):
    html = client_a.get(SESSIONS).content.decode()
    assert "2026-10-02 01:30" in html  # Amsterdam, 23:30 UTC the day before
    assert "2026-10-01 22:00" in html  # New York, 02:00 UTC the day after
    assert "CEST" in html and "EDT" in html


@pytest.mark.parametrize(("day", "expected"), [
    ("2026-10-02", ["ALPHA-CDR-1"]),  # local day in Amsterdam, though 1 October in UTC
    ("2026-10-01", ["-ALPHA-CDR-2"]),  # local day in New York, though 2 October in UTC
])
def test_the_period_is_made_of_local_days_of_each_sessions_location(client_a, net, day,
                                                                     expected):
    page = client_a.get(SESSIONS, {"first": day, "last": day})
    assert page.status_code == 200
    assert _ids(page) == expected


def test_an_open_ended_period(client_a, net):
    assert _ids(client_a.get(SESSIONS, {"first": "2026-10-05"})) == ["ALPHA-CDR-5",
                                                                     "ALPHA-CDR-3"]
    assert _ids(client_a.get(SESSIONS, {"last": "2020-01-01"})) == ["ALPHA-CDR-4"]


def test_the_furthest_dates_a_date_field_takes_are_a_valid_period(client_a, net):
    page = client_a.get(SESSIONS, {"first": "0001-01-01", "last": "9999-12-31"})
    assert page.status_code == 200
    assert len(_ids(page)) == 5
    rows = _csv(client_a.get(EXPORT, {"first": "0001-01-01", "last": "9999-12-31"}))
    assert len(rows) == 5


def test_each_filter_narrows_the_list(client_a, net):
    def ids(**query):
        page = client_a.get(SESSIONS, query)
        assert page.status_code == 200, page.context["form"].errors
        return sorted(_ids(page))

    ams = net["ams"]
    assert ids(location=ams.station.location_id) == ["ALPHA-CDR-1", "ALPHA-CDR-3",
                                                     "ALPHA-CDR-4"]
    assert ids(station=net["nyc"].station_id) == ["-ALPHA-CDR-2", "ALPHA-CDR-5"]
    assert ids(evse=net["nyc"].pk) == ["-ALPHA-CDR-2", "ALPHA-CDR-5"]
    assert ids(location=ams.station.location_id, station=ams.station_id, evse=ams.pk) == [
        "ALPHA-CDR-1", "ALPHA-CDR-3", "ALPHA-CDR-4"]
    assert ids(customer="alpha-c2") == ["-ALPHA-CDR-2"]  # the number, any case
    assert ids(customer="jansen") == ["ALPHA-CDR-1", "ALPHA-CDR-3", "ALPHA-CDR-4"]
    assert ids(token="alphatoken2") == ["-ALPHA-CDR-2"]
    assert ids(token="C00000001") == ["ALPHA-CDR-1", "ALPHA-CDR-3"]
    assert ids(q="cdr-3") == ["ALPHA-CDR-3"]
    assert ids(status="rating_failed") == ["ALPHA-CDR-4"]
    assert ids(status="settled") == ["ALPHA-CDR-3"]
    assert ids(priced="yes") == ["-ALPHA-CDR-2", "ALPHA-CDR-1", "ALPHA-CDR-3"]
    assert ids(priced="no") == ["ALPHA-CDR-4", "ALPHA-CDR-5"]
    assert ids(cdr_import=net["job"].pk) == ["ALPHA-CDR-5"]
    assert ids(customer="bravo") == [] and ids(token="BRAVOTOKEN1") == []
    assert ids(q="BRAVO") == []


def test_an_import_jobs_sessions_say_which_job_made_them(client_a, net):
    page = client_a.get(SESSIONS, {"cdr_import": net["job"].pk})
    html = page.content.decode()
    assert f"import job #{net['job'].pk} (alpha-october.csv)" in html


HOSTILE = [
    ({"first": "2026-13-01"}, "first"),
    ({"first": "0000-00-00"}, "first"),
    ({"first": "2026-10-05", "last": "2026-10-01"}, "last"),
    ({"location": "abc"}, "location"),
    ({"station": "1 OR 1=1"}, "station"),
    ({"evse": "99999999999999999999999"}, "evse"),
    ({"location": str(2**63)}, "location"),
    ({"cdr_import": "-1"}, "cdr_import"),
    ({"customer": "x" * 65}, "customer"),
    ({"q": "ALPHA\x00"}, "q"),
    ({"token": "\x00"}, "token"),
    ({"status": "deleted"}, "status"),
    ({"priced": "maybe"}, "priced"),
    ({"location": "\x00"}, "location"),
    ({"first": "2026-10-01\x00"}, "first"),
    ({"first": "10000-01-01"}, "first"),
]


@pytest.mark.parametrize(("query", "field"), HOSTILE)
def test_malformed_filters_answer_400_with_the_error_and_no_rows(client_a, net, query, field):
    page = client_a.get(SESSIONS, query)
    assert page.status_code == 400
    assert page.context["form"].errors[field]
    assert list(page.context["page_obj"].object_list) == []
    assert "Please correct the filters" in page.content.decode()


@pytest.mark.parametrize("field", ["location", "station", "evse", "cdr_import"])
def test_another_operators_row_as_a_filter_is_an_error_not_its_sessions(client_a, net, field):
    value = {"location": net["b_evse"].station.location_id,
             "station": net["b_evse"].station_id, "evse": net["b_evse"].pk,
             "cdr_import": net["b_job"].pk}[field]
    page = client_a.get(SESSIONS, {field: value})
    assert page.status_code == 400
    assert page.context["form"].errors[field]
    html = page.content.decode().lower()
    assert "bravo" not in html
    assert list(page.context["page_obj"].object_list) == []


def test_a_station_at_another_location_than_the_chosen_one_is_an_error(client_a, net):
    page = client_a.get(SESSIONS, {"location": net["ams"].station.location_id,
                                   "station": net["nyc"].station_id})
    assert page.status_code == 400 and page.context["form"].errors["station"]
    page = client_a.get(SESSIONS, {"station": net["ams"].station_id, "evse": net["nyc"].pk})
    assert page.status_code == 400 and page.context["form"].errors["evse"]


def test_the_list_reads_a_fixed_number_of_queries_however_many_sessions(client_a, net):
    with CaptureQueriesContext(connection) as small:
        assert client_a.get(SESSIONS).status_code == 200
    made = [SessionFactory(evse=net["nyc"] if n % 2 else net["ams"],
                           start=_at(10, 0) + timedelta(hours=n)) for n in range(30)]
    sessions_rate(session_ids=[s.pk for s in made])
    with CaptureQueriesContext(connection) as large:
        page = client_a.get(SESSIONS)
    assert len(page.context["page_obj"].object_list) == 35
    assert len(large.captured_queries) == len(small.captured_queries), [
        q["sql"][:150] for q in large.captured_queries]


def test_pages_keep_the_filters(client_a, net, monkeypatch):
    monkeypatch.setattr("portal.pages.sessions.PAGE_SIZE", 1)
    page = client_a.get(SESSIONS, {"location": net["ams"].station.location_id})
    html = page.content.decode()
    assert f"location={net['ams'].station.location_id}&amp;page=2" in html
    second = client_a.get(SESSIONS, {"location": net["ams"].station.location_id, "page": 2})
    assert _ids(second) == ["ALPHA-CDR-1"]
    assert client_a.get(SESSIONS, {"page": "zzz"}).status_code == 200
    assert client_a.get(SESSIONS, {"page": str(10**30)}).status_code == 200


def test_the_export_link_carries_the_filters(client_a, net):
    html = client_a.get(SESSIONS, {"status": "rated", "page": 1}).content.decode()
    assert f'href="{EXPORT}?status=rated"' in html


def test_a_large_network_offers_stations_of_the_chosen_location_only(client_a, net,
                                                                     monkeypatch):
    monkeypatch.setattr("portal.session_selectors.CHOICES_MAX", 1)
    form = client_a.get(SESSIONS).context["form"]
    assert list(form.fields["station"].widget.choices)[1:] == []
    assert "Choose a location" in str(form.fields["station"].help_text)
    form = client_a.get(SESSIONS, {"location": net["ams"].station.location_id}).context["form"]
    assert [label for _v, label in form.fields["station"].widget.choices][1:] == ["ALPHA-CS-1"]
    # a station chosen from a link stays offered
    form = client_a.get(SESSIONS, {"station": net["nyc"].station_id}).context["form"]
    assert "ALPHA-CS-2" in [label for _v, label in form.fields["station"].widget.choices]


# --- one session ---------------------------------------------------------------------------

def test_a_session_shows_its_price_per_dimension_and_the_tariff_version_that_applied(
        client_a, net):
    page = client_a.get(_detail(net["night"]))
    assert page.status_code == 200
    html = page.content.decode()
    version = net["version"]
    assert f"ALPHA-STD v{version.number}" in html
    assert "Network (macro)" in html and "for every customer" in html
    dims = {row.label: row for row in page.context["dimensions"]}
    assert (dims["Energy"].volume, dims["Energy"].billed) == ("10 kWh", "10 kWh")
    assert (dims["Energy"].excl_vat, dims["Energy"].vat, dims["Energy"].incl_vat) == (
        "3.00", "0.63", "3.63")
    assert dims["Start fee"].excl_vat == "0.00"
    [line] = page.context["lines"]
    assert (line.label, line.element, line.unit_price, line.vat_rate) == ("Energy", "1", "0.3",
                                                                          "21")
    assert "EUR 3.63" in html
    assert "2026-10-02 01:30:00 CEST" in html  # local start
    assert "Europe/Amsterdam" in html
    assert "Not settled yet" in html
    assert "bravo" not in html.lower()


def test_a_settled_session_shows_the_coupon_and_the_amount_due(client_a, net):
    page = client_a.get(_detail(net["settled"]))
    html = page.content.decode()
    settlement = page.context["settlement"]
    assert settlement.discount_total == D("2.00") and settlement.amount_due == D("1.63")
    assert "alpha welcome" in html and "EUR 1.63" in html


def test_a_failed_or_unrated_session_says_so(client_a, net):
    html = client_a.get(_detail(net["failed"])).content.decode()
    assert "Rating failed:" in html and "No tariff applies" in html
    html = client_a.get(_detail(net["unrated"])).content.decode()
    assert "Not rated yet." in html
    assert f"import job #{net['job'].pk}" in html


def test_a_rerated_session_lists_its_price_history(client_a, net):
    from tariffs.services import sessions_rerate

    sessions_rerate(session_ids=[net["night"].pk], reason="test")
    page = client_a.get(_detail(net["night"]))
    assert len(page.context["history"]) == 2
    assert "Price history" in page.content.decode()
    assert page.context["current"].is_current


def test_a_session_page_reads_a_fixed_number_of_queries(client_a, net):
    with CaptureQueriesContext(connection) as queries:
        assert client_a.get(_detail(net["settled"])).status_code == 200
    assert len(queries.captured_queries) <= 12, [q["sql"][:120] for q in
                                                 queries.captured_queries]


def test_another_operators_session_is_not_found(client_a, net):
    assert client_a.get(_detail(net["b_session"])).status_code == 404
    assert client_a.get(reverse("portal:session", kwargs={"pk": 2**62})).status_code == 404
    assert client_a.get("/portal/sessions/abc/").status_code == 404
    assert client_a.post(_detail(net["night"])).status_code == 405


def test_the_other_operator_sees_its_own_sessions_only(client, net):
    client.force_login(MembershipFactory(operator=net["b"], role="viewer").user)
    page = client.get(SESSIONS)
    assert _ids(page) == ["BRAVO-CDR-1"]
    assert "alpha" not in page.content.decode().lower()
    assert client.get(_detail(net["night"])).status_code == 404
    assert client.get(_detail(net["b_session"])).status_code == 200


def test_a_stranger_is_sent_to_log_in(client, net):
    for url in (SESSIONS, EXPORT, _detail(net["night"])):
        response = client.get(url)
        assert response.status_code == 302 and reverse("portal:login") in response.url


# --- the export ----------------------------------------------------------------------------

def test_the_export_streams_the_filtered_sessions_with_exact_decimals(client_a, net):
    response = client_a.get(EXPORT, {"priced": "yes"})
    assert response.status_code == 200
    assert 'filename="sessions-alpha-' in response["Content-Disposition"]
    rows = {row["cdr_id"]: row for row in _csv(response)}
    assert set(rows) == {"ALPHA-CDR-1", "'-ALPHA-CDR-2", "ALPHA-CDR-3"}
    night = rows["ALPHA-CDR-1"]
    assert night["start_local"] == "2026-10-02T01:30:00+02:00"
    assert night["start_utc"] == "2026-10-01T23:30:00Z"
    assert night["time_zone"] == "Europe/Amsterdam"
    assert night["energy_kwh"] == "10.0000"
    assert night["charging_minutes"] == "50.00" and night["parking_minutes"] == "10.00"
    assert (night["price_excl_vat"], night["vat"], night["price_incl_vat"]) == ("3.00", "0.63",
                                                                                "3.63")
    assert night["currency"] == "EUR" and night["tariff"] == "ALPHA-STD"
    assert night["tariff_version"] == str(net["version"].number)
    assert night["customer_reference"] == "ALPHA-C1" and night["token_uid"] == "ALPHATOKEN1"
    evening = rows["'-ALPHA-CDR-2"]
    assert evening["start_local"] == "2026-10-01T22:00:00-04:00"
    assert evening["energy_kwh"] == "7.5000"


def test_the_export_makes_formula_cells_plain_text(client_a, net):
    rows = _csv(client_a.get(EXPORT, {"customer": "ALPHA-C2"}))
    [row] = rows
    assert row["customer_name"] == "'=HYPERLINK(\"http://evil.example\")"
    assert row["cdr_id"] == "'-ALPHA-CDR-2"
    assert not any(value.startswith(("=", "+", "-", "@")) for value in row.values())


def test_the_export_of_unpriced_sessions_leaves_the_price_empty(client_a, net):
    rows = {row["cdr_id"]: row for row in _csv(client_a.get(EXPORT, {"priced": "no"}))}
    assert set(rows) == {"ALPHA-CDR-4", "ALPHA-CDR-5"}
    assert rows["ALPHA-CDR-5"]["price_incl_vat"] == "" and rows["ALPHA-CDR-5"]["tariff"] == ""
    assert rows["ALPHA-CDR-5"]["import_job"] == str(net["job"].pk)
    assert rows["ALPHA-CDR-5"]["customer_name"] == ""


def test_the_export_holds_every_matching_session_not_one_page(client_a, net, monkeypatch):
    monkeypatch.setattr("portal.pages.sessions.PAGE_SIZE", 1)
    assert len(_csv(client_a.get(EXPORT))) == 5


def test_the_export_never_holds_another_operators_sessions(client_a, net):
    rows = _csv(client_a.get(EXPORT))
    assert len(rows) == 5
    assert not any("BRAVO" in value.upper() for row in rows for value in row.values())


@pytest.mark.parametrize(("query", "field"), [
    ({"first": "yesterday"}, "first"),
    ({"station": "x"}, "station"),
    ({"q": "\x00"}, "q"),
])
def test_an_export_with_malformed_filters_is_refused(client_a, net, query, field):
    response = client_a.get(EXPORT, query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert response.context["form"].errors[field]


def test_an_export_naming_another_operators_rows_is_refused(client_a, net):
    response = client_a.get(EXPORT, {"evse": net["b_evse"].pk})
    assert response.status_code == 400
    assert "bravo" not in response.content.decode().lower()
    response = client_a.get(EXPORT, {"cdr_import": net["b_job"].pk})
    assert response.status_code == 400


def test_an_export_over_the_cap_asks_for_narrower_filters(client_a, net, monkeypatch):
    monkeypatch.setattr("portal.pages.sessions.EXPORT_MAX_ROWS", 4)
    response = client_a.get(EXPORT)
    assert response.status_code == 400
    assert "5 sessions match" in response.content.decode()
    assert client_a.get(EXPORT, {"status": "rated"}).status_code == 200


def test_the_export_reads_a_fixed_number_of_queries_however_many_sessions(client_a, net):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert len(_csv(client_a.get(EXPORT))) >= 5
        return len(queries.captured_queries)

    before = count()
    made = [SessionFactory(evse=net["ams"], start=_at(12, 0) + timedelta(hours=n))
            for n in range(20)]
    sessions_rate(session_ids=[s.pk for s in made])
    assert count() == before


# --- the breakdown's rows (pure) -------------------------------------------------------------

def test_a_retail_plans_price_is_shown_by_its_lines_without_tariff_dimensions():
    from portal.session_selectors import price_dimensions, price_lines

    breakdown = {
        "currency": "EUR", "total_cost": {"excl_vat": "5.50", "incl_vat": "6.66"},
        "lines": [{"dimension": "ENERGY", "label": "Energy at cost + 10 %", "quantity": "10",
                   "unit": "kWh", "price": "0.55", "vat": "21",
                   "cost": {"excl_vat": "5.50", "incl_vat": "6.66"}}],
        "retail": {"plan_id": 1, "plan": "Roaming plus", "plan_code": "ROAM"},
    }
    assert price_dimensions(breakdown) == []
    [line] = price_lines(breakdown)
    assert (line.label, line.element, line.quantity, line.unit_price, line.incl_vat) == (
        "Energy at cost + 10 %", "—", "10 kWh", "0.55", "6.66")


def test_an_index_priced_line_names_the_index_interval_that_priced_it():
    from portal.session_selectors import price_lines

    breakdown = {"dimensions": {}, "lines": [{
        "dimension": "ENERGY", "element_index": 1, "price": "0.2875", "vat": None,
        "quantity": "4.2", "billed_quantity": "4.2",
        "index": {"index": "EPEX-NL", "start": "2026-10-01T10:00:00Z"},
        "cost": {"excl_vat": "1.21", "incl_vat": "1.21"}}]}
    [line] = price_lines(breakdown)
    assert line.element == "2" and line.vat_rate == "—"
    assert line.unit_price == "0.2875 (EPEX-NL 2026-10-01T10:00:00Z)"
