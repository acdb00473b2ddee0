"""The tariff and rating parts of the admin, as finance staff and CPO managers use them."""

import zoneinfo
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from emobility.models import ChargingSession
from tariffs.models import (
    PriceComponent,
    PriceIndex,
    PriceIndexValue,
    RatingRun,
    SessionPrice,
    TariffAssignment,
    TariffVersion,
)
from tariffs.services import sessions_rate
from tests.factories import (
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    SessionFactory,
    TariffFactory,
    TariffVersionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated():
    """Operator A with a rated session (20.5 kWh at 0.30 + 21 % VAT), operator B with one too,
    and a finance user of A."""
    out = {}
    for name in ("a", "b"):
        operator = OperatorFactory(name=f"Operator {name.upper()}")
        evse = EvseFactory(station__location__operator=operator)
        tariff = TariffFactory(operator=operator, code=f"TARIFF-{name.upper()}")
        version = TariffVersionFactory(tariff=tariff, energy_price=Decimal("0.30"))
        TariffAssignment.objects.create(operator=operator, tariff=tariff, level="network",
                                        valid_from=datetime(2020, 1, 1, tzinfo=UTC))
        # a fixed October start (summer time): the factory's sequence moves with the tests run
        # before in the same process
        session = SessionFactory(evse=evse, external_id=f"CDR-{name.upper()}-1",
                                 start=datetime(2026, 10, 10, 8, tzinfo=UTC),
                                 end=datetime(2026, 10, 10, 10, tzinfo=UTC))
        sessions_rate(session_ids=[session.pk])
        out[name] = {"operator": operator, "session": session, "version": version}
    out["user"] = MembershipFactory(operator=out["a"]["operator"], role="finance").user
    return out


def test_a_rated_session_shows_its_price_lines_periods_and_history(client, rated):
    client.force_login(rated["user"])
    session = rated["a"]["session"]
    page = client.get(reverse("admin:emobility_chargingsession_change", args=[session.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "EUR 6.15 excl. VAT" in html and "EUR 1.29 VAT" in html and "EUR 7.44" in html
    assert "TARIFF-A v" in html and "Network (macro) assignment" in html
    assert "20.5 kWh" in html  # the energy line
    assert "From (local)" in html and " CEST<" in html  # periods in local time (October)
    assert "(current)" in html


def test_the_session_list_shows_the_price_incl_vat(client, rated):
    client.force_login(rated["user"])
    html = client.get(reverse("admin:emobility_chargingsession_changelist")).content.decode()
    assert "EUR 7.44" in html
    assert "CDR-B-1" not in html


def test_rerating_in_the_admin_keeps_the_old_price_and_refuses_invoiced_sessions(client, rated):
    client.force_login(rated["user"])
    session = rated["a"]["session"]
    invoiced = SessionFactory(evse=session.evse, external_id="CDR-A-INVOICED")
    sessions_rate(session_ids=[invoiced.pk])
    ChargingSession.objects.filter(pk=invoiced.pk).update(status="invoiced")
    response = client.post(reverse("admin:emobility_chargingsession_changelist"), {
        "action": "rerate_selected", "_selected_action": [session.pk, invoiced.pk]},
        follow=True)
    html = response.content.decode()
    assert "1 rated, 0 failed, 1 left as they were" in html
    assert "CDR-A-INVOICED not re-rated: invoiced" in html
    assert SessionPrice.objects.filter(session=session).count() == 2
    assert SessionPrice.objects.filter(session=session, is_current=True).count() == 1
    assert SessionPrice.objects.filter(session=invoiced).count() == 1
    run = RatingRun.objects.filter(trigger="rerate").get()
    assert run.actor == rated["user"]


def test_the_rerate_action_cannot_touch_another_operators_session(client, rated):
    client.force_login(rated["user"])
    other = rated["b"]["session"]
    client.post(reverse("admin:emobility_chargingsession_changelist"), {
        "action": "rerate_selected", "_selected_action": [other.pk]})
    assert SessionPrice.objects.filter(session=other).count() == 1


def test_a_viewer_cannot_rerate(client, rated):
    viewer = MembershipFactory(operator=rated["a"]["operator"], role="viewer").user
    client.force_login(viewer)
    session = rated["a"]["session"]
    client.post(reverse("admin:emobility_chargingsession_changelist"), {
        "action": "rerate_selected", "_selected_action": [session.pk]})
    assert SessionPrice.objects.filter(session=session).count() == 1


def test_preview_prices_a_sample_session_with_a_version(client, rated):
    client.force_login(rated["user"])
    version = rated["a"]["version"]
    url = reverse("admin:tariffs_tariffversion_preview", args=[version.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"time_zone": "Europe/Amsterdam", "start": "2026-11-20T18:00",
                                 "energy_kwh": "20", "charging_minutes": "90",
                                 "parking_minutes": "30"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "6.00" in html and "7.26" in html  # 20 kWh × 0.30, + 21 % VAT
    assert "Fri 2026-11-20 18:00:00 CET" in html


def test_preview_explains_what_is_wrong_with_the_sample(client, rated):
    client.force_login(rated["user"])
    url = reverse("admin:tariffs_tariffversion_preview", args=[rated["a"]["version"].pk])
    response = client.post(url, {"time_zone": "Europe/Amsterdam", "start": "2026-11-20T18:00",
                                 "energy_kwh": "20", "charging_minutes": "0",
                                 "parking_minutes": "0"})
    assert "Energy was delivered, so the session charged for some time." in \
        response.content.decode()


def test_preview_of_another_operators_version_is_404(client, rated):
    client.force_login(rated["user"])
    url = reverse("admin:tariffs_tariffversion_preview", args=[rated["b"]["version"].pk])
    assert client.get(url).status_code == 404


def test_rating_runs_show_their_progress_and_stay_read_only(client, rated):
    client.force_login(rated["user"])
    html = client.get(reverse("admin:tariffs_ratingrun_changelist")).content.decode()
    assert '<progress max="100" value="100"' in html
    run_b = RatingRun.objects.filter(operator=rated["b"]["operator"]).get()
    assert client.get(reverse("admin:tariffs_ratingrun_change",
                              args=[run_b.pk])).status_code == 404


def test_an_active_version_is_read_only_and_exports_as_ocpi(client, rated):
    client.force_login(MembershipFactory(operator=rated["a"]["operator"], role="manager").user)
    version = rated["a"]["version"]
    assert version.status == TariffVersion.Status.ACTIVE
    response = client.post(reverse("admin:tariffs_tariffversion_changelist"), {
        "action": "export_ocpi", "_selected_action": [version.pk]})
    assert response["Content-Type"] == "application/json"
    assert b'"type": "ENERGY", "price": 0.3, "vat": 21, "step_size": 1' in response.content
    assert version.tariff.code in response["Content-Disposition"]
    change = client.get(reverse("admin:tariffs_tariffversion_change", args=[version.pk]))
    assert b'name="min_price_excl_vat"' not in change.content  # read-only once active


def _builder_post(**overrides):
    data = {"monday": "07:00-11:00, 17:00-21:00", "tuesday": "07:00-11:00, 17:00-21:00",
            "wednesday": "", "thursday": "", "friday": "", "saturday": "10:00-14:00",
            "sunday": "", "peak_energy": "0.69", "offpeak_energy": "0.49", "peak_time": "",
            "offpeak_time": "", "parking": "6.00", "start_fee": "0.50", "vat": "21",
            "time_step": "60"}
    return {**data, **overrides}


def test_the_peak_offpeak_builder_makes_a_draft_that_prices_by_the_schedule(client, rated):
    client.force_login(MembershipFactory(operator=rated["a"]["operator"], role="manager").user)
    tariff = rated["a"]["version"].tariff
    url = reverse("admin:tariffs_tariff_peak_offpeak", args=[tariff.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, _builder_post())
    draft = TariffVersion.objects.filter(tariff=tariff, status="draft").get()
    assert response.status_code == 302 and response["Location"].endswith(
        reverse("admin:tariffs_tariffversion_change", args=[draft.pk]))
    # start fee, Mon+Tue share two windows, Saturday one window, then the off-peak fallback
    assert draft.elements.count() == 1 + 2 + 1 + 1
    preview = reverse("admin:tariffs_tariffversion_preview", args=[draft.pk])
    peak = client.post(preview, {"time_zone": "Europe/Amsterdam", "start": "2026-11-23T08:00",
                                 "energy_kwh": "10", "charging_minutes": "60",
                                 "parking_minutes": "0"}).content.decode()
    assert "7.40" in peak  # Monday 08:00: 0.50 + 10 × 0.69
    offpeak = client.post(preview, {"time_zone": "Europe/Amsterdam",
                                    "start": "2026-11-25T08:00", "energy_kwh": "10",
                                    "charging_minutes": "60", "parking_minutes": "0"})
    assert "5.40" in offpeak.content.decode()  # Wednesday: 0.50 + 10 × 0.49


@pytest.mark.parametrize("field,value,message", [
    ("monday", "07:00-25:00", "is not a time of day"),
    ("monday", "11:00-07:00", "a window ends after it starts"),
    ("monday", "07:00-11:00, 10:00-12:00", "peak windows overlap"),
    ("monday", "7 to 11", "write a window as 07:00-11:00"),
    ("peak_energy", "-1", "greater than or equal to 0"),
])
def test_the_builder_says_what_is_wrong(client, rated, field, value, message):
    client.force_login(MembershipFactory(operator=rated["a"]["operator"], role="manager").user)
    tariff = rated["a"]["version"].tariff
    response = client.post(reverse("admin:tariffs_tariff_peak_offpeak", args=[tariff.pk]),
                           _builder_post(**{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not TariffVersion.objects.filter(tariff=tariff, status="draft").exists()


def test_the_builder_of_another_operators_tariff_is_404(client, rated):
    client.force_login(MembershipFactory(operator=rated["a"]["operator"], role="manager").user)
    tariff = rated["b"]["version"].tariff
    assert client.get(reverse("admin:tariffs_tariff_peak_offpeak",
                              args=[tariff.pk])).status_code == 404


def test_an_indexed_version_exports_as_todays_tariff_or_says_why_not(client, rated):
    operator = rated["a"]["operator"]
    version = rated["a"]["version"]
    index = PriceIndex.objects.create(operator=operator, code="nl-da", name="NL day-ahead")
    PriceComponent.objects.filter(element__version=version).update(
        price_index=index, index_markup_abs=Decimal("0.10"))
    client.force_login(MembershipFactory(operator=operator, role="manager").user)
    url = reverse("admin:tariffs_tariffversion_changelist")
    refused = client.post(url, {"action": "export_ocpi", "_selected_action": [version.pk]},
                          follow=True)
    assert "has no price for" in refused.content.decode()  # no index prices yet: no download
    zone = zoneinfo.ZoneInfo("Europe/Amsterdam")
    today = timezone.localdate(timezone=zone)
    start = datetime.combine(today, time(), zone).astimezone(UTC) - timedelta(hours=1)
    PriceIndexValue.objects.bulk_create(
        PriceIndexValue(index=index, start=start + timedelta(hours=h), price=Decimal("0.05"))
        for h in range(27))
    response = client.post(url, {"action": "export_ocpi", "_selected_action": [version.pk]})
    assert response["Content-Type"] == "application/json"
    body = response.content.decode()
    assert f'"start_date": "{today:%Y-%m-%d}"' in body
    assert '"price": 0.15' in body  # 0.05 + 0.10 mark-up
