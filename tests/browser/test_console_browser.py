"""The console at laptop and phone sizes: the live overview, the Devices tab at scale,
bulk actions with progress, and pages that never scroll sideways."""

import os
from pathlib import Path
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import expect

from devices import services
from tests.browser.conftest import LAPTOP, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
# Set to a folder to keep a screenshot of each page the tests visit, at each size.
SCREENSHOTS = os.environ.get("GATEHOUSE_SCREENSHOTS")


def fits_the_viewport(page) -> None:
    """Nothing on the page makes it scroll sideways."""
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px viewport"


def keep_screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        width = page.viewport_size["width"]
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-{width}.png"), full_page=False)


def activate(live_server, connector, identity: str) -> None:
    request = Request(
        f"{live_server.url}/c/{connector.pk}/provision/activate",
        data=f"id={identity}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    with urlopen(request, timeout=60) as response:
        assert response.status == 200


@SIZES
def test_the_overview_counts_a_device_that_activates_without_a_reload(
    signed_in_page, connector, live_server, size
):
    for number in range(1, 4):
        services.whitelist_device(connector, f"{number:08d}")
    activate(live_server, connector, "00000001")
    page = signed_in_page
    page.set_viewport_size(size)
    page.goto(f"/connectors/{connector.pk}/")
    expect(page.locator("nav.tabs [aria-current=page]")).to_have_text("Overview")
    expect(page.locator("#count-total")).to_have_text("3")
    expect(page.locator("#count-provisioned")).to_have_text("1")
    expect(page.locator(".fleet-chart svg")).to_have_count(2)
    fits_the_viewport(page)
    keep_screenshot(page, "overview")
    page.evaluate("window.stillTheSamePage = true")

    activate(live_server, connector, "00000002")

    expect(page.locator("#count-provisioned")).to_have_text("2")
    expect(page.locator("#count-whitelisted")).to_have_text("1")
    expect(page.locator("#overview-live")).to_have_attribute("data-state", "on")
    expect(page.locator("#last-events li").first).to_contain_text("00000002")
    assert page.evaluate("window.stillTheSamePage") is True
    chart = page.locator(".fleet-chart[data-chart='0'] svg")
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 12, box["y"] + box["height"] / 2)
    expect(page.locator(".fleet-chart[data-chart='0'] .chart-tip")).to_contain_text("2 activations")
    page.click(".segmented >> text=7d")
    expect(page).to_have_url(f"{live_server.url}/connectors/{connector.pk}/overview/?range=7d")
    expect(page.locator(".chart-head .unit").first).to_have_text("per 6 hours")
    fits_the_viewport(page)


@SIZES
def test_devices_tab_filters_by_a_chip_and_revokes_picked_rows_after_confirming(
    signed_in_page, connector, size
):
    from devices.models import Device

    for number in range(1, 6):
        services.whitelist_device(
            connector, f"{number:08d}", tags=[{"name": "group", "value": "g1"}]
        )
    services.revoke_device(Device.objects.get(identity="00000005"))
    page = signed_in_page
    page.set_viewport_size(size)
    page.goto(f"/connectors/{connector.pk}/devices/")
    fits_the_viewport(page)
    page.click("a.chip[data-status=whitelisted]")
    expect(page.locator("a.chip[data-status=whitelisted]")).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.locator("input[name=ids]")).to_have_count(4)
    page.locator("input[name=ids]").nth(0).check()
    page.locator("input[name=ids]").nth(1).check()
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    page.select_option("#bulk-action", "revoke")
    page.click("#apply-selected")
    expect(page.locator("#bulk-count")).to_have_text("2")
    fits_the_viewport(page)
    page.click("#bulk-confirm-button")
    expect(page.locator("a.chip[data-status=revoked] .chip-count")).to_have_text("3")
    fits_the_viewport(page)
    keep_screenshot(page, "devices")
