"""Browser tests' shared parts: the distribution's Chromium, headless, driven by Playwright; a
screenshot of each journey's end is kept in test-artifacts/ (look at them).

The ``page`` fixture is offered to every functional test by conftest.py. Mark a browser test module
``pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]``.
"""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium was not found: install the Debian package `chromium` "
                    "(.ci/run does) or point CHROMIUM at the browser.", pytrace=False)
    return path


@pytest.fixture
def page(live_server, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Django keeps its connections in an asgiref Local: thread-local while no event loop runs,
    # but per context once one does, and Playwright marks its loop as running in this thread
    # between its calls. Without the lines below the test's ORM calls would open a second
    # connection that pytest-django neither sees nor closes, and dropping the test database
    # at the end of the session would fail ("is being accessed by other users"). So the test
    # keeps using the connections pytest-django set up (and flushes and closes).
    outside = {alias: connections[alias] for alias in connections}
    with sync_playwright() as playwright:
        for alias, connection in outside.items():
            connections[alias] = connection  # in the loop's context storage, the same objects
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, live_server, username: str, password: str = "pw") -> None:
    """Log in through the portal's form and wait for the dashboard."""
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/portal/")
