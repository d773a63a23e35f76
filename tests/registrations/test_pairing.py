"""Pairing by PIN in the browser (docs/secure-registration.md): the user's side of secure
registration."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import Event
from connectors.models import Connector
from registrations import services
from registrations.models import PairingGuess, Registration
from tests.support.secure_devices import (
    SecureDeviceClient,
    pair,
    registration,
    trust,
)
from tests.support.tls import make_certificate

pytestmark = pytest.mark.django_db

LOOK_ALIKES = set("0O1IL")


def wrong_pin(pin: str) -> str:
    """A valid-looking PIN that differs from `pin` in its first character."""
    return ("A" if pin[0] != "A" else "B") + pin[1:]


def test_pins_are_eight_characters_without_look_alikes():
    pins = {services.new_pin() for _ in range(2000)}
    assert len(pins) == 2000
    assert all(len(pin) == 8 for pin in pins)
    used = set("".join(pins))
    assert not used & LOOK_ALIKES
    assert used == set(services.PIN_ALPHABET)


def test_the_pairing_page_needs_a_signed_in_user(started):
    response = Client().get("/pair/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_pairing_page_shows_no_tenants_device_types_or_whether_any_wait(
    started, suffix, secure_connector, django_user_model
):
    bob = Client()
    bob.force_login(django_user_model.objects.create_user("bob"))
    pages = [
        bob.get("/pair/"),
        bob.post("/pair/", {"pin": "AAAAAAAA", "serial_suffix": "0000"}),
        # A form naming a device type as the old page did changes nothing.
        bob.post(
            "/pair/",
            {"device_type": secure_connector.pk, "pin": "AAAAAAAA", "serial_suffix": suffix},
        ),
    ]
    for response in pages:
        page = response.content.decode()
        assert response.status_code == 200
        assert "Acme Thermostat" not in page
        assert secure_connector.pk not in page
        assert 'name="pin"' in page and 'name="serial_suffix"' in page
        assert "device_type" not in page
    # With nothing waiting anywhere the page reads the same: it tells no one what waits.
    Registration.objects.all().delete()
    assert "No device is waiting" not in bob.get("/pair/").content.decode()


def test_the_pin_finds_the_device_whichever_device_type_and_tenant_it_belongs_to(
    started, secure_connector, device_ca, django_user_model, alice_browser
):
    other_vendor = django_user_model.objects.create_user("other-vendor")
    kettles = Connector.objects.create(
        name="Kettle Co kettle", owner=other_vendor, auth_mode=Connector.CERTIFICATE
    )
    trust(kettles, device_ca)
    kettle = SecureDeviceClient(make_certificate("0000cafe", issuer=device_ca, serial=0xBEEF))
    kettle_started = kettle.initiate(kettles, "0000cafe").json()["data"]

    found = pair(alice_browser, kettles, kettle_started["pin"], "beef", name="Kitchen kettle")

    assert found.status_code == 302
    paired = registration(kettle_started["rid"])
    assert paired.status == Registration.PENDING_DEVICE_COMPLETION
    assert paired.connector == kettles and paired.device_name == "Kitchen kettle"
    assert registration(started["rid"]).status == Registration.PENDING_USER_CONFIRMATION


def test_the_confirm_page_names_the_device_type_but_not_its_connector_id(
    started, suffix, secure_connector, alice_browser
):
    found = alice_browser.post("/pair/", {"pin": started["pin"], "serial_suffix": suffix})
    assert found.status_code == 302
    page = alice_browser.get("/pair/confirm/").content.decode()
    assert "Acme Thermostat" in page
    assert secure_connector.pk not in page


def test_the_right_pin_and_serial_digits_ask_to_confirm_naming_the_device_type(
    started, suffix, secure_connector, alice_browser
):
    found = alice_browser.post(
        "/pair/",
        {"pin": started["pin"], "serial_suffix": suffix},
    )
    assert found.status_code == 302 and found["Location"] == "/pair/confirm/"
    page = alice_browser.get("/pair/confirm/").content.decode()
    assert "You are claiming this device: Acme Thermostat" in page
    assert "a1b2c3d4" in page and suffix in page
    # Nothing is claimed until the user confirms.
    assert registration(started["rid"]).status == Registration.PENDING_USER_CONFIRMATION

    done = alice_browser.post("/pair/confirm/", {"name": "Hall thermostat"})
    assert done.status_code == 302 and done["Location"] == "/my/devices/"
    paired = registration(started["rid"])
    assert paired.status == Registration.PENDING_DEVICE_COMPLETION
    assert paired.user.username == "alice" and paired.device_name == "Hall thermostat"
    assert Event.objects.filter(kind="pair", identity="a1b2c3d4").count() == 1
    waiting = alice_browser.get("/my/devices/").content.decode()
    assert "Waiting for the device" in waiting and "Hall thermostat" in waiting


def test_pin_and_digits_may_be_typed_in_lower_case_with_spaces(
    started, suffix, secure_connector, alice_browser
):
    pin = started["pin"].lower()
    response = pair(alice_browser, secure_connector, f"{pin[:4]} {pin[4:]}", suffix.lower())
    assert response.status_code == 302
    assert registration(started["rid"]).status == Registration.PENDING_DEVICE_COMPLETION


def test_a_device_needs_a_name(started, suffix, secure_connector, alice_browser):
    response = pair(alice_browser, secure_connector, started["pin"], suffix, name="   ")
    assert response.status_code == 200
    assert "Give the device a name." in response.content.decode()
    assert registration(started["rid"]).status == Registration.PENDING_USER_CONFIRMATION


def test_malformed_input_is_explained_and_not_counted_as_a_guess(
    started, suffix, secure_connector, alice_browser
):
    response = pair(alice_browser, secure_connector, "O0I1L", "xyz!")
    page = response.content.decode()
    assert response.status_code == 200
    assert "never holds 0, 1, I, L or O" in page
    assert "0-9, A-F" in page
    assert registration(started["rid"]).failed_attempts == 0
    assert not Event.objects.filter(kind="pair_failed").exists()


def test_confirming_without_finding_the_device_first_goes_back_to_the_pin(alice_browser):
    response = alice_browser.post("/pair/confirm/", {"name": "Mine now"})
    assert response.status_code == 302 and response["Location"] == "/pair/"


def test_wrong_serial_digits_count_against_the_registration_and_the_user(
    started, secure_connector, alice_browser
):
    response = pair(alice_browser, secure_connector, started["pin"], "0000")
    assert response.status_code == 200
    assert "No device waiting to be paired matches" in response.content.decode()
    counted = registration(started["rid"])
    assert counted.wrong_serial_attempts == 1 and counted.failed_attempts == 0
    assert PairingGuess.objects.get(registration=counted).wrong == 1
    reasons = list(Event.objects.filter(kind="pair_failed").values_list("reason", flat=True))
    assert reasons == [
        f"user alice: wrong serial digits with this registration's PIN for registration "
        f"{started['rid']} (1 of 5)"
    ]


def test_a_wrong_pin_is_logged_with_the_requests_count_of_all_accounts(
    started, suffix, secure_connector, alice_browser
):
    assert pair(alice_browser, secure_connector, wrong_pin(started["pin"]), suffix).status_code
    reasons = list(Event.objects.filter(kind="pair_failed").values_list("reason", flat=True))
    assert reasons == [f"user alice: wrong PIN for registration {started['rid']} (1 of 1000)"]


def test_wrong_serial_digits_typed_with_the_pin_lock_the_request_after_five(
    started, secure_client, secure_connector, django_user_model
):
    # Whoever types the request's PIN saw it; the serial digits are then the only
    # secret left (65,536 values), so all accounts together get five tries at them.
    for stranger in signed_in_strangers(django_user_model, 5):
        assert pair(stranger, secure_connector, started["pin"], "0000").status_code == 200
    locked = registration(started["rid"])
    assert locked.status == Registration.EXPIRED and locked.locked_at is not None
    assert locked.wrong_serial_attempts == 5 and locked.failed_attempts == 0
    assert secure_client.status(started["rid"]).json() == {"data": {"status": "EXPIRED"}}


def test_a_brute_forced_registration_is_locked_and_the_device_must_start_again(
    started, suffix, secure_client, secure_connector, settings, django_user_model
):
    # Several accounts share the guesses, so only the per-registration count stops them.
    settings.PAIRING_MAX_ATTEMPTS_TOTAL = 10
    for guesser in signed_in_strangers(django_user_model, 2, prefix="guesser"):
        for _ in range(5):
            pair(guesser, secure_connector, wrong_pin(started["pin"]), suffix)
    locked = registration(started["rid"])
    assert locked.status == Registration.EXPIRED and locked.locked_at is not None
    assert locked.failed_attempts == 10

    # Even the right PIN is refused now, with a message that says why.
    owner = Client()
    owner.force_login(django_user_model.objects.create_user("rightful-owner"))
    response = pair(owner, secure_connector, started["pin"], suffix)
    assert response.status_code == 200
    assert "locked after too many wrong guesses" in response.content.decode()
    assert secure_client.status(started["rid"]).json() == {"data": {"status": "EXPIRED"}}
    assert Event.objects.filter(kind="pair_failed", reason__contains="locked after 10").exists()
    # A fresh request gets a fresh PIN that pairs.
    fresh = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    assert pair(owner, secure_connector, fresh["pin"], suffix).status_code == 302


def test_a_user_who_keeps_guessing_is_slowed_down_and_the_log_says_so(
    started, suffix, secure_connector, alice_browser, settings, caplog
):
    settings.PAIRING_MAX_ATTEMPTS = 100
    for _ in range(5):
        assert pair(alice_browser, secure_connector, "AAAAAAAA", "FFFF").status_code == 200
    response = pair(alice_browser, secure_connector, started["pin"], suffix)
    assert response.status_code == 429
    assert "Too many wrong guesses" in response.content.decode()
    # Slowed down means even the right answer waits.
    assert registration(started["rid"]).status == Registration.PENDING_USER_CONFIRMATION
    assert "user alice slowed down after 5 wrong pairing guesses within 900 s" in caplog.text
    assert not registration(started["rid"]).failed_attempts


def test_an_expired_registration_refuses_pairing_with_a_message(
    started, suffix, secure_connector, alice_browser
):
    found = alice_browser.post(
        "/pair/",
        {"pin": started["pin"], "serial_suffix": suffix},
    )
    assert found.status_code == 302
    Registration.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = alice_browser.post("/pair/confirm/", {"name": "Too late"}, follow=True)
    assert "This pairing request has expired" in response.content.decode()
    assert registration(started["rid"]).status == Registration.EXPIRED

    # Typed again after it expired, the PIN says the same, not "wrong PIN".
    Registration.objects.update(status=Registration.PENDING_USER_CONFIRMATION)
    Registration.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = alice_browser.post(
        "/pair/",
        {"pin": started["pin"], "serial_suffix": suffix},
    )
    assert "This pairing request has expired" in response.content.decode()


def test_a_registration_revoked_while_the_user_confirms_is_refused(
    started, suffix, secure_client, secure_connector, alice_browser
):
    alice_browser.post(
        "/pair/",
        {"pin": started["pin"], "serial_suffix": suffix},
    )
    secure_client.initiate(secure_connector, "a1b2c3d4")
    response = alice_browser.post("/pair/confirm/", {"name": "Hall"}, follow=True)
    assert "no longer waiting for you" in response.content.decode()
    assert registration(started["rid"]).user is None


def test_a_right_guess_counts_against_neither_the_user_nor_the_registration(
    started, suffix, secure_connector, alice_browser, settings
):
    settings.PAIRING_MAX_ATTEMPTS = 100
    for _ in range(4):
        wrong = pair(alice_browser, secure_connector, wrong_pin(started["pin"]), suffix)
        assert wrong.status_code == 200
    found = alice_browser.post("/pair/", {"pin": started["pin"], "serial_suffix": suffix})
    assert found.status_code == 302
    assert registration(started["rid"]).failed_attempts == 4
    # The right guess was given back: one wrong guess is still allowed, then no more.
    assert pair(alice_browser, secure_connector, "AAAAAAAA", "FFFF").status_code == 200
    assert pair(alice_browser, secure_connector, "AAAAAAAA", "FFFF").status_code == 429


def test_the_last_of_a_registrations_guesses_may_be_the_right_one(
    started, suffix, secure_connector, settings, django_user_model
):
    settings.PAIRING_MAX_ATTEMPTS_TOTAL = 9
    for guesser in signed_in_strangers(django_user_model, 2, prefix="guesser"):
        for _ in range(4):
            pair(guesser, secure_connector, wrong_pin(started["pin"]), suffix)
    owner = Client()
    owner.force_login(django_user_model.objects.create_user("rightful-owner"))
    assert pair(owner, secure_connector, started["pin"], suffix).status_code == 302
    paired = registration(started["rid"])
    assert paired.status == Registration.PENDING_DEVICE_COMPLETION and paired.locked_at is None
    assert paired.failed_attempts == settings.PAIRING_MAX_ATTEMPTS_TOTAL - 1


def signed_in_strangers(django_user_model, count: int, prefix: str = "stranger") -> list[Client]:
    """Accounts of other tenants' users: signed in, owning nothing, knowing no PIN."""
    browsers = []
    for number in range(count):
        browser = Client()
        browser.force_login(django_user_model.objects.create_user(f"{prefix}{number}"))
        browsers.append(browser)
    return browsers


