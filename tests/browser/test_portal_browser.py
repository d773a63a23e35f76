"""The admins' portal in a real browser: sign in, connector settings, devices, CSV, live log."""

import re
import time
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import expect

from connectors.models import Connector
from devices import services
from devices.models import Device, WhitelistImport

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BIG_IMPORT_ROWS = 50_000
BIG_IMPORT_SECONDS = 180


def test_admin_signs_in_and_out(page, owner):
    page.goto("/connectors/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/connectors/"))
    page.fill("#id_username", "owner")
    page.fill("#id_password", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator(".form-errors")).to_contain_text("correct username and password")
    page.fill("#id_password", "owner-pass-123")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Connectors")
    expect(page.locator(".account-name")).to_have_text("owner")
    page.click("text=Sign out")
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))


def test_admin_creates_a_connector_and_the_tester_explains_a_bad_mac(signed_in_page):
    page = signed_in_page
    page.goto("/connectors/")
    page.click("text=+ New connector")
    page.fill("#id_name", "Door sensors")
    mac_style = page.locator("#id_identity_mac_style")
    length = page.locator("#id_identity_length")
    expect(mac_style).to_be_hidden()
    page.select_option("#id_identity_type", "mac")
    expect(mac_style).to_be_visible()
    expect(length).to_be_hidden()
    page.select_option("#id_identity_mac_style", "dash")

    tester = page.locator("#identity-tester")
    verdict = page.locator("#identity-verdict")
    tester.fill("00:14:22:01:23:45")
    expect(verdict).to_have_attribute("data-state", "bad")
    expect(verdict).to_contain_text("not a MAC address in this style")
    expect(verdict).to_contain_text("aa-bb-cc-dd-ee-ff")
    tester.fill("00-14-22-01-23-4G")
    expect(verdict).to_contain_text("not a MAC address in this style")
    tester.fill("00-14-22-01-23-4F")
    expect(verdict).to_have_attribute("data-state", "ok")
    expect(verdict).to_have_text("Matches (stored as 00-14-22-01-23-4f).")
    tester.press("Enter")  # tests the identity; does not submit the form

    page.click("text=Create connector")
    expect(page.locator(".message-success")).to_contain_text("Door sensors")
    connector = Connector.objects.get(name="Door sensors")
    assert (connector.identity_type, connector.identity_mac_style) == ("mac", "dash")
    expect(page.locator("#connect-devices")).to_contain_text(connector.device_host)
    expect(page.locator("#identity-tester")).to_be_visible()
    page.fill("#identity-tester", "001422012345")
    expect(verdict).to_contain_text("No: identity is not a MAC address in this style")


def test_admin_adds_one_device_with_the_connectors_window(signed_in_page, make_connector):
    connector = make_connector(
        identity_type="base10", identity_length=8, activation_window_seconds=48 * 3600
    )
    page = signed_in_page
    page.goto(f"/connectors/{connector.pk}/devices/")
    expect(page.locator(".empty")).to_contain_text("No devices yet")
    page.click("text=+ New device(s)")
    page.click("text=Add one device")
    expect(page.locator("#id_window_amount")).to_have_value("48")
    expect(page.locator("#id_window_unit")).to_have_value("hours")
    page.fill("#id_identity", "1234")
    page.click("button:has-text('Add')")
    expect(page.locator("#id_identity_error")).to_contain_text("exactly 8 decimal digits")
    page.fill("#id_identity", "00000001")
    page.fill("#id_tags", "group=g1\nclaim_code=abc")
    page.click("button:has-text('Add')")
    expect(page.locator(".device-identity")).to_have_text("00000001")
    expect(page.locator(".device-header .status")).to_contain_text("Whitelisted")
    page.click("nav.tabs >> text=Devices")
    row = page.locator("table.devices tbody tr", has_text="00000001")
    expect(row.locator(".status-whitelisted svg")).to_be_visible()
    expect(row).to_contain_text("claim_code=abc")
    assert Device.objects.get().tags == [
        {"name": "group", "value": "g1"},
        {"name": "claim_code", "value": "abc"},
    ]


