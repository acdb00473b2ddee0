"""A CPO manager's journey in a real browser: the network, a location's EVSEs with their tariffs,
its sessions, a filter, and one session's price breakdown."""

import pytest

from emobility.models import Location
from tests.factories import MembershipFactory

from .browser_helpers import log_in, screenshot
from .portal_helpers import priced_operator

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"),
              pytest.mark.django_db(transaction=True)]


def test_a_manager_goes_from_a_location_to_its_sessions_and_one_sessions_price(page,
                                                                               live_server):
    operator, evses = priced_operator("Alpha", sessions=6)
    user = MembershipFactory(operator=operator, role="manager").user
    log_in(page, live_server, user.username)

    page.get_by_role("link", name="Network").click()
    page.get_by_role("link", name="Alpha location 1", exact=True).click()
    page.wait_for_selector("table.network-evses")
    cell = page.locator("table.network-evses td.tariff").first
    assert "T-Alpha" in cell.inner_text()
    screenshot(page, "portal-network-location")

    page.get_by_role("link", name="Sessions at this location").click()
    page.wait_for_selector("table.sessions")
    location = Location.objects.get(name="Alpha location 1")
    assert page.get_by_label("Location").input_value() == str(location.pk)
    assert page.locator("table.sessions tbody tr").count() == 3
    page.get_by_label("Status").select_option("rated")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**status=rated**")
    screenshot(page, "portal-sessions-list")

    page.locator("table.sessions tbody th a").first.click()
    page.wait_for_selector("table.dimensions")
    assert "T-Alpha" in page.locator("[data-figure=tariff]").inner_text()
    screenshot(page, "portal-session-detail")
