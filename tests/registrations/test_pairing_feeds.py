"""The feeds the pairing pages poll while a pairing runs: the confirm page's request
(the one in the user's session) and My devices' waiting requests. Each answers the
signed-in user's own requests only."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from registrations.forms import PairingForm
from registrations.models import Registration
from tests.support.secure_devices import pair, registration

pytestmark = pytest.mark.django_db

FEED = "/my/devices/feed/"
STATUS = "/pair/confirm/status/"


@pytest.fixture
def found(started, suffix, alice_browser):
    """Alice typed the right PIN and serial digits: the request is in her session."""
    response = alice_browser.post("/pair/", {"pin": started["pin"], "serial_suffix": suffix})
    assert response.status_code == 302
    return started


@pytest.fixture
def confirmed(found, alice_browser):
    """Alice confirmed the request: it waits for the device."""
    response = alice_browser.post("/pair/confirm/", {"name": "Hall thermostat"})
    assert response.status_code == 302
    return found


@pytest.fixture
def bob_browser(django_user_model):
    browser = Client()
    browser.force_login(django_user_model.objects.create_user("bob"))
    return browser


def feed(browser, seen=""):
    response = browser.get(FEED, {"seen": seen})
    assert response.status_code == 200, response.content
    return response.json()


# --- My devices' feed ----------------------------------------------------------------


def test_the_feed_needs_a_signed_in_user(confirmed):
    for path in (FEED, STATUS):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_feed_lists_the_users_waiting_request_and_the_list_as_the_page_shows_it(
    confirmed, alice_browser, secure_connector
):
    answer = feed(alice_browser)
    waiting = registration(confirmed["rid"])
    assert answer["waiting"] == [{"id": waiting.pk, "name": "Hall thermostat"}]
    assert answer["ended"] == []
    assert "Waiting for the device" in answer["html"]
    assert f'data-registration="{waiting.pk}"' in answer["html"]
    # The device type by its name, never its connector id; no rid, PIN or nonce.
    assert "Acme Thermostat" in answer["html"]
    text = str(answer)
    for secret in (secure_connector.pk, confirmed["rid"], confirmed["pin"], confirmed["nonce"]):
        assert secret not in text
    page = alice_browser.get("/my/devices/").content.decode()
    assert f'data-version="{answer["version"]}"' in page


def test_the_feed_sends_the_list_only_when_it_changed(confirmed, alice_browser):
    response = alice_browser.get(FEED)
    assert "no-store" in response["Cache-Control"]
    version = response.json()["version"]
    unchanged = feed(alice_browser, version)
    assert unchanged["version"] == version and "html" not in unchanged


def test_a_finished_registration_leaves_the_waiting_list_and_its_device_is_listed(
    confirmed, alice_browser, secure_client
):
    before = feed(alice_browser)
    done = secure_client.complete(confirmed["rid"], confirmed["nonce"])
    assert done.status_code == 200
    after = feed(alice_browser, before["version"])
    assert after["version"] != before["version"]
    assert after["waiting"] == []
    [ended] = after["ended"]
    assert ended["id"] == before["waiting"][0]["id"] and ended["outcome"] == "paired"
    assert ended["message"] == "Hall thermostat finished its registration and is now in your list."
    assert "Waiting for the device" not in after["html"]
    assert "Hall thermostat" in after["html"] and "You have no devices yet" not in after["html"]


def test_an_expired_or_cancelled_request_is_reported_as_such(
    confirmed, alice_browser, secure_client, secure_connector
):
    Registration.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    [ended] = feed(alice_browser)["ended"]
    assert (
        ended["outcome"] == "expired"
        and "did not finish its registration in time" in (ended["message"])
    )
    # Polling changed nothing: the sweep ends the request.
    assert registration(confirmed["rid"]).status == Registration.PENDING_DEVICE_COMPLETION

    Registration.objects.update(expires_at=timezone.now() + timedelta(minutes=5))
    assert secure_client.initiate(secure_connector, "a1b2c3d4").status_code == 200
    answer = feed(alice_browser)
    assert answer["waiting"] == []
    [ended] = answer["ended"]
    assert ended["outcome"] == "cancelled" and "started a new registration" in ended["message"]


def test_another_users_feed_shows_nothing_of_alices_requests(confirmed, bob_browser):
    answer = feed(bob_browser)
    assert answer["waiting"] == [] and answer["ended"] == []
    assert "Hall thermostat" not in answer["html"]
    assert "data-registration" not in answer["html"]
    assert "You have no devices yet" in answer["html"]


def test_a_bad_version_is_a_400_and_other_methods_a_405(confirmed, alice_browser):
    for seen in ["xyz", "0" * 15, "0" * 17, "A" * 16, "0" * 10_000]:
        response = alice_browser.get(FEED, {"seen": seen})
        assert response.status_code == 400, seen
        assert "seen" in response.json()["error"]
    # A NUL anywhere in a query is refused before any view.
    assert alice_browser.get(FEED, {"seen": "0" * 15 + "\x00"}).status_code == 400
    for method in ("post", "put", "delete"):
        assert getattr(alice_browser, method)(FEED).status_code == 405
        assert getattr(alice_browser, method)(STATUS).status_code == 405


# --- My devices' page ----------------------------------------------------------------


def test_nothing_paired_but_one_waiting_says_it_appears_once_it_finishes(confirmed, alice_browser):
    page = alice_browser.get("/my/devices/").content.decode()
    assert "Waiting for the device" in page
    assert "appears here once it finishes its registration" in page
    assert "You have no devices yet" not in page
    assert "gatehouse/my-devices.js" in page


def test_my_devices_polls_only_while_something_waits(alice_browser):
    page = alice_browser.get("/my/devices/").content.decode()
    assert "You have no devices yet" in page and "Waiting for the device" not in page
    assert "gatehouse/my-devices.js" not in page


# --- the confirm page's status -------------------------------------------------------


def status(browser):
    response = browser.get(STATUS)
    return response.status_code, response.json()


def test_the_status_of_a_request_still_waiting_for_the_user(found, alice_browser):
    assert status(alice_browser) == (200, {"state": "waiting_for_user", "message": ""})
    page = alice_browser.get("/pair/confirm/").content.decode()
    assert "gatehouse/pair-confirm.js" in page and 'data-status-url="/pair/confirm/status/"' in page


def test_without_a_request_in_the_session_the_status_is_a_404(started, alice_browser):
    code, answer = status(alice_browser)
    assert code == 404 and answer["state"] == "gone"


def test_the_status_says_the_request_expired(found, alice_browser):
    Registration.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    code, answer = status(alice_browser)
    assert code == 200 and answer["state"] == "expired"
    assert "has expired" in answer["message"]


def test_the_status_says_the_device_cancelled_the_request(
    found, alice_browser, secure_client, secure_connector
):
    assert secure_client.initiate(secure_connector, "a1b2c3d4").status_code == 200
    code, answer = status(alice_browser)
    assert code == 200 and answer["state"] == "cancelled"
    assert "Type the new PIN" in answer["message"]


def test_the_status_says_the_request_was_locked(found, alice_browser):
    Registration.objects.update(locked_at=timezone.now(), status=Registration.EXPIRED)
    assert status(alice_browser)[1]["state"] == "locked"


def test_the_status_says_another_account_paired_it_without_naming_them(
    found, suffix, alice_browser, bob_browser, secure_connector
):
    assert pair(bob_browser, secure_connector, found["pin"], suffix).status_code == 302
    code, answer = status(alice_browser)
    assert code == 200 and answer["state"] == "taken"
    assert "bob" not in answer["message"] and "Hall thermostat" not in answer["message"]
    # Bob's session holds no request: his status names none.
    assert status(bob_browser)[0] == 404


def test_the_status_is_only_ever_the_sessions_request(found, alice_browser, bob_browser):
    # No parameter names a request: one in the query is ignored.
    response = bob_browser.get(STATUS, {"rid": found["rid"]})
    assert response.status_code == 404 and response.json()["state"] == "gone"


# --- the pairing form ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "serial_suffix"),
    [
        ("ABCD EFGH", "c0ff"),
        ("abcd efgh", "C0 FF"),
        ("ABCD-EFGH", "c0:ff"),
        (" A B C D E F G H ", " c 0 f f "),
        ("ABCD\u00a0EFGH", "C0-FF"),
    ],
)
def test_spaces_case_and_separators_do_not_matter_in_the_pin_or_serial_digits(pin, serial_suffix):
    form = PairingForm({"pin": pin, "serial_suffix": serial_suffix})
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {"pin": "ABCDEFGH", "serial_suffix": "c0ff"}


@pytest.mark.parametrize(
    ("pin", "serial_suffix"),
    [("ABCD EFG", "c0ff"), ("ABCD EFG0", "c0ff"), ("ABCDEFGH", "c0f"), ("ABCDEFGH", "c0 ff e")],
)
def test_a_pin_or_serial_digits_of_the_wrong_length_or_alphabet_are_refused(pin, serial_suffix):
    assert not PairingForm({"pin": pin, "serial_suffix": serial_suffix}).is_valid()


def test_spaced_pin_and_serial_digits_pair_the_device(
    started, suffix, secure_connector, alice_browser
):
    pin = started["pin"]
    spaced = f"{suffix[:2]} {suffix[2:]}"
    response = pair(alice_browser, secure_connector, f"{pin[:4]} {pin[4:]}", spaced)
    assert response.status_code == 302
    assert registration(started["rid"]).status == Registration.PENDING_DEVICE_COMPLETION


def test_the_confirm_button_says_pair_this_device(found, alice_browser, secure_connector):
    page = alice_browser.get("/pair/confirm/").content.decode()
    assert ">Pair this device</button>" in page
    assert secure_connector.pk not in page
