"""Editing a device's name and tags from its page, at laptop and phone sizes."""

import pytest
from playwright.sync_api import expect

from audit.models import Event
from devices import services
from devices.models import Device
from tests.browser.conftest import LAPTOP, PHONE
from tests.browser.test_console_browser import fits_the_viewport, keep_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])


@SIZES
def test_a_maker_edits_tags_on_the_device_page_and_sees_them(
    signed_in_page, connector, live_server, size
):
    device = services.whitelist_device(
        connector, "00000001", tags=[{"name": "group", "value": "g1"}]
    )
    page = signed_in_page
    page.set_viewport_size(size)
    page.goto(f"/connectors/{connector.pk}/devices/{device.pk}/")
    tags = page.locator(".facts .tag")
    expect(tags).to_have_text(["group=g1"])
    page.click("#name-and-tags summary")
    expect(page.locator("#device-edit #id_tags")).to_have_value("group=g1")
    fits_the_viewport(page)
    keep_screenshot(page, "device-edit")

    page.fill("#device-edit #id_name", "Kitchen boiler")
    page.fill("#device-edit #id_tags", "group=g2\nfloor=3")
    page.click("#device-edit button[type=submit]")

    expect(page).to_have_url(f"{live_server.url}/connectors/{connector.pk}/devices/{device.pk}/")
    expect(page.locator("ul.messages")).to_contain_text("name and tags saved")
    expect(tags).to_have_text(["group=g2", "floor=3"])
    expect(page.locator(".device-header .lede")).to_contain_text("Kitchen boiler")
    expect(page.locator("table.log .kind-change").first).to_be_visible()
    fits_the_viewport(page)
    device.refresh_from_db()
    assert device.tags == [{"name": "group", "value": "g2"}, {"name": "floor", "value": "3"}]
    assert Event.objects.filter(kind=Event.CHANGE, identity="00000001").count() == 1

    # A bad tag comes back next to the field, and nothing changes.
    page.click("#name-and-tags summary")
    page.fill("#device-edit #id_tags", "no equals sign")
    page.click("#device-edit button[type=submit]")
    expect(page.locator("#device-edit .field-error")).to_contain_text(
        "Line 1: write each tag as name=value."
    )
    fits_the_viewport(page)
    assert Device.objects.get(pk=device.pk).tags == device.tags
