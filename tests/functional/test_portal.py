"""The CPO manager portal (/portal/): log-in with lock-out, log-out, password change, the operator
switch and the dashboard's figures."""

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.selectors import Period, SessionLocalDay, _sqlite_local_date, last_month
from tests.factories import MembershipFactory, OperatorFactory, SessionFactory, UserFactory

from .dashboard_helpers import AMSTERDAM, NEW_YORK, sessions_at, zoned_evses, zoned_operator
from .portal_helpers import add_sessions, current_prices, priced_operator

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("portal:dashboard")
LOGIN = reverse("portal:login")
OCTOBER = {"first": "2026-10-01", "last": "2026-10-31"}


@pytest.fixture
def network():
    a, a_evses = priced_operator("Alpha", sessions=3)
    b, b_evses = priced_operator("Bravo", sessions=4, price=Decimal("0.55"),
                                 energy=Decimal("31.2500"))
    manager = MembershipFactory(operator=a, role="manager").user
    return {"a": a, "b": b, "a_evses": a_evses, "b_evses": b_evses, "manager": manager}


def _log_in(client, username, password):
    return client.post(LOGIN, {"username": username, "password": password})


def test_logging_in_through_the_form_opens_the_dashboard(client, network):
    assert client.get(DASHBOARD).url.startswith(LOGIN)
    response = _log_in(client, network["manager"].username, "pw")
    assert response.status_code == 302 and response.url == DASHBOARD
    page = client.get(DASHBOARD)
    assert page.status_code == 200
    assert "Operator Alpha" in page.content.decode()


def test_a_wrong_password_says_so_and_does_not_log_in(client, network):
    page = _log_in(client, network["manager"].username, "wrong")
    assert page.status_code == 200
    assert "Please enter a correct username and password" in page.content.decode()
    assert client.get(DASHBOARD).status_code == 302


def test_five_failed_portal_logins_lock_the_user_out_even_with_the_right_password(client,
                                                                                   network):
    user = network["manager"]
    for _ in range(4):
        assert _log_in(client, user.username, "wrong").status_code == 200
    locked = _log_in(client, user.username, "wrong")
    assert locked.status_code == 429
    assert "Account locked" in locked.content.decode()
    again = _log_in(client, user.username, "pw")
    assert again.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get(DASHBOARD).status_code == 302
    # another user from the same address is not locked out
    other = MembershipFactory(operator=network["a"], role="viewer").user
    assert _log_in(client, other.username, "pw").status_code == 302


def test_failures_at_the_admin_log_in_count_for_the_portal_too(client, network):
    user = network["manager"]
    for _ in range(3):
        client.post(reverse("admin:login"), {"username": user.username, "password": "wrong"})
    assert _log_in(client, user.username, "wrong").status_code == 200
    assert _log_in(client, user.username, "wrong").status_code == 429
    assert _log_in(client, user.username, "pw").status_code == 429


def test_logging_out_ends_the_session(client, network):
    client.force_login(network["manager"])
    assert client.get(DASHBOARD).status_code == 200
    response = client.post(reverse("portal:logout"))
    assert response.status_code == 302 and response.url == LOGIN
    assert client.get(DASHBOARD).status_code == 302


def test_changing_the_password(client, network):
    user = network["manager"]
    client.force_login(user)
    assert client.get(reverse("portal:password_change")).status_code == 200
    refused = client.post(reverse("portal:password_change"), {
        "old_password": "wrong", "new_password1": "Charge-Point-77",
        "new_password2": "Charge-Point-77"})
    assert refused.status_code == 200 and "errors" in refused.content.decode()
    response = client.post(reverse("portal:password_change"), {
        "old_password": "pw", "new_password1": "Charge-Point-77",
        "new_password2": "Charge-Point-77"})
    assert response.status_code == 302
    assert response.url == reverse("portal:password_change_done")
    client.post(reverse("portal:logout"))
    assert _log_in(client, user.username, "pw").status_code == 200
    assert _log_in(client, user.username, "Charge-Point-77").status_code == 302


def _figures(client, **params):
    response = client.get(DASHBOARD, params or OCTOBER)
    assert response.status_code == 200, response.content.decode()
    return response.context["figures"], response.content.decode()