def test_a_strangers_wrong_guesses_do_not_stop_the_owner_pairing(
    started, suffix, secure_connector, alice_browser, django_user_model, settings
):
    # Three strangers who know only the serial digits each spend their whole allowance
    # on the request (15 wrong PINs, three times what locked it before).
    for stranger in signed_in_strangers(django_user_model, 3):
        for _ in range(5):
            response = pair(stranger, secure_connector, wrong_pin(started["pin"]), suffix)
            assert response.status_code == 200
            assert "No device waiting to be paired matches" in response.content.decode()
        slowed = pair(stranger, secure_connector, wrong_pin(started["pin"]), suffix)
        assert slowed.status_code == 429
    waiting = registration(started["rid"])
    assert waiting.status == Registration.PENDING_USER_CONFIRMATION and waiting.locked_at is None
    assert waiting.failed_attempts == 15

    assert pair(alice_browser, secure_connector, started["pin"], suffix).status_code == 302
    paired = registration(started["rid"])
    assert paired.status == Registration.PENDING_DEVICE_COMPLETION
    assert paired.user.username == "alice"


def test_one_account_cannot_spend_more_than_its_share_of_a_requests_guesses(
    started, suffix, secure_connector, alice_browser, django_user_model, settings
):
    # Even with a loose per-user limit, one account's wrong guesses at one request stop
    # counting (and being judged) after PAIRING_MAX_ATTEMPTS.
    settings.RATE_LIMIT_PAIRING_FAILURES = "100/900"
    (stranger,) = signed_in_strangers(django_user_model, 1)
    for _ in range(20):
        response = pair(stranger, secure_connector, wrong_pin(started["pin"]), suffix)
        assert response.status_code == 200
    assert registration(started["rid"]).failed_attempts == 5
    assert PairingGuess.objects.get(user__username="stranger0").wrong == 5
    assert Event.objects.filter(kind="pair_failed", reason__contains="stranger0").count() == 5
    # Past their share even the right PIN is not judged for them: it reads as wrong.
    response = pair(stranger, secure_connector, started["pin"], suffix)
    assert response.status_code == 200
    assert "No device waiting to be paired matches" in response.content.decode()
    assert registration(started["rid"]).status == Registration.PENDING_USER_CONFIRMATION
    # The owner pairs.
    assert pair(alice_browser, secure_connector, started["pin"], suffix).status_code == 302
    assert registration(started["rid"]).user.username == "alice"


def test_many_accounts_together_get_no_more_wrong_pins_than_the_total_cap(
    started, suffix, secure_connector, django_user_model, settings
):
    # What bounds a search of the PIN space by many accounts: their wrong PINs together.
    settings.PAIRING_MAX_ATTEMPTS_TOTAL = 12
    for guesser in signed_in_strangers(django_user_model, 4, prefix="guesser"):
        for _ in range(5):
            assert pair(guesser, secure_connector, wrong_pin(started["pin"]), suffix).status_code
    locked = registration(started["rid"])
    assert locked.failed_attempts == 12
    assert locked.status == Registration.EXPIRED and locked.locked_at is not None
    assert sum(PairingGuess.objects.values_list("wrong", flat=True)) == 12
    # Locked means locked: the right PIN is refused and said so, and nothing more counts.
    (owner,) = signed_in_strangers(django_user_model, 1, prefix="owner")
    response = pair(owner, secure_connector, started["pin"], suffix)
    assert "locked after too many wrong guesses" in response.content.decode()
    assert registration(started["rid"]).failed_attempts == 12
