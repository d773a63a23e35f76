"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Chromium comes from the system (`apt-get install chromium`), never from
`playwright install`. Without it these tests are skipped, unless
GATEHOUSE_REQUIRE_BROWSER is set (CI), where a missing browser is a failure.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# How long Playwright waits for a page or an element: generous, for a busy machine.
STEP_TIMEOUT_MS = 60_000
# Playwright's assertions have a clock of their own (5 s unless told).
expect.set_options(timeout=STEP_TIMEOUT_MS)


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    if os.environ.get("GATEHOUSE_REQUIRE_BROWSER"):
        raise pytest.UsageError(f"{CHROMIUM} is missing: apt-get install chromium")
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module; its event loop ends with the module, not the session."""
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps an event loop running in this thread while the
        # browser is open; the ORM calls tests (and database flushes) make meanwhile
        # are still plain synchronous code.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport=LAPTOP, base_url=live_server.url)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def signed_in_page(page, owner, live_server):
    """A tab whose browser carries the owner's session, as after signing in."""
    client = Client()
    client.force_login(owner)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    return page