def test_the_dashboard_figures_are_the_sums_of_the_sessions_prices(client, network):
    a = network["a"]
    client.force_login(network["manager"])
    figures, html = _figures(client)
    prices = current_prices(a).aggregate(incl=Sum("total_incl_vat"),
                                         excl=Sum("total_excl_vat"),
                                         kwh=Sum("session__energy_kwh"))
    totals = figures["totals"]
    assert totals["sessions"] == 3
    assert totals["kwh"] == prices["kwh"] == Decimal("61.5")
    assert totals["revenue_incl_vat"] == prices["incl"] == Decimal("22.32")  # 3 × 7.44
    assert totals["revenue_excl_vat"] == prices["excl"] == Decimal("18.45")  # 3 × 6.15
    assert totals["price_per_kwh"] == Decimal("0.3629")  # 22.32 / 61.5
    assert figures["currency"] == "EUR"
    assert 'data-figure="revenue-incl">EUR 22.32<' in html
    assert 'data-figure="sessions">3<' in html
    days = figures["days"]
    assert len(days) == 31
    assert [d["sessions"] for d in days[:4]] == [1, 1, 1, 0]
    assert sum(d["revenue_incl_vat"] for d in days) == prices["incl"]
    assert {row["location"]: row["sessions"] for row in figures["locations"]} == {
        "Alpha location 1": 2, "Alpha location 2": 1}
    stations = figures["stations"]
    assert [(s["station"], s["revenue_incl_vat"]) for s in stations] == [
        ("Alpha-CP-1", Decimal("14.88")), ("Alpha-CP-2", Decimal("7.44"))]
    assert 'id="daily-chart"' in html and 'id="daily-data"' in html


def test_a_period_excludes_sessions_outside_it_and_unpriced_sessions_have_no_revenue(client,
                                                                                      network):
    client.force_login(network["manager"])
    SessionFactory(evse=network["a_evses"][0], energy_kwh=Decimal("5"),
                   start=datetime(2026, 10, 2, 20, tzinfo=UTC),
                   end=datetime(2026, 10, 2, 21, tzinfo=UTC))
    figures, html = _figures(client, first="2026-10-02", last="2026-10-02")
    totals = figures["totals"]
    assert totals["sessions"] == 2 and totals["unpriced"] == 1
    assert totals["kwh"] == Decimal("25.5") and totals["revenue_incl_vat"] == Decimal("7.44")
    assert totals["price_per_kwh"] == Decimal("0.3629")  # priced energy only
    assert "1 session is not priced yet" in html


@pytest.mark.parametrize(("params", "message"), [
    ({"first": "2026-10-31", "last": "2026-10-01"},
     "The end date must not be before the start date."),
    ({"first": "yesterday", "last": "2026-10-01"}, "Enter a valid date."),
    ({"first": "2024-01-01", "last": "2026-10-01"}, "Choose a period of at most 366 days."),
    ({"first": "2026-10-01"}, "This field is required."),
])
def test_a_bad_period_gives_a_clear_error(client, network, params, message):
    client.force_login(network["manager"])
    response = client.get(DASHBOARD, params)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and 'role="alert"' in html
    assert response.context["figures"] is None


def test_the_default_period_is_last_month(client, network):
    assert last_month(date(2026, 3, 15)).first == date(2026, 2, 1)
    assert last_month(date(2026, 3, 15)).last == date(2026, 2, 28)
    assert last_month(date(2026, 1, 1)).first == date(2025, 12, 1)
    client.force_login(network["manager"])
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    period = response.context["period"]
    assert period.first.day == 1 and period.last.month != date.today().month


@pytest.mark.parametrize(("zone", "month"), [("Europe/Amsterdam", 11), ("America/New_York", 10)])
def test_the_default_month_is_last_month_in_the_operators_time_zone(client, network,
                                                                      monkeypatch, zone,
                                                                      month):
    """At 23:30 UTC on 30 November it is already 1 December in Amsterdam (last month:
    November) but still 30 November in New York (last month: October)."""
    from django.utils import timezone as django_timezone

    from invoicing.models import InvoicingSettings

    InvoicingSettings.objects.create(operator=network["a"], time_zone=zone)
    instant = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    monkeypatch.setattr(django_timezone, "now", lambda: instant)
    client.force_login(network["manager"])
    period = client.get(DASHBOARD).context["period"]
    assert (period.first, period.last.month) == (date(2026, month, 1), month)


