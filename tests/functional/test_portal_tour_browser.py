"""The portal's header on a phone, in a real headless Chromium: at 390 px the menu folds behind
a "Menu" button that works by keyboard (Enter opens it, Tab reaches the pages with a visible
focus ring, Escape closes it and returns to the button); without JavaScript the menu is simply
open; at 1280 px the menu is a row of its own with no button. Screenshot
``test-artifacts/portal-phone-menu.png`` (the sessions page with the menu open)."""

import pytest

from tests.factories import MembershipFactory

from .browser_helpers import log_in, screenshot
from .portal_helpers import priced_operator

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PHONE = {"width": 390, "height": 844}
FOCUSED = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return {tag: el.tagName, text: (el.textContent || '').trim(),
            expanded: el.getAttribute('aria-expanded'),
            outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth)};
}"""


@pytest.fixture
def manager(transactional_db):
    operator, _ = priced_operator("Alpha", sessions=3)
    return MembershipFactory(operator=operator, role="manager").user


def overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_on_a_phone_the_menu_opens_by_keyboard_and_reaches_the_sessions(live_server, page,
                                                                           manager):
    page.set_viewport_size(PHONE)
    log_in(page, live_server, manager.username)
    toggle = page.get_by_role("button", name="Menu")
    sessions = page.get_by_role("link", name="Sessions", exact=True)
    assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    assert not sessions.is_visible()
    assert overflow(page) <= 0

    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["text"] == "Skip to content"
    page.keyboard.press("Tab")
    focused = page.evaluate(FOCUSED)
    assert (focused["tag"], focused["text"]) == ("BUTTON", "Menu")
    assert focused["outline"] == "solid" and focused["outlineWidth"] >= 2  # a visible ring
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true"
    sessions.wait_for(state="visible")

    # Escape folds the menu and gives the focus back to the button
    page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert not sessions.is_visible()
    assert page.evaluate(FOCUSED)["text"] == "Menu"

    # Space opens it again; Tab walks through the tools and the pages to the sessions
    page.keyboard.press("Space")
    assert toggle.get_attribute("aria-expanded") == "true"
    walked = []
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        walked.append(focused["text"])
        if focused["tag"] == "A" and focused["text"] == "Sessions":
            break
    else:
        pytest.fail(f"Tab never reached the sessions link: {walked}")
    assert focused["outline"] == "solid" and focused["outlineWidth"] >= 2
    # the tools come before the pages, the pages in the menu's order
    assert walked.index("Log out") < walked.index("Dashboard") < walked.index("Sessions")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/portal/sessions/")

    assert page.get_by_role("heading", level=1).inner_text().startswith("Sessions")
    assert page.get_by_role("row").count() == 1 + 3  # the header and the three sessions
    assert overflow(page) <= 0  # the table scrolls in its own box, not the page
    assert toggle.get_attribute("aria-expanded") == "false"  # folded on the new page
    toggle.click()
    assert sessions.get_attribute("aria-current") == "page"
    shot = screenshot(page, "portal-phone-menu")
    assert shot.stat().st_size > 10_000

    # on a desktop the same page shows the menu in a row, without the button
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not toggle.is_visible()
    assert sessions.is_visible()
    top = page.get_by_role("link", name="Dashboard", exact=True).bounding_box()["y"]
    assert sessions.bounding_box()["y"] == pytest.approx(top, abs=2)  # one row
    assert overflow(page) <= 0


def test_without_javascript_the_phone_menu_is_open(live_server, page, manager):
    context = page.context.browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        plain = context.new_page()
        log_in(plain, live_server, manager.username)
        assert not plain.get_by_role("button", name="Menu").is_visible()
        plain.get_by_role("link", name="Sessions", exact=True).click()
        plain.wait_for_url(f"{live_server.url}/portal/sessions/")
        assert plain.get_by_role("heading", level=1).inner_text().startswith("Sessions")
        assert plain.get_by_role("button", name="Log out").is_visible()
    finally:
        context.close()
