"""Every change to what authenticates a device goes through credentials_changed():
the credential version goes up, the generation stamps change (so web processes
forget what they remembered) and receivers hear of it once the change commits."""

from urllib.parse import quote

import pytest

from certificates import services as certificate_services
from connectors import services as connector_services
from core import generations
from devices import services
from devices.models import Device
from devices.signals import CredentialChange, credentials_changed
from tests.support.clients import DeviceClient, basic, through_proxy
from tests.support.secure_devices import register, trust
from tests.support.tls import make_ca, make_certificate

# Real commits: receivers hear of a change only once it has committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard():
    """The changes receivers heard, in order."""
    changes: list[CredentialChange] = []

    def receiver(sender, **kwargs):
        changes.extend(kwargs["changes"])

    credentials_changed.connect(receiver, dispatch_uid="test-heard")
    yield changes
    credentials_changed.disconnect(dispatch_uid="test-heard")


def device_stamp(device_pk: int) -> int:
    return generations.read([generations.device_key(device_pk)])[0]


def connector_stamp(connector_id: str) -> int:
    return generations.read([generations.connector_key(connector_id)])[0]


def version(device_pk: int) -> int:
    return Device.objects.get(pk=device_pk).credential_version


def provisioned(connector, identity: str) -> Device:
    device = services.whitelist_device(connector, identity)
    services.activate_device(connector, identity, None, "127.0.0.1")
    return Device.objects.get(pk=device.pk)


def test_a_token_activation_bumps_version_and_stamp_and_is_heard(connector, heard):
    device = services.whitelist_device(connector, "00000001")
    stamp = device_stamp(device.pk)
    response = DeviceClient(connector).activate("00000001")
    assert response.status_code == 200
    assert version(device.pk) == 1
    assert device_stamp(device.pk) != stamp
    assert heard == [CredentialChange("provisioned", connector.pk, device.pk, "00000001")]


def test_a_password_activation_is_heard(make_connector, heard):
    connector = make_connector(auth_mode="password", identity_type="base10", identity_length=8)
    device = services.whitelist_device(connector, "00000002")
    stamp = device_stamp(device.pk)
    response = DeviceClient(connector).activate("00000002", "p" * 24)
    assert response.status_code == 204
    assert (version(device.pk), heard) == (
        1,
        [CredentialChange("provisioned", connector.pk, device.pk, "00000002")],
    )
    assert device_stamp(device.pk) != stamp


def test_a_refused_activation_changes_nothing(connector, heard):
    device = provisioned(connector, "00000001")
    heard.clear()
    stamp = device_stamp(device.pk)
    assert DeviceClient(connector).activate("00000001").status_code == 409
    assert (heard, device_stamp(device.pk), version(device.pk)) == ([], stamp, 1)


@pytest.mark.parametrize("action", ["reset", "revoked", "deleted"])
def test_reset_revoke_and_delete_are_heard(connector, heard, action):
    device = provisioned(connector, "00000001")
    heard.clear()
    stamp = device_stamp(device.pk)
    change = {
        "reset": services.reset_device,
        "revoked": services.revoke_device,
        "deleted": services.delete_device,
    }[action]
    device_pk = device.pk  # delete() forgets it
    change(device)
    assert heard == [CredentialChange(action, connector.pk, device_pk, "00000001")]
    assert device_stamp(device_pk) != stamp
    if action != "deleted":
        assert version(device_pk) == 2


def test_a_rolled_back_change_is_not_heard(connector, heard):
    from django.db import transaction

    device = provisioned(connector, "00000001")
    heard.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.revoke_device(device)
        raise RuntimeError("rolled back")
    assert heard == []
    assert Device.objects.get(pk=device.pk).status == Device.PROVISIONED


def send_certificate(connector, cert_pem):
    return DeviceClient(connector).post(
        "/api:v1/stack/alias",
        "myalias=1",
        content_type="application/x-www-form-urlencoded",
        **through_proxy(HTTP_X_SSL_CLIENT_CERT=quote(cert_pem)),
    )


def test_a_certificate_provisioning_on_first_use_is_heard(cert_connector, heard):
    device = services.whitelist_device(cert_connector, "00000001")
    stamp = device_stamp(device.pk)
    certificate = make_certificate("00000001").cert_pem
    assert send_certificate(cert_connector, certificate).status_code == 204
    assert heard == [CredentialChange("provisioned", cert_connector.pk, device.pk, "00000001")]
    assert (version(device.pk), device_stamp(device.pk) != stamp) == (1, True)


