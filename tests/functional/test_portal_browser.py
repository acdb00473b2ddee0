"""The portal in a real headless Chromium: log in through the form and see the dashboard's chart
drawn. A screenshot of each journey's end is kept in test-artifacts/."""

import pytest

from tests.factories import MembershipFactory

from .browser_helpers import screenshot
from .portal_helpers import priced_operator

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_log_in_and_see_the_dashboard_chart_drawn(transactional_db, live_server, page):
    operator, _ = priced_operator("Alpha", sessions=12)
    user = MembershipFactory(operator=operator, role="manager").user
    page.goto(f"{live_server.url}/portal/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/portal/")
    # the period of the demo sessions, through the form (htmx swaps the body in)
    page.get_by_label("From").fill("2026-10-01")
    page.get_by_label("To").fill("2026-10-31")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/portal/?first=2026-10-01&last=2026-10-31")
    page.locator('[data-figure="sessions"]', has_text="12").wait_for()
    page.wait_for_function("""() => {
        const canvas = document.getElementById('daily-chart');
        const chart = canvas && window.Chart && Chart.getChart(canvas);
        if (!chart || chart.data.datasets[0].data.length !== 31) return false;
        const ctx = canvas.getContext('2d');
        const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted++;
        return painted > 1000;
    }""", timeout=15000)
    assert page.evaluate("Chart.getChart(document.getElementById('locations-chart')) !== undefined")
    assert page.evaluate(
        "Chart.getChart(document.getElementById('daily-chart')).data.datasets[0].data"
        ".reduce((a, b) => a + b, 0)") == pytest.approx(12 * 20.5)
    assert "EUR 89.28" in page.locator('[data-figure="revenue-incl"]').inner_text()  # 12 × 7.44
    shot = screenshot(page, "portal-dashboard")
    assert shot.stat().st_size > 10_000
