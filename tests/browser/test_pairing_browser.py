"""Pairing in Chromium as it runs: the device starts a registration over the device API,
the user types its PIN and confirms in the browser, and My devices shows the device the
moment it finishes, with no reload; the confirm page says so when the request ends while
the user looks at it. At a laptop's and a phone's size, with nothing overflowing.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from registrations.models import Registration
from tests.browser.conftest import LAPTOP, PHONE
from tests.browser.test_layout_browser import overflow, sign_in
from tests.support.secure_devices import serial_suffix_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])


class Watched:
    """A tab that remembers its navigations and its script errors."""

    def __init__(self, page):
        self.page = page
        self.navigations = []
        self.errors = []
        page.on("framenavigated", lambda frame: self.navigations.append(frame.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )

    def mark(self) -> None:
        """Set a marker that only this very document carries; forget navigations so far."""
        self.page.evaluate("window.__stillThisPage = true")
        self.navigations.clear()

    def assert_not_reloaded(self) -> None:
        assert self.page.evaluate("window.__stillThisPage === true")
        assert self.navigations == []


def fits(page) -> None:
    found = overflow(page)
    assert found is None, found
    root = "document.documentElement"
    assert page.evaluate(f"{root}.scrollWidth <= {root}.clientWidth")


@pytest.fixture
def tab(page, live_server, end_user):
    sign_in(page, end_user, live_server)
    return Watched(page)


def find_the_device(page, started, device_certificate) -> None:
    """Type the PIN and serial digits as a person copies them, with spaces."""
    pin, suffix = started["pin"], serial_suffix_of(device_certificate)
    page.goto("/pair/")
    fits(page)
    page.fill("#id_pin", f"{pin[:4]} {pin[4:]}")
    page.fill("#id_serial_suffix", f"{suffix[:2]} {suffix[2:].lower()}")
    page.get_by_role("button", name="Find the device").click()
    expect(page).to_have_url(re.compile(r"/pair/confirm/$"))


@SIZES
def test_my_devices_shows_the_device_when_it_finishes_without_a_reload(
    tab, started, secure_client, device_certificate, size
):
    page = tab.page
    page.set_viewport_size(size)
    find_the_device(page, started, device_certificate)
    expect(page.locator("#claim")).to_have_text("You are claiming this device: Acme Thermostat")
    fits(page)
    page.fill("#id_name", "Garden thermostat")
    page.get_by_role("button", name="Pair this device").click()

    expect(page).to_have_url(re.compile(r"/my/devices/$"))
    expect(page.locator("#waiting")).to_contain_text("Garden thermostat")
    expect(page.locator("#devices")).to_contain_text("appears here once it finishes")
    expect(page.get_by_text("You have no devices yet")).to_have_count(0)
    fits(page)
    tab.mark()

    done = secure_client.complete(started["rid"], started["nonce"])
    assert done.status_code == 200, done.content

    status = page.locator("#my-devices-status")
    expect(status).to_have_text(
        "Garden thermostat finished its registration and is now in your list."
    )
    expect(page.locator("#waiting")).to_have_count(0)
    row = page.locator("#devices tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Garden thermostat")
    expect(row).to_contain_text("Acme Thermostat")
    expect(page.get_by_text("appears here once it finishes")).to_have_count(0)
    tab.assert_not_reloaded()
    fits(page)
    assert tab.errors == []


@SIZES
def test_the_confirm_page_says_so_when_the_device_cancels_the_request(
    tab, started, secure_client, secure_connector, device_certificate, size
):
    page = tab.page
    page.set_viewport_size(size)
    find_the_device(page, started, device_certificate)
    tab.mark()

    assert secure_client.initiate(secure_connector, "a1b2c3d4").status_code == 200

    expect(page.locator("#pair-status")).to_contain_text("The device started a new registration")
    expect(page.get_by_role("button", name="Pair this device")).to_be_disabled()
    expect(page.locator("#pair-cancel")).to_have_text("Start again")
    tab.assert_not_reloaded()
    fits(page)
    assert tab.errors == []


def test_the_confirm_page_says_so_when_the_request_expires(tab, started, device_certificate):
    page = tab.page
    find_the_device(page, started, device_certificate)
    tab.mark()

    Registration.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    expect(page.locator("#pair-status")).to_contain_text("This pairing request has expired")
    expect(page.get_by_role("button", name="Pair this device")).to_be_disabled()
    tab.assert_not_reloaded()


def test_my_devices_says_so_when_a_waiting_request_expires(tab, started, device_certificate):
    page = tab.page
    find_the_device(page, started, device_certificate)
    page.fill("#id_name", "Garden thermostat")
    page.get_by_role("button", name="Pair this device").click()
    expect(page.locator("#waiting")).to_contain_text("Garden thermostat")
    tab.mark()

    Registration.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    expect(page.locator("#my-devices-status")).to_contain_text(
        "Garden thermostat did not finish its registration in time"
    )
    expect(page.locator("#waiting")).to_have_count(0)
    expect(page.get_by_text("You have no devices yet")).to_be_visible()
    tab.assert_not_reloaded()
