"""My devices: a user's own devices, renaming and releasing them."""

import pytest
from django.test import Client

from audit.models import Event
from devices.models import Device
from registrations.models import Message
from tests.support.secure_devices import register

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered(secure_client, secure_connector, alice_browser):
    return register(secure_client, alice_browser, secure_connector)


@pytest.fixture
def device(registered):
    return Device.objects.get(identity="a1b2c3d4")


@pytest.fixture
def bob_browser(django_user_model):
    browser = Client()
    browser.force_login(django_user_model.objects.create_user("bob"))
    return browser


def test_my_devices_lists_the_users_own_devices(registered, alice_browser, bob_browser):
    page = alice_browser.get("/my/devices/").content.decode()
    assert "Hall thermostat" in page and "Acme Thermostat" in page
    assert "Hall thermostat" not in bob_browser.get("/my/devices/").content.decode()


def test_someone_elses_device_page_is_404(device, bob_browser):
    assert bob_browser.get(f"/my/devices/{device.pk}/").status_code == 404
    assert bob_browser.post(f"/my/devices/{device.pk}/release/").status_code == 404
    assert Device.objects.get().owner.username == "alice"


def test_my_devices_needs_sign_in(device):
    response = Client().get("/my/devices/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_owner_renames_a_device(device, alice_browser):
    response = alice_browser.post(f"/my/devices/{device.pk}/", {"name": "  Kitchen  "})
    assert response.status_code == 302
    assert Device.objects.get().name == "Kitchen"
    assert Event.objects.filter(kind="rename", reason__contains="Kitchen").exists()


def test_a_blank_or_long_name_is_refused_and_changes_nothing(device, alice_browser):
    for name in ["", "x" * 101]:
        response = alice_browser.post(f"/my/devices/{device.pk}/", {"name": name})
        assert response.status_code == 200
        assert Device.objects.get().name == "Hall thermostat"


def test_releasing_stops_the_token_and_lets_the_device_be_paired_again(
    device, registered, secure_client, secure_connector, alice_browser, bob_browser
):
    token, did = registered["accessToken"], registered["did"]
    assert secure_client.message(token, did, {"old": "owner"}).status_code == 200
    confirm = alice_browser.get(f"/my/devices/{device.pk}/release/")
    assert "Release Hall thermostat?" in confirm.content.decode()

    assert alice_browser.post(f"/my/devices/{device.pk}/release/").status_code == 302
    device.refresh_from_db()
    assert device.owner is None and device.status == Device.WHITELISTED
    assert secure_client.message(token, did, {"after": "release"}).status_code == 401
    assert Event.objects.filter(kind="release", reason="released by its owner alice").exists()
    assert "Hall thermostat" not in alice_browser.get("/my/devices/").content.decode()

    again = register(secure_client, bob_browser, secure_connector)
    assert again["did"] != did
    device.refresh_from_db()
    assert device.owner.username == "bob" and device.status == Device.PROVISIONED
    # The new owner does not see what the device sent for the previous one.
    assert Message.objects.filter(device=device).count() == 1
    page = bob_browser.get(f"/my/devices/{device.pk}/").content.decode()
    assert "No messages yet." in page
