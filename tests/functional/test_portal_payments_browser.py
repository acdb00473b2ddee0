"""The payments and dunning pages in a real headless Chromium: from the menu to a filtered list,
a payment's attempts, then a dunning case, with the keyboard-usable form's labels."""

import pytest

from .browser_helpers import log_in, screenshot
from .payments_helpers import alpha

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_find_a_paid_payment_then_follow_a_dunning_case(transactional_db, live_server, page):
    a = alpha()
    log_in(page, live_server, a.user("manager").username)
    page.get_by_role("link", name="Payments", exact=True).click()
    page.wait_for_url(f"{live_server.url}/portal/payments/")
    page.get_by_label("Status").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/portal/payments/?status=succeeded*")
    assert page.locator("tbody tr").count() == 1
    page.get_by_role("link", name=f"#{a.payment.pk}").click()
    page.get_by_role("heading", name="Attempts at the provider").wait_for()
    assert page.locator("table").first.locator("tbody tr").count() == 1
    screenshot(page, "portal-payment")
    page.get_by_role("link", name="Dunning", exact=True).click()
    page.wait_for_url(f"{live_server.url}/portal/dunning/")
    page.get_by_role("link", name="Customer alpha").click()
    page.get_by_role("heading", name=f"Dunning of {a.overdue.number}").wait_for()
    assert "Firm reminder" in page.content()
    page.set_viewport_size({"width": 420, "height": 900})
    screenshot(page, "portal-dunning-case")