def test_admin_revokes_a_device_after_confirming(signed_in_page, connector):
    services.whitelist_device(connector, "00000001")
    services.activate_device(connector, "00000001", None, "192.0.2.1")
    device = Device.objects.get()
    page = signed_in_page
    page.goto(f"/connectors/{connector.pk}/devices/{device.pk}/")
    page.click(".device-header >> text=Revoke")
    expect(page.locator("h2")).to_contain_text("Revoke 00000001?")
    device.refresh_from_db()
    assert device.status == Device.PROVISIONED
    page.click("form.confirm button[type=submit]")
    expect(page.locator(".message-success")).to_contain_text("revoked")
    expect(page.locator(".device-header .status")).to_contain_text("Revoked")
    device.refresh_from_db()
    assert device.status == Device.REVOKED


def test_csv_with_two_bad_rows_shows_both_errors_with_line_numbers(
    signed_in_page, connector, tmp_path
):
    csv_file = tmp_path / "identities.csv"
    csv_file.write_text(
        "ID,TLS Client Certificate,Tags\n"
        '00000001,,"[{""name"": ""group"", ""value"": ""g1""}]"\n'
        "0000002,,\n"
        "00000003,,\n"
        "00000001,,\n"
    )
    page = signed_in_page
    page.goto(f"/connectors/{connector.pk}/devices/")
    page.click("text=+ New device(s)")
    page.click("text=Add many devices")
    page.set_input_files("#id_file", str(csv_file))
    page.click("text=Upload CSV")
    expect(page.locator("#import-status")).to_have_text("Failed")
    rows = page.locator("#import-errors tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").nth(0)).to_have_text("3")
    expect(rows.nth(0)).to_contain_text("The ID cell must be exactly 8 decimal digits")
    expect(rows.nth(1).locator("td").nth(0)).to_have_text("5")
    expect(rows.nth(1)).to_contain_text("This ID is also on line 2 of the file")
    expect(page.locator("#import-summary")).to_contain_text("nothing was whitelisted")
    expect(page.locator("#errors-link")).to_be_visible()
    assert not Device.objects.exists()


@pytest.mark.worker
def test_big_csv_runs_on_the_worker_and_the_progress_bar_reaches_done(
    signed_in_page, connector, tmp_path, celery_worker
):
    tags = '"[{""name"": ""batch"", ""value"": ""factory-line-7""}]"'
    csv_file = tmp_path / "identities.csv"
    with csv_file.open("w") as out:
        out.write("ID,TLS Client Certificate,Tags\n")
        for number in range(1, BIG_IMPORT_ROWS + 1):
            out.write(f"{number:08d},,{tags}\n")
    page = signed_in_page
    page.goto(f"/connectors/{connector.pk}/imports/new/")
    page.set_input_files("#id_file", str(csv_file))
    page.click("text=Upload CSV")
    expect(page.locator("#import-progress")).to_be_visible()
    run = WhitelistImport.objects.get()

    seen = []
    give_up = time.monotonic() + BIG_IMPORT_SECONDS
    status = page.locator("#import-status")
    while status.get_attribute("data-status") != "done":
        celery_worker.assert_alive()
        assert time.monotonic() < give_up, celery_worker.logs()
        seen.append(page.locator("#import-processed").text_content())
        time.sleep(0.2)
    assert any(value != str(BIG_IMPORT_ROWS) for value in seen), "never saw it unfinished"
    bar = page.locator("#import-progress")
    expect(bar).to_have_attribute("max", str(BIG_IMPORT_ROWS))
    expect(bar).to_have_attribute("value", str(BIG_IMPORT_ROWS))
    expect(page.locator("#import-summary")).to_contain_text("Done: 50000 devices whitelisted.")
    run.refresh_from_db()
    assert (run.status, run.created) == (WhitelistImport.DONE, BIG_IMPORT_ROWS)
    assert Device.objects.filter(connector=connector).count() == BIG_IMPORT_ROWS


def test_a_device_activating_shows_up_in_the_open_logs_tab(signed_in_page, connector, live_server):
    services.whitelist_device(connector, "00000001")
    page = signed_in_page
    page.goto(f"/connectors/{connector.pk}/logs/")
    expect(page.locator("#log-rows tr")).to_have_count(1)
    page.evaluate("window.stillTheSamePage = true")

    request = Request(
        f"{live_server.url}/c/{connector.pk}/provision/activate",
        data=b"id=00000001",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    with urlopen(request, timeout=60) as response:
        assert response.status == 200
        assert len(response.read()) == 40

    newest = page.locator("#log-rows tr").first
    expect(newest.locator(".kind")).to_have_text("provision")
    expect(newest).to_contain_text("00000001")
    expect(newest).to_contain_text("token issued")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "on")
    assert page.evaluate("window.stillTheSamePage") is True
