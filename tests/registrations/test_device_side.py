"""Secure registration, the device's side (docs/secure-registration.md): every status and
error code."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from devices.models import Device
from registrations import services
from registrations.models import Registration, SecureDevice
from registrations.tasks import expire_registrations, purge_old_records
from tests.support.secure_devices import (
    REGISTRATIONS,
    SecureDeviceClient,
    pair,
    register,
    registration,
    serial_suffix_of,
)
from tests.support.tls import make_ca, make_certificate

pytestmark = pytest.mark.django_db

HEX32 = re.compile(r"[0-9a-f]{32}")


def kinds(identity: str) -> list[str]:
    return list(
        Event.objects.filter(identity=identity).order_by("id").values_list("kind", flat=True)
    )


def test_initiate_answers_rid_pin_nonce_and_expiry_in_milliseconds(secure_client, secure_connector):
    before = time.time()
    response = secure_client.initiate(secure_connector, "a1b2c3d4")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    data = response.json()["data"]
    assert set(data) == {"rid", "pin", "nonce", "expiresOn"}
    assert HEX32.fullmatch(data["rid"]) and HEX32.fullmatch(data["nonce"])
    assert len(data["pin"]) == 8 and set(data["pin"]) <= set(services.PIN_ALPHABET)
    window = 15 * 60 * 1000
    assert before * 1000 + window - 5000 <= data["expiresOn"] <= time.time() * 1000 + window
    stored = registration(data["rid"])
    assert stored.status == Registration.PENDING_USER_CONFIRMATION
    # Neither secret is kept in clear.
    assert data["nonce"] not in stored.nonce_hash and data["pin"] not in stored.pin_hash
    assert kinds("a1b2c3d4") == ["register"]


def test_the_whole_flow_moves_through_every_pending_status_to_registered(
    secure_client, secure_connector, alice, alice_browser
):
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    assert secure_client.status(started["rid"]).json() == {
        "data": {"status": "PENDING_USER_CONFIRMATION"}
    }
    confirmed = pair(
        alice_browser, secure_connector, started["pin"], serial_suffix_of(secure_client.issued)
    )
    assert confirmed.status_code == 302
    assert secure_client.status(started["rid"]).json() == {
        "data": {"status": "PENDING_DEVICE_COMPLETION"}
    }

    response = secure_client.complete(started["rid"], started["nonce"])
    assert response.status_code == 200
    done = response.json()["data"]
    assert set(done) == {"accessToken", "uid", "did"}
    assert HEX32.fullmatch(done["accessToken"]) and HEX32.fullmatch(done["did"])
    assert done["uid"] == services.public_user_id(alice)

    status = secure_client.status(started["rid"]).json()["data"]
    assert status == {"status": "REGISTERED", "did": done["did"]}
    device = Device.objects.get(connector=secure_connector, identity="a1b2c3d4")
    assert device.status == Device.PROVISIONED
    assert device.owner == alice and device.name == "Hall thermostat"
    secure = SecureDevice.objects.get(device=device)
    assert secure.did == done["did"] and done["accessToken"] not in secure.token_hash
    assert kinds("a1b2c3d4") == ["register", "pair", "provision"]


def test_a_whitelisted_entry_is_claimed_by_its_registration(
    secure_client, secure_connector, alice_browser, whitelist
):
    whitelist(secure_connector, "a1b2c3d4")
    done = register(secure_client, alice_browser, secure_connector)
    device = Device.objects.get(identity="a1b2c3d4")
    assert device.status == Device.PROVISIONED and device.secure.did == done["did"]


def test_initiate_without_a_client_certificate_is_403(secure_connector):
    response = SecureDeviceClient(None).initiate(secure_connector, "a1b2c3d4")
    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": 403, "message": "a client certificate is required"}
    }
    assert not Registration.objects.exists()


def test_a_certificate_from_an_untrusted_ca_is_403_and_logged(secure_connector):
    stranger = make_certificate("a1b2c3d4", issuer=make_ca("Someone else's CA"))
    response = SecureDeviceClient(stranger).initiate(secure_connector, "a1b2c3d4")
    assert response.status_code == 403
    assert "not trusted" in response.json()["error"]["message"]
    assert not Registration.objects.exists()
    assert Event.objects.filter(kind="auth_failed").count() == 1


def test_an_expired_certificate_is_403(secure_connector, device_ca):
    now = timezone.now()
    old = make_certificate(
        "a1b2c3d4",
        issuer=device_ca,
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    assert SecureDeviceClient(old).initiate(secure_connector, "a1b2c3d4").status_code == 403


def test_a_certificate_header_not_sent_by_the_proxy_is_ignored(
    secure_client, secure_connector, settings
):
    settings.TRUSTED_PROXIES = ["127.0.0.2"]
    response = secure_client.initiate(secure_connector, "a1b2c3d4")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "a client certificate is required"


def test_status_with_another_certificate_is_403(secure_client, secure_connector, device_ca):
    rid = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]["rid"]
    sibling = SecureDeviceClient(make_certificate("thermostat-other", issuer=device_ca))
    response = sibling.status(rid)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == 403
    assert sibling.complete(rid, "0" * 32).status_code == 403
    assert registration(rid).status == Registration.PENDING_USER_CONFIRMATION


def test_unknown_rid_is_404(secure_client, secure_connector):
    for rid in ["0" * 32, "not-a-rid", "A" * 32]:
        response = secure_client.status(rid)
        assert response.status_code == 404
        assert response.json() == {"error": {"code": 404, "message": "no such registration"}}
    assert secure_client.complete("0" * 32, "0" * 32).status_code == 404


def test_unknown_device_type_is_404(secure_client):
    response = secure_client.send_json(
        "POST", REGISTRATIONS, {"deviceTypeId": "dt" + "0" * 32, "vendorDeviceId": "a1b2c3d4"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no such device type"


def test_vendor_device_id_outside_the_identity_format_is_400_and_says_why(
    secure_client, secure_connector
):
    secure_connector.identity_type, secure_connector.identity_length = "hex", 8
    secure_connector.save()
    response = secure_client.initiate(secure_connector, "not-hex!")
    assert response.status_code == 400
    assert "exactly 8 hexadecimal digits" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1, 2]",
        '"text"',
        '{"deviceTypeId": 5, "vendorDeviceId": "a"}',
        "{}",
        "[" * 30000 + "]" * 30000,
        b"\xff\xfe{}",
    ],
)
def test_malformed_initiate_bodies_are_400(secure_client, secure_connector, body):
    response = secure_client.send_json("POST", REGISTRATIONS, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
    assert not Registration.objects.exists()


def test_a_wrong_method_is_405_in_the_same_error_shape(secure_client):
    response = secure_client.get(REGISTRATIONS)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == 405
    assert response["Allow"] == "POST, OPTIONS"


def test_an_already_registered_device_is_409(secure_client, secure_connector, alice_browser):
    register(secure_client, alice_browser, secure_connector)
    response = secure_client.initiate(secure_connector, "a1b2c3d4")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == 409
    assert Registration.objects.count() == 1


def test_a_new_request_revokes_the_earlier_one(secure_client, secure_connector, alice_browser):
    first = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    second = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    assert secure_client.status(first["rid"]).json() == {"data": {"status": "REVOKED"}}
    assert secure_client.status(second["rid"]).json() == {
        "data": {"status": "PENDING_USER_CONFIRMATION"}
    }
    # The old PIN no longer pairs anything.
    refused = pair(
        alice_browser, secure_connector, first["pin"], serial_suffix_of(secure_client.issued)
    )
    assert refused.status_code == 200
    assert registration(first["rid"]).user is None
    assert "revoked by a newer one" in Event.objects.filter(kind="register")[1].reason


def test_a_request_past_its_deadline_reads_expired(secure_client, secure_connector):
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    Registration.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert secure_client.status(started["rid"]).json() == {"data": {"status": "EXPIRED"}}
    response = secure_client.complete(started["rid"], started["nonce"])
    assert response.status_code == 410
    assert response.json()["error"]["message"] == "this registration is expired"
    assert kinds("a1b2c3d4") == ["register", "expire"]


def test_the_periodic_task_expires_pending_requests_once(
    secure_client, secure_connector, device_ca
):
    secure_client.initiate(secure_connector, "a1b2c3d4")
    SecureDeviceClient(make_certificate("e5f6a7b8", issuer=device_ca)).initiate(
        secure_connector, "e5f6a7b8"
    )
    Registration.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_registrations.apply().get() == 2
    assert expire_registrations.apply().get() == 0
    assert set(Registration.objects.values_list("status", flat=True)) == {"EXPIRED"}
    assert sorted(Event.objects.filter(kind="expire").values_list("reason", flat=True)) == sorted(
        f"registration {rid} expired before it was completed"
        for rid in Registration.objects.values_list("rid", flat=True)
    )


def test_completing_before_the_user_confirms_is_409(secure_client, secure_connector):
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    response = secure_client.complete(started["rid"], started["nonce"])
    assert response.status_code == 409
    assert "not confirmed" in response.json()["error"]["message"]
    assert not Device.objects.exists()


def test_a_wrong_nonce_is_403_and_changes_nothing(secure_client, secure_connector, alice_browser):
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    pair(alice_browser, secure_connector, started["pin"], serial_suffix_of(secure_client.issued))
    for nonce in ["f" * 32, "", None, 42]:
        response = secure_client.complete(started["rid"], nonce)
        assert response.status_code in (400, 403)
    assert registration(started["rid"]).status == Registration.PENDING_DEVICE_COMPLETION
    assert not Device.objects.exists()
    assert secure_client.complete(started["rid"], started["nonce"]).status_code == 200


def test_completing_twice_is_409_and_issues_no_second_token(
    secure_client, secure_connector, alice_browser
):
    done = register(secure_client, alice_browser, secure_connector)
    started_nonce = "irrelevant"
    response = secure_client.complete(done["rid"], started_nonce)
    assert response.status_code == 409
    assert SecureDevice.objects.count() == 1


def test_initiating_too_often_with_one_certificate_is_429(
    secure_client, secure_connector, settings
):
    settings.RATE_LIMIT_REGISTRATION = "2/60"
    assert secure_client.initiate(secure_connector, "a1b2c3d4").status_code == 200
    assert secure_client.initiate(secure_connector, "a1b2c3d4").status_code == 200
    response = secure_client.initiate(secure_connector, "a1b2c3d4")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == 429


def test_ended_requests_past_the_event_retention_are_purged_pending_ones_kept(
    secure_client, secure_connector, device_ca, settings
):
    settings.EVENT_RETENTION_DAYS = 30
    old = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    secure_client.initiate(secure_connector, "a1b2c3d4")
    SecureDeviceClient(make_certificate("e5f6a7b8", issuer=device_ca)).initiate(
        secure_connector, "e5f6a7b8"
    )
    Registration.objects.update(created_at=timezone.now() - timedelta(days=31))
    assert purge_old_records.apply().get()["registration"] == 1
    assert not Registration.objects.filter(rid=old["rid"]).exists()
    assert Registration.objects.count() == 2