def test_an_operators_user_never_sees_another_operators_figures(client, network):
    client.force_login(network["manager"])
    figures, html = _figures(client)
    assert figures["totals"]["sessions"] == 3
    assert "Bravo" not in html and "Operator Alpha" in html
    b = network["b"]
    response = client.post(reverse("portal:operator_switch"), {"operator": b.pk})
    assert response.status_code == 404
    figures, html = _figures(client)
    assert figures["totals"]["sessions"] == 3 and "Bravo" not in html
    session = client.session
    session["portal_operator_id"] = b.pk  # a forged session value is not trusted either
    session.save()
    figures, html = _figures(client)
    assert figures["totals"]["sessions"] == 3 and "Bravo" not in html


def test_a_user_with_several_operators_switches_between_them(client, network):
    a, b = network["a"], network["b"]
    user = network["manager"]
    MembershipFactory(user=user, operator=b, role="viewer")
    client.force_login(user)
    figures, html = _figures(client)
    assert figures["totals"]["sessions"] == 3
    assert 'id="operator-switch"' in html and "Operator Bravo" in html
    response = client.post(reverse("portal:operator_switch"), {
        "operator": b.pk, "next": DASHBOARD + "?first=2026-10-01&last=2026-10-31"})
    assert response.status_code == 302 and response.url.endswith("last=2026-10-31")
    figures, _ = _figures(client)
    assert figures["totals"]["sessions"] == 4
    assert figures["totals"]["revenue_incl_vat"] == current_prices(b).aggregate(
        s=Sum("total_incl_vat"))["s"]
    outsider = OperatorFactory(name="Operator Charlie")
    assert client.post(reverse("portal:operator_switch"),
                       {"operator": outsider.pk}).status_code == 404
    figures, _ = _figures(client)
    assert figures["totals"]["sessions"] == 4  # still Bravo
    assert client.post(reverse("portal:operator_switch"), {"operator": a.pk,
                       "next": "https://evil.example/"}).url == DASHBOARD


def test_a_superuser_sees_every_operator(client, network):
    admin = UserFactory(is_superuser=True)
    client.force_login(admin)
    html = client.get(DASHBOARD, OCTOBER).content.decode()
    assert "Operator Alpha" in html and "Operator Bravo" in html
    client.post(reverse("portal:operator_switch"), {"operator": network["b"].pk})
    figures, _ = _figures(client)
    assert figures["totals"]["sessions"] == 4


def test_a_user_without_an_operator_is_told_so(client, db):
    client.force_login(UserFactory())
    response = client.get(DASHBOARD)
    assert response.status_code == 403
    assert "not a member of any operator" in response.content.decode()


def test_the_number_of_queries_does_not_grow_with_the_sessions(client, network):
    client.force_login(network["manager"])
    client.get(DASHBOARD, OCTOBER)  # the session and the user are warm from here on

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(DASHBOARD, OCTOBER).status_code == 200
        return len(queries)

    few = count()
    add_sessions(network["a"], network["a_evses"], 25, first_day=3)
    assert current_prices(network["a"]).count() == 28
    assert count() == few
    assert few <= 12


