"""Certificate-mode rules as the app sees them behind its proxy (the header, no TLS here)."""

from datetime import timedelta
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from django.utils import timezone

from audit.models import Event
from devices import services as device_services
from devices.models import Credential, Device
from tests.support.clients import DeviceClient, through_proxy
from tests.support.tls import make_certificate, pem

pytestmark = pytest.mark.django_db


def send(connector, cert_pem, body="myalias=1", **extra):
    return DeviceClient(connector).post(
        "/api:v1/stack/alias",
        body,
        content_type="application/x-www-form-urlencoded",
        **through_proxy(HTTP_X_SSL_CLIENT_CERT=quote(cert_pem), **extra),
    )


def reasons(identity):
    return list(
        Event.objects.filter(identity=identity).order_by("id").values_list("kind", "reason")
    )


def test_after_a_reset_the_device_provisions_again(cert_connector, whitelist):
    device = whitelist(cert_connector, "00000001")
    cert = make_certificate("00000001").cert_pem
    assert send(cert_connector, cert).status_code == 204
    device_services.reset_device(device)
    assert send(cert_connector, cert).status_code == 204
    assert Credential.objects.filter(device=device, state="active").count() == 1


def test_a_revoked_device_is_refused_with_its_certificate(cert_connector, whitelist):
    device = whitelist(cert_connector, "00000001")
    cert = make_certificate("00000001").cert_pem
    assert send(cert_connector, cert).status_code == 204
    device_services.revoke_device(device)
    assert send(cert_connector, cert).status_code == 401
    assert reasons("00000001")[-1] == ("auth_failed", "device is revoked")


def test_self_registration_admits_a_new_identity_on_its_first_certificate(make_connector):
    connector = make_connector(
        auth_mode="certificate", identity_type="base10", self_registration=True
    )
    assert send(connector, make_certificate("42").cert_pem).status_code == 204
    assert Device.objects.get(identity="42").status == Device.PROVISIONED


def test_an_identity_that_is_not_whitelisted_is_refused(cert_connector):
    assert send(cert_connector, make_certificate("00000009").cert_pem).status_code == 401
    assert reasons("00000009") == [("auth_failed", "identity is not whitelisted")]
    assert not Device.objects.exists()


def test_provisioning_outside_the_ip_allowlist_is_403(make_connector, whitelist):
    connector = make_connector(
        auth_mode="certificate", identity_type="base10", ip_allowlist=["10.0.0.0/8"]
    )
    whitelist(connector, "7")
    response = send(connector, make_certificate("7").cert_pem, HTTP_X_REAL_IP="192.0.2.1")
    assert response.status_code == 403
    assert reasons("7")[-1][0] == "provision_failed"
    assert Device.objects.get(identity="7").status == Device.WHITELISTED


def test_an_expired_whitelist_entry_is_not_provisioned_by_a_certificate(cert_connector, whitelist):
    device = whitelist(cert_connector, "00000001")
    Device.objects.filter(pk=device.pk).update(
        activation_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert send(cert_connector, make_certificate("00000001").cert_pem).status_code == 401
    assert reasons("00000001")[-1] == ("provision_failed", "the activation window has passed")


def test_a_token_connector_does_not_provision_by_certificate(make_connector, whitelist):
    connector = make_connector(identity_type="base10")
    whitelist(connector, "5")
    assert send(connector, make_certificate("5").cert_pem).status_code == 401
    assert "provisions devices with tokens" in reasons("5")[-1][1]


def test_a_certificate_header_is_ignored_when_an_authorization_header_is_sent(
    cert_connector, whitelist
):
    whitelist(cert_connector, "00000001")
    cert = make_certificate("00000001").cert_pem
    response = send(cert_connector, cert, HTTP_AUTHORIZATION="Token nope")
    assert response.status_code == 401
    assert Device.objects.get().status == Device.WHITELISTED


def test_a_malformed_certificate_header_is_no_credential(cert_connector, whitelist):
    whitelist(cert_connector, "00000001")
    response = send(cert_connector, "-----BEGIN CERTIFICATE-----\ngarbage")
    assert response.status_code == 401
    assert reasons("")[-1] == ("auth_failed", "no credentials presented")


def test_a_certificate_without_a_cn_is_refused(cert_connector):
    cert = make_certificate("00000001")
    no_cn = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "x")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "x")]))
        .public_key(cert.key.public_key())
        .serial_number(1)
        .not_valid_before(cert.cert.not_valid_before_utc)
        .not_valid_after(cert.cert.not_valid_after_utc)
        .sign(cert.key, hashes.SHA256())
    )
    assert send(cert_connector, pem(no_cn)).status_code == 401
    assert reasons("")[-1] == ("auth_failed", "certificate refused: the subject has no CN")


def test_a_pinned_certificate_is_the_only_one_that_provisions(cert_connector, whitelist):
    device = whitelist(cert_connector, "00000001")
    pinned = make_certificate("00000001")
    device_services.pin_certificate(device, pinned.cert_pem)
    assert send(cert_connector, make_certificate("00000001").cert_pem).status_code == 401
    assert send(cert_connector, pinned.cert_pem).status_code == 204


@pytest.mark.parametrize(
    ("cert", "says"),
    [
        (lambda: make_certificate("00000002").cert_pem, 'does not match the ID "00000001"'),
        (lambda: "nope", "not a PEM certificate"),
        (lambda: make_certificate("00000001").key_pem, "private key"),
    ],
)
def test_pinning_a_wrong_certificate_is_refused(cert_connector, whitelist, cert, says):
    device = whitelist(cert_connector, "00000001")
    with pytest.raises(device_services.CertificateNotPinnable, match=says):
        device_services.pin_certificate(device, cert())
    assert not Credential.objects.exists()
