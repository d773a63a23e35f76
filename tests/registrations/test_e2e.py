"""Secure registration end to end (docs/secure-registration.md): a device with a real
client certificate over real TLS through nginx, a user pairing it in a real browser,
messages over HTTPS and the WebSocket.

The device is examples/device_simulator.py (standard library + ssl), the browser is
Debian's Chromium driven by Playwright, the server is portal.asgi under uvicorn.
"""

import threading

import pytest
from playwright.sync_api import expect, sync_playwright

from certificates import services as certificate_services
from devices.models import Device
from examples.device_simulator import SecureDevice
from registrations.models import Message
from tests.support.secure_devices import in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# The vendor's root CA (docs/secure-registration.md) issues device certificates by serial
# number and name.
SERIAL = "0x5ec00000c0ffee"
STEPS = {"stepCount": 100, "timeInBed": 200, "asleepTime": 10, "calories": 150}


@pytest.fixture
def device_files(secure_connector, tmp_path):
    """A certificate the connector's own CA issued, written where firmware keeps it."""
    authority = certificate_services.create_authority(secure_connector)
    issued = certificate_services.issue_certificate(
        authority, common_name="a1b2c3d4", serial=SERIAL
    )
    cert_file, key_file = tmp_path / "device-cert.pem", tmp_path / "device-key.pem"
    cert_file.write_text(issued.certificate.certificate_pem)
    key_file.write_text(issued.private_key_pem)
    return cert_file, key_file


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "pairing-pass-42")


@pytest.mark.browser
def test_a_device_registers_by_pin_and_its_messages_reach_my_devices(
    secure_frontend, secure_connector, device_files, user
):
    cert_file, key_file = device_files
    device = SecureDevice(
        secure_frontend.url, str(secure_frontend.ca_file), str(cert_file), str(key_file)
    )
    started = device.initiate(secure_connector.pk, "a1b2c3d4")
    assert device.status() == {"status": "PENDING_USER_CONFIRMATION"}

    def pair_in_the_browser_while_the_device_polls():
        # The device polls while the user pairs it in the browser.
        seen = {}
        poller = threading.Thread(
            target=lambda: seen.update(device.wait_for("PENDING_DEVICE_COMPLETION", 60, 0.2))
        )
        poller.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(ignore_https_errors=True).new_page()
            try:
                page.goto(f"{secure_frontend.url}/login/?next=/pair/")
                page.fill("#id_username", "alice")
                page.fill("#id_password", "pairing-pass-42")
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_role("heading", name="Pair a device")).to_be_visible()

                page.fill("#id_pin", started["pin"])
                page.fill("#id_serial_suffix", SERIAL[-4:])
                page.get_by_role("button", name="Find the device").click()
                expect(page.locator("#claim")).to_have_text(
                    "You are claiming this device: Acme Thermostat"
                )
                page.fill("#id_name", "Hall thermostat")
                page.get_by_role("button", name="Pair this device").click()
                expect(page.get_by_text("Waiting for the device")).to_be_visible()

                poller.join(timeout=60)
                assert seen == {"status": "PENDING_DEVICE_COMPLETION"}
                done = device.complete()
                assert device.status() == {"status": "REGISTERED", "did": done["did"]}

                mid, limits = device.send_message(STEPS)
                assert limits["x-rate-limit-limit"] == "100/1000"
                assert limits["x-rate-limit-remaining"] == "99/999"
                socket = device.websocket()
                try:
                    socket.send_json(
                        {
                            "type": "register",
                            "sdid": device.did,
                            "Authorization": f"bearer {device.token}",
                        }
                    )
                    assert socket.receive_json() == {"data": {"code": "200", "message": "OK"}}
                    socket.send_json(
                        {"type": "message", "sdid": device.did, "data": {"door": "open"}}
                    )
                    socket_mid = socket.receive_json()["data"]["mid"]
                finally:
                    socket.close()

                page.goto(f"{secure_frontend.url}/my/devices/")
                row = page.get_by_role("row", name="Hall thermostat")
                expect(row).to_contain_text("Acme Thermostat")
                expect(row).to_contain_text('{"door": "open"}')
                row.get_by_role("link", name="Hall thermostat").click()
                expect(page.locator("#messages")).to_contain_text(mid)
                expect(page.locator("#messages")).to_contain_text(socket_mid)
                expect(page.locator("#messages")).to_contain_text('"stepCount": 100')
            finally:
                browser.close()
        return done, mid, socket_mid

    # Playwright's sync API needs a thread whose event loop it can own.
    done, mid, socket_mid = in_thread(pair_in_the_browser_while_the_device_polls)

    stored = Device.objects.get(identity="a1b2c3d4")
    assert stored.owner == user and stored.name == "Hall thermostat"
    assert stored.secure.did == done["did"]
    assert sorted(Message.objects.values_list("channel", flat=True)) == ["rest", "websocket"]