def test_htmx_asks_for_the_dashboard_body_only(client, network):
    client.force_login(network["manager"])
    response = client.get(DASHBOARD, OCTOBER, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="daily-chart"' in html


def test_the_portal_speaks_dutch(client, network):
    client.force_login(network["manager"])
    response = client.post(reverse("portal:set_language"),
                           {"language": "nl", "next": DASHBOARD})
    assert response.status_code == 302
    html = client.get(DASHBOARD, OCTOBER).content.decode()
    assert 'lang="nl"' in html
    assert "Gemiddelde prijs per kWh" in html and "Uitloggen" in html
    bad = client.get(DASHBOARD, {"first": "2026-10-31", "last": "2026-10-01"})
    assert "De einddatum mag niet voor de begindatum liggen." in bad.content.decode()


def test_pages_carry_labels_a_skip_link_and_no_external_scripts(client, network):
    client.force_login(network["manager"])
    html = client.get(DASHBOARD, OCTOBER).content.decode()
    assert 'class="skip-link" href="#main"' in html
    assert '<label for="id_first">' in html and '<label for="id_last">' in html
    assert '<label for="language-switch">' in html
    assert "/static/vendor/htmx.min.js" in html and "/static/vendor/chart.umd.min.js" in html
    assert "https://" not in html and "http://" not in html


# --- local days: each session counts on the day of its start in its location's time zone ------
# Until December 2026 the dashboard counted whole days in UTC; the tests below fail on that rule.

def _dashboard(client, first, last):
    response = client.get(DASHBOARD, {"first": first, "last": last})
    assert response.status_code == 200, response.content.decode()
    return response.context["figures"]


def _by_day(figures):
    return {row["day"].isoformat(): (row["sessions"], row["kwh"], row["revenue_incl_vat"])
            for row in figures["days"]}


@pytest.fixture
def two_zones():
    operator, manager, evses = zoned_operator("Alpha")
    amsterdam = sessions_at(evses[AMSTERDAM],
                            "2026-09-30T22:30",  # 1 Oct 00:30 CEST (UTC: 30 September)
                            "2026-10-15T12:00",  # 15 Oct 14:00 CEST (the same day either way)
                            "2026-10-31T23:30")  # 1 Nov 00:30 CET (UTC: 31 October)
    new_york = sessions_at(evses[NEW_YORK],
                           "2026-10-01T02:00",  # 30 Sep 22:00 EDT (UTC: 1 October)
                           "2026-11-01T03:30",  # 31 Oct 23:30 EDT (UTC: 1 November)
                           energy=Decimal("20.0000"))
    return {"operator": operator, "manager": manager, "amsterdam": amsterdam,
            "new_york": new_york}


def test_sessions_around_midnight_count_on_their_locations_local_day(client, two_zones):
    """Amsterdam (UTC+1/+2) and New York (UTC−4) sessions near midnight: the UTC rule put each
    of them on the other side of a month's end."""
    client.force_login(two_zones["manager"])
    october = _dashboard(client, "2026-10-01", "2026-10-31")
    totals = october["totals"]
    # Amsterdam 30 Sep 22:30 UTC and 15 Oct, New York 1 Nov 03:30 UTC
    assert totals["sessions"] == 3
    assert totals["kwh"] == Decimal("40")
    assert totals["revenue_incl_vat"] == Decimal("14.52")  # 3.63 + 3.63 + 7.26, exact
    assert totals["revenue_excl_vat"] == Decimal("12.00")
    assert totals["price_per_kwh"] == Decimal("0.3630")
    days = _by_day(october)
    assert days["2026-10-01"] == (1, Decimal("10"), Decimal("3.63"))  # UTC: New York's 20 kWh
    assert days["2026-10-31"] == (1, Decimal("20"), Decimal("7.26"))  # UTC: Amsterdam's 10 kWh
    assert days["2026-10-15"][0] == 1
    assert sum(n for n, _, _ in days.values()) == 3
    assert {row["location"]: row["sessions"] for row in october["locations"]} == {
        "Alpha Europe/Amsterdam": 2, "Alpha America/New_York": 1}
    last_day = _dashboard(client, "2026-10-31", "2026-10-31")["totals"]
    assert (last_day["sessions"], last_day["kwh"]) == (1, Decimal("20"))  # New York's only
    september = _dashboard(client, "2026-09-30", "2026-09-30")
    assert (september["totals"]["sessions"], september["totals"]["kwh"]) == (1, Decimal("20"))
    november = _dashboard(client, "2026-11-01", "2026-11-01")
    assert (november["totals"]["sessions"], november["totals"]["kwh"]) == (1, Decimal("10"))
    assert november["stations"][0]["station"] == "Alpha-CP-1"  # Amsterdam's


def test_a_location_of_the_earliest_and_of_the_latest_time_zone_is_counted(client, db):
    """UTC+14 and UTC−12: a local day begins 14 hours before its UTC midnight and ends 12 hours
    after the next one; the prefilter on the start must keep both."""
    _, manager, evses = zoned_operator("Alpha", ("Pacific/Kiritimati", "Etc/GMT+12"))
    sessions_at(evses["Pacific/Kiritimati"],
                "2026-09-30T09:59",  # 30 Sep 23:59 local
                "2026-09-30T10:00",  # 1 Oct 00:00 local
                "2026-10-31T09:59",  # 31 Oct 23:59 local
                "2026-10-31T10:00")  # 1 Nov 00:00 local
    sessions_at(evses["Etc/GMT+12"],
                "2026-10-01T11:59",  # 30 Sep 23:59 local
                "2026-10-01T12:00",  # 1 Oct 00:00 local
                "2026-11-01T11:59",  # 31 Oct 23:59 local
                "2026-11-01T12:00",  # 1 Nov 00:00 local
                energy=Decimal("20.0000"))
    client.force_login(manager)
    october = _dashboard(client, "2026-10-01", "2026-10-31")
    assert october["totals"]["sessions"] == 4
    assert october["totals"]["kwh"] == Decimal("60")
    days = _by_day(october)
    assert days["2026-10-01"][:2] == (2, Decimal("30"))
    assert days["2026-10-31"][:2] == (2, Decimal("30"))


def test_daylight_saving_days_in_europe_have_23_and_25_hours(client, db):
    _, manager, evses = zoned_operator("Alpha", (AMSTERDAM,))
    sessions_at(evses[AMSTERDAM],
                "2026-03-28T22:30",  # 28 Mar 23:30 CET
                "2026-03-28T23:30",  # 29 Mar 00:30 CET
                "2026-03-29T21:30",  # 29 Mar 23:30 CEST: the day had 23 hours
                "2026-03-29T22:30",  # 30 Mar 00:30 CEST
                "2026-10-24T21:30",  # 24 Oct 23:30 CEST
                "2026-10-24T22:30",  # 25 Oct 00:30 CEST
                "2026-10-25T00:30",  # 25 Oct 02:30 CEST
                "2026-10-25T01:30",  # 25 Oct 02:30 CET, the same hour again
                "2026-10-25T22:30",  # 25 Oct 23:30 CET: the day had 25 hours
                "2026-10-25T23:30")  # 26 Oct 00:30 CET
    client.force_login(manager)
    march = _by_day(_dashboard(client, "2026-03-28", "2026-03-30"))
    assert {day: row[0] for day, row in march.items()} == {
        "2026-03-28": 1, "2026-03-29": 2, "2026-03-30": 1}  # UTC: 2, 2, 0
    assert march["2026-03-29"][2] == Decimal("7.26")
    assert _dashboard(client, "2026-03-29", "2026-03-29")["totals"]["sessions"] == 2
    october = _by_day(_dashboard(client, "2026-10-24", "2026-10-26"))
    assert {day: row[0] for day, row in october.items()} == {
        "2026-10-24": 1, "2026-10-25": 4, "2026-10-26": 1}  # UTC: 2, 4, 0
    one_day = _dashboard(client, "2026-10-25", "2026-10-25")["totals"]
    assert (one_day["sessions"], one_day["kwh"], one_day["revenue_incl_vat"]) == (
        4, Decimal("40"), Decimal("14.52"))


def test_many_time_zones_take_the_same_four_aggregate_queries(client, db):
    zones = (AMSTERDAM, NEW_YORK, "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles",
             "Asia/Kolkata", "Pacific/Chatham")
    operator, manager, evses = zoned_operator("Alpha", zones[:1])
    sessions_at(evses[AMSTERDAM], "2026-10-10T12:00")
    client.force_login(manager)
    client.get(DASHBOARD, OCTOBER)  # the session and the user are warm from here on

    def count():
        with CaptureQueriesContext(connection) as queries:
            figures = _dashboard(client, "2026-10-01", "2026-10-31")
        sessions_queries = [q["sql"] for q in queries.captured_queries
                            if 'FROM "emobility_chargingsession"' in q["sql"]]
        return len(queries), sessions_queries, figures

    few, sessions_queries, figures = count()
    assert figures["totals"]["sessions"] == 1
    assert len(sessions_queries) == 4
    for evse in zoned_evses(operator, "Alpha", zones[1:], first=2).values():
        sessions_at(evse, *[f"2026-10-{day:02d}T23:30" for day in range(1, 31)])
    many, sessions_queries, figures = count()
    assert figures["totals"]["sessions"] == 1 + 6 * 30
    assert many == few and len(sessions_queries) == 4
    for sql in sessions_queries:  # the indexed start first, then the exact local day
        assert '"emobility_chargingsession"."start" >=' in sql
        assert '"emobility_chargingsession"."start" <' in sql
        assert ("timezone(" if connection.vendor == "postgresql"
                else SessionLocalDay.sqlite_function) in sql


def test_the_prefilter_window_is_the_period_widened_by_fourteen_hours():
    period = Period(date(2026, 10, 1), date(2026, 10, 31))
    assert period.utc_window() == (datetime(2026, 9, 30, 10, tzinfo=UTC),
                                   datetime(2026, 11, 1, 14, tzinfo=UTC))
    assert len(period.days()) == 31
    earliest = Period(date.min, date(1, 1, 2)).utc_window()
    assert earliest[0] == datetime.min.replace(tzinfo=UTC)
    latest = Period(date(9999, 12, 1), date.max).utc_window()
    assert latest[1] == datetime.max.replace(tzinfo=UTC)


def test_the_sqlite_fallback_gives_the_local_day_too():
    """The demo runs on SQLite, which has no time zones: the dashboard registers a function
    on the connection. Checked here on an SQLite database of its own."""
    database = sqlite3.connect(":memory:")
    database.create_function(SessionLocalDay.sqlite_function, 2, _sqlite_local_date(UTC),
                             deterministic=True)
    cases = [("2026-10-31 23:30:00", AMSTERDAM, "2026-11-01"),
             ("2026-11-01 03:30:00", NEW_YORK, "2026-10-31"),
             ("2026-03-29 21:30:00.250000", AMSTERDAM, "2026-03-29"),
             ("2026-10-25 22:30:00", AMSTERDAM, "2026-10-25"),
             ("2026-10-01 11:59:00", "Etc/GMT+12", "2026-09-30"),  # UTC−12, not +12
             ("2026-09-30 10:00:00", "Pacific/Kiritimati", "2026-10-01"),
             ("0001-01-01 00:00:00", NEW_YORK, "0001-01-01"),  # before year 1: its UTC day
             (None, AMSTERDAM, None)]
    for instant, zone, day in cases:
        found = database.execute(f"SELECT {SessionLocalDay.sqlite_function}(?, ?)",
                                 (instant, zone)).fetchone()[0]
        assert found == day, (instant, zone)
    database.close()


@pytest.mark.parametrize("params", [
    {"first": "2026-10-01\x00", "last": "2026-10-31"},
    {"first": "2026-10-01", "last": "\x00"},
    {"first": "99999999-01-01", "last": "2026-10-31"},
    {"first": "2026-10-01", "last": "9" * 5000},
    {"first": "2026-13-01", "last": "2026-10-31"},
    {"first": ["2026-10-01", "2026-10-02"], "last": "<script>alert(1)</script>"},
])
def test_hostile_periods_are_refused_without_an_error(client, two_zones, params):
    client.force_login(two_zones["manager"])
    response = client.get(DASHBOARD, params)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html and "<script>alert(1)" not in html
    assert response.context["figures"] is None


@pytest.mark.parametrize(("first", "last"), [("0001-01-01", "0001-01-31"),
                                             ("9999-12-01", "9999-12-31")])
def test_periods_at_the_ends_of_the_calendar_show_no_sessions(client, two_zones, first, last):
    client.force_login(two_zones["manager"])
    figures = _dashboard(client, first, last)
    assert figures["totals"]["sessions"] == 0 and len(figures["days"]) == 31


def test_another_operators_sessions_in_the_same_time_zones_are_not_counted(client, two_zones):
    _, _, evses = zoned_operator("Bravo")
    sessions_at(evses[AMSTERDAM], "2026-09-30T22:30", "2026-10-15T12:00")
    sessions_at(evses[NEW_YORK], "2026-11-01T03:30")
    client.force_login(two_zones["manager"])
    response = client.get(DASHBOARD, {"first": "2026-10-01", "last": "2026-10-31"})
    figures = response.context["figures"]
    assert figures["totals"]["sessions"] == 3
    assert sum(row["sessions"] for row in figures["days"]) == 3
    assert "bravo" not in response.content.decode().lower()


def test_the_page_says_days_are_local_to_each_location(client, two_zones):
    client.force_login(two_zones["manager"])
    html = client.get(DASHBOARD, OCTOBER).content.decode()
    assert "location&#x27;s time zone" in html or "location's time zone" in html
    assert "UTC" not in html


@pytest.mark.parametrize(("page", "kwargs", "entry"), [
    ("sessions", {}, "Sessions"),
    ("session", {"pk": 1}, "Sessions"),
    ("tariff_builder", {"pk": 1}, "Tariffs"),
    ("wallets", {}, "Coupons and wallets"),
    ("dunning_case", {"pk": 1}, "Dunning"),
    ("statements", {}, "Statements"),
])
def test_the_menu_marks_the_area_of_the_page(page, kwargs, entry):
    from django.urls import resolve

    from portal.context import _nav

    match = resolve(reverse(f"portal:{page}", kwargs=kwargs))
    marked = [str(item["label"]) for item in _nav(match) if item["current"]]
    assert marked == [entry]
