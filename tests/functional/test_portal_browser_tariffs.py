"""The tariff journey in a real headless Chromium: log in, create a tariff, build its
peak/off-peak prices in the week grid (by dragging the mouse and by keyboard), assign it to a
station and price sessions at 18:00 (peak) and 23:00 (off-peak) in the price simulator."""

import re

import pytest

from tariffs.models import TariffAssignment

from .browser_helpers import log_in, screenshot
from .tariffs_helpers import local_input, network, next_weekday

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _drag(page, first: str, last: str) -> None:
    """Press the mouse on the cell labelled ``first`` and release it on ``last``."""
    start = page.get_by_label(first).bounding_box()
    end = page.get_by_label(last).bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def test_build_a_peak_tariff_assign_it_and_price_sessions_in_the_simulator(
        transactional_db, live_server, page):
    alpha = network("alpha")
    network("bravo", users=False)
    log_in(page, live_server, alpha.manager.username)

    # a new tariff
    page.get_by_role("link", name="Tariffs", exact=True).click()
    page.get_by_role("link", name="New tariff").click()
    page.get_by_label("Tariff id").fill("alpha-PEAK")
    page.get_by_label("Name").fill("Evening peak")
    page.get_by_role("button", name="Create the tariff").click()
    page.get_by_text("Tariff alpha-PEAK created").wait_for()

    # the builder: Monday to Thursday by dragging, Friday by keyboard
    page.get_by_role("link", name="Peak/off-peak builder").click()
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday"):
        _drag(page, f"{day} 17:00–18:00", f"{day} 20:00–21:00")
    for hour in (17, 18, 19, 20):
        page.get_by_label(f"Friday {hour}:00–{hour + 1}:00").focus()
        page.keyboard.press("Space")
    assert page.locator("[data-week-grid] input:checked").count() == 20
    assert page.get_by_label("Tuesday 18:00–19:00").is_checked()
    assert not page.get_by_label("Tuesday 21:00–22:00").is_checked()
    assert not page.get_by_label("Saturday 18:00–19:00").is_checked()
    assert page.locator("[data-peak-count]").inner_text() == "20 / 168"
    page.get_by_label("Peak price per kWh", exact=True).fill("0.65")
    page.get_by_label("Off-peak price per kWh", exact=True).fill("0.25")
    screenshot(page, "portal-tariff-builder")
    page.get_by_role("button", name="Activate the new version").click()
    page.get_by_text(re.compile(r"Version 1 of alpha-PEAK is active from")).wait_for()
    assert page.get_by_role("cell", name="Mon–Fri · 17:00–21:00").is_visible()

    # assigned to the station
    page.get_by_role("link", name="Assign", exact=True).click()
    page.get_by_label("Level", exact=True).select_option(label="Station (micro)")
    assert page.get_by_label("Location", exact=True).is_hidden()
    page.get_by_label("Station", exact=True).select_option(label="alpha-CP-1")
    page.get_by_role("button", name="Assign").click()
    page.get_by_text("alpha-PEAK now applies at Station (micro) alpha-CP-1.").wait_for()
    assert TariffAssignment.objects.filter(tariff__code="alpha-PEAK", level="station",
                                           station=alpha.station).exists()
    screenshot(page, "portal-tariff-detail")

    # the simulator: a Tuesday at 18:00 is peak, at 23:00 off-peak
    page.get_by_role("link", name="Price simulator").click()
    page.get_by_label("EVSE", exact=True).select_option(str(alpha.evse.pk))
    page.get_by_label("Start", exact=True).fill(local_input(next_weekday(1, 18)))
    page.get_by_label("Energy (kWh)", exact=True).fill("10")
    page.get_by_label("Charging (minutes)", exact=True).fill("60")
    page.get_by_role("button", name="Price it").click()
    total = page.locator('[data-total="excl"]')
    total.wait_for()
    assert total.inner_text() == "EUR 6.50"
    assert page.locator("[data-tariff]").inner_text().startswith("alpha-PEAK")
    assert page.locator("[data-level]").inner_text() == "Station (micro): alpha-CP-1"

    page.get_by_label("Start", exact=True).fill(local_input(next_weekday(1, 23)))
    page.get_by_role("button", name="Price it").click()
    page.locator('[data-total="excl"]', has_text="EUR 2.50").wait_for()
    assert page.locator('[data-total="incl"]').inner_text() == "EUR 3.03"
    assert page.locator("[data-when]").inner_text().endswith("23:00 – 00:00 (Europe/Amsterdam)")
    assert "bravo" not in page.content().lower()
    page.get_by_text("Per price component and per period").click()
    shot = screenshot(page, "portal-tariff-simulator")
    assert shot.stat().st_size > 10_000