def test_revoking_a_certificate_is_heard(cert_connector, heard):
    device = services.whitelist_device(cert_connector, "00000001")
    cert = make_certificate("00000001")
    assert send_certificate(cert_connector, cert.cert_pem).status_code == 204
    heard.clear()
    stamp = device_stamp(device.pk)
    fingerprint = device.credentials.get().fingerprint
    certificate_services.revoke_certificate(cert_connector, fingerprint)
    assert heard == [
        CredentialChange("certificate_revoked", cert_connector.pk, device.pk, "00000001")
    ]
    assert (version(device.pk), device_stamp(device.pk) != stamp) == (2, True)
    assert send_certificate(cert_connector, cert.cert_pem).status_code == 401


def test_binding_an_issued_certificate_is_heard_for_a_provisioned_device_too(cert_connector, heard):
    certificate_services.create_authority(cert_connector)
    device = services.whitelist_device(cert_connector, "00000001")
    for expected_version in (1, 2):
        issued = certificate_services.generate_certificate(cert_connector)
        heard.clear()
        stamp = device_stamp(device.pk)
        certificate_services.provision_certificate(
            cert_connector,
            fingerprint=issued.certificate.fingerprint,
            identity="00000001",
            topics=[],
        )
        assert heard == [
            CredentialChange("certificate_bound", cert_connector.pk, device.pk, "00000001")
        ]
        assert version(device.pk) == expected_version
        assert device_stamp(device.pk) != stamp


def test_pinning_a_certificate_is_heard(cert_connector, heard):
    device = services.whitelist_device(cert_connector, "00000001")
    stamp = device_stamp(device.pk)
    services.pin_certificate(device, make_certificate("00000001").cert_pem)
    assert heard == [
        CredentialChange("certificate_pinned", cert_connector.pk, device.pk, "00000001")
    ]
    assert device_stamp(device.pk) != stamp


def test_trust_anchor_changes_are_heard_for_the_whole_connector(cert_connector, heard):
    anchor = trust(cert_connector, make_ca("Vendor CA"))
    for change in (
        lambda: certificate_services.set_trust_anchor_enabled(anchor, False),
        lambda: certificate_services.delete_trust_anchor(anchor),
    ):
        heard.clear()
        stamp = connector_stamp(cert_connector.pk)
        change()
        assert heard == [CredentialChange("trust_changed", cert_connector.pk)]
        assert connector_stamp(cert_connector.pk) != stamp


def test_deleting_a_ca_in_the_admin_is_heard(cert_connector, heard, admin_client):
    authority = certificate_services.create_authority(cert_connector)
    stamp = connector_stamp(cert_connector.pk)
    response = admin_client.post(
        f"/admin/certificates/certificateauthority/{authority.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert heard == [CredentialChange("trust_changed", cert_connector.pk)]
    assert connector_stamp(cert_connector.pk) != stamp


def test_deleting_a_connector_is_heard(connector, heard):
    provisioned(connector, "00000001")
    heard.clear()
    connector_id = connector.pk  # delete() forgets it
    stamp = connector_stamp(connector_id)
    connector_services.delete_connector(connector, actor=None)
    assert heard == [CredentialChange("connector_deleted", connector_id)]
    assert connector_stamp(connector_id) != stamp


def test_completing_a_secure_registration_is_heard(
    secure_client, alice_browser, secure_connector, heard
):
    register(secure_client, alice_browser, secure_connector)
    device = Device.objects.get(identity="a1b2c3d4")
    assert heard == [CredentialChange("registered", secure_connector.pk, device.pk, "a1b2c3d4")]


def test_a_second_registration_of_a_known_device_bumps_its_version(
    secure_client, alice_browser, secure_connector, heard, whitelist
):
    device = whitelist(secure_connector, "a1b2c3d4")
    stamp = device_stamp(device.pk)
    register(secure_client, alice_browser, secure_connector)
    assert heard == [CredentialChange("registered", secure_connector.pk, device.pk, "a1b2c3d4")]
    assert (version(device.pk), device_stamp(device.pk) != stamp) == (1, True)


def test_a_remembered_basic_credential_is_refused_once_the_device_is_reset(make_connector, heard):
    """The stamp is what a web process checks before using what it remembered."""
    connector = make_connector(
        auth_mode="password", identity_type="base10", identity_length=8,
        _resources={"myalias": "number"},
    )  # fmt: skip
    services.whitelist_device(connector, "00000003")
    client = DeviceClient(connector)
    assert client.activate("00000003", "p" * 24).status_code == 204
    credential = basic("00000003", "p" * 24)
    assert client.write("myalias=1", credential).status_code == 204
    services.reset_device(Device.objects.get(identity="00000003"))
    assert client.write("myalias=2", credential).status_code == 401
