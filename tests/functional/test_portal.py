"""The CPO manager portal (/portal/): log-in with lock-out, log-out, password change, the operator
switch and the dashboard's figures."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.selectors import last_month
from tests.factories import MembershipFactory, OperatorFactory, SessionFactory, UserFactory

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


def test_an_operators_user_never_sees_another_operators_figures(client, network):
    client.force_login(network["manager"])
    figures, html = _figures(client)
    assert figures["totals"]["sessions"] == 3
    assert "Bravo" not in html and "Operator Alpha" in html
    b = network["b"]
    response = client.post(reverse("portal:operator_switch"), {"operator": b.pk})
    assert response.status_code == 302
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
