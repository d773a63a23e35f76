"""A certificate registers only the device it speaks for (docs/secure-registration.md: "403: Client
certificates do not match the info in the request"), so a device with a trusted
certificate cannot squat another device's registration, revoke it or own its identity."""

from types import SimpleNamespace

import pytest

from audit.models import Event
from certificates import services as certificate_services
from certificates.models import IssuedCertificate
from devices import services as device_services
from devices.models import Device
from registrations.models import Registration
from tests.support.secure_devices import (
    SecureDeviceClient,
    pair,
    register,
    registration,
    serial_suffix_of,
)
from tests.support.tls import make_certificate

pytestmark = pytest.mark.django_db

MISMATCH = {
    "error": {"code": 403, "message": "Client certificates do not match the info in the request"}
}


@pytest.fixture
def squatter(device_ca):
    """Another device of the same vendor: its certificate is trusted, for its own id."""
    return SecureDeviceClient(make_certificate("ffff0001", issuer=device_ca))


def test_a_trusted_certificate_cannot_start_a_registration_for_another_device(
    secure_client, secure_connector, squatter
):
    genuine = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]

    response = squatter.initiate(secure_connector, "a1b2c3d4")

    assert response.status_code == 403
    assert response.json() == MISMATCH
    # The genuine request is untouched: not revoked, no second request.
    assert registration(genuine["rid"]).status == Registration.PENDING_USER_CONFIRMATION
    assert Registration.objects.count() == 1
    refused = Event.objects.get(kind="auth_failed", identity="a1b2c3d4")
    assert 'is for "ffff0001", not this device' in refused.reason
    # Its own identity it may register.
    assert squatter.initiate(secure_connector, "ffff0001").status_code == 200


def test_a_squatter_cannot_take_a_device_its_owner_is_pairing(
    secure_client, secure_connector, squatter, alice, alice_browser
):
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    paired = pair(
        alice_browser, secure_connector, started["pin"], serial_suffix_of(secure_client.issued)
    )
    assert paired.status_code == 302

    assert squatter.initiate(secure_connector, "a1b2c3d4").json() == MISMATCH
    assert squatter.status(started["rid"]).status_code == 403
    assert squatter.complete(started["rid"], started["nonce"]).status_code == 403

    done = secure_client.complete(started["rid"], started["nonce"])
    assert done.status_code == 200
    device = Device.objects.get(connector=secure_connector, identity="a1b2c3d4")
    assert device.owner == alice


def test_the_vendor_id_is_compared_through_the_identity_format(
    secure_connector, device_ca, secure_client
):
    secure_connector.identity_type, secure_connector.identity_length = "hex", 8
    secure_connector.save()
    upper = SecureDeviceClient(make_certificate("A1B2C3D4", issuer=device_ca))
    assert upper.initiate(secure_connector, "a1b2c3d4").status_code == 200
    assert secure_client.initiate(secure_connector, "A1B2C3D4").status_code == 200


@pytest.mark.parametrize("common_name", ["Thermostat", "a1b2c3d4 ", "a1b2c3d4x"])
def test_a_certificate_naming_no_device_of_the_connector_registers_nothing(
    secure_connector, device_ca, common_name
):
    secure_connector.identity_type, secure_connector.identity_length = "hex", 8
    secure_connector.save()
    client = SecureDeviceClient(make_certificate(common_name, issuer=device_ca))
    response = client.initiate(secure_connector, "a1b2c3d4")
    assert response.json() == MISMATCH
    assert not Registration.objects.exists()


def test_a_reissued_certificate_for_the_same_device_registers_it_and_revokes_the_earlier(
    secure_client, secure_connector, device_ca
):
    first = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    reissued = SecureDeviceClient(make_certificate("a1b2c3d4", issuer=device_ca))

    response = reissued.initiate(secure_connector, "a1b2c3d4")

    assert response.status_code == 200
    second = response.json()["data"]
    assert registration(first["rid"]).status == Registration.REVOKED
    # Each request still answers only the certificate that started it.
    assert reissued.status(first["rid"]).status_code == 403
    assert secure_client.status(second["rid"]).status_code == 403
    assert secure_client.complete(second["rid"], second["nonce"]).status_code == 403
    assert reissued.status(second["rid"]).json() == {
        "data": {"status": "PENDING_USER_CONFIRMATION"}
    }


def _connector_ca_client(issued) -> SecureDeviceClient:
    return SecureDeviceClient(SimpleNamespace(cert_pem=issued.certificate.certificate_pem))


def test_a_certificate_from_the_connector_ca_registers_the_device_it_was_issued_for(
    secure_client, secure_connector, alice_browser
):
    authority = certificate_services.create_authority(secure_connector)
    for_device = certificate_services.issue_certificate(authority, common_name="0000beef")
    client = _connector_ca_client(for_device)

    assert client.initiate(secure_connector, "a1b2c3d4").json() == MISMATCH
    assert client.initiate(secure_connector, "0000beef").status_code == 200


def test_a_generated_certificate_speaks_for_the_device_it_is_bound_to_and_no_other(
    secure_connector,
):
    authority = certificate_services.create_authority(secure_connector)
    device_services.whitelist_device(secure_connector, "0000cafe")
    generated = certificate_services.generate_certificate(secure_connector)
    client = _connector_ca_client(generated)
    # Not provisioned yet: inactive, trusted for nothing.
    inactive = client.initiate(secure_connector, "0000cafe")
    assert inactive.status_code == 403
    assert "inactive" in inactive.json()["error"]["message"]

    certificate_services.provision_certificate(
        secure_connector,
        fingerprint=generated.certificate.fingerprint,
        identity="0000cafe",
        topics=[],
    )
    assert IssuedCertificate.objects.get(authority=authority).device.identity == "0000cafe"
    assert client.initiate(secure_connector, "a1b2c3d4").json() == MISMATCH
    # Its own device is known, and already registered by the binding.
    assert client.initiate(secure_connector, "0000cafe").status_code == 409


def test_a_device_registered_by_its_certificate_is_not_taken_over_by_another(
    secure_client, secure_connector, squatter, alice_browser
):
    done = register(secure_client, alice_browser, secure_connector)
    assert squatter.initiate(secure_connector, "a1b2c3d4").json() == MISMATCH
    assert registration(done["rid"]).status == Registration.REGISTERED
