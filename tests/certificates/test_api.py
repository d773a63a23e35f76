"""Connector CA, issuance, trust anchors and self-provisioning through the management API."""

import base64
import json
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.management import call_command
from django.test import Client

from audit.models import Event
from certificates import services
from certificates.models import CertificateAuthority, IssuedCertificate, TrustAnchor
from devices.models import Credential, Device
from tests.support.clients import DeviceClient, through_proxy
from tests.support.tls import fingerprint, make_ca, make_certificate, make_csr, pem

pytestmark = pytest.mark.django_db


def load(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


def ca_url(connector, rest=""):
    return f"/api/v1/connectors/{connector.pk}/{rest}"


@pytest.fixture
def authority(api_client, cert_connector):
    response = api_client.post(ca_url(cert_connector, "ca/"), {})
    assert response.status_code == 201, response.content
    return CertificateAuthority.objects.get(connector=cert_connector)


def certificate_write(connector, cert_pem: str, body="myalias=1"):
    """A data request as nginx forwards it, with the client certificate header."""
    return DeviceClient(connector).post(
        "/api:v1/stack/alias",
        body,
        content_type="application/x-www-form-urlencoded",
        **through_proxy(HTTP_X_SSL_CLIENT_CERT=quote(cert_pem)),
    )


# --- the CA ---------------------------------------------------------------------------


def test_a_new_ca_is_ec_p256_with_its_key_encrypted_at_rest(api_client, cert_connector):
    response = api_client.post(ca_url(cert_connector, "ca/"), {})
    assert response.status_code == 201
    body = response.json()
    assert body["key_type"] == "ec-p256"
    assert body["crl_url"].endswith(f"/pki/{cert_connector.pk}/crl")
    cert = load(body["certificate_pem"])
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    stored = bytes(CertificateAuthority.objects.get().encrypted_key)
    assert b"PRIVATE KEY" not in stored
    with pytest.raises(ValueError):
        serialization.load_der_private_key(stored, password=None)
    assert "certificate authority created" in Event.objects.get(kind="certificate").reason


def test_an_rsa_2048_ca_is_made_on_request_with_the_subject_asked_for(api_client, cert_connector):
    subject = "/C=US/ST=California/O=MyOrg/OU=MyDep/CN=MyDevAuthority"
    response = api_client.post(
        ca_url(cert_connector, "ca/"), {"key_type": "rsa-2048", "subject": subject}
    )
    assert response.status_code == 201
    cert = load(response.json()["certificate_pem"])
    assert cert.public_key().key_size == 2048
    assert cert.subject.rfc4514_string() == "CN=MyDevAuthority,OU=MyDep,O=MyOrg,ST=California,C=US"


def test_a_second_ca_and_a_bad_subject_are_refused(api_client, cert_connector, authority):
    assert api_client.post(ca_url(cert_connector, "ca/"), {}).status_code == 409
    other = api_client.post(ca_url(cert_connector, "ca/"), {"subject": "CN=missing-slashes"})
    assert other.status_code == 400


def test_someone_elses_connector_ca_is_invisible(other_api_client, cert_connector, authority):
    assert other_api_client.get(ca_url(cert_connector, "ca/")).status_code == 404
    assert (
        other_api_client.post(ca_url(cert_connector, "ca/issue"), {"name": "1"}).status_code == 404
    )


def test_issuing_with_a_generated_key_returns_the_key_once(api_client, cert_connector, authority):
    response = api_client.post(
        ca_url(cert_connector, "ca/issue"), {"serial": "123456789", "name": "00000001"}
    )
    assert response.status_code == 201
    body = response.json()
    cert = load(body["certificate_pem"])
    key = serialization.load_pem_private_key(body["private_key_pem"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == cert.public_key()
    assert cert.serial_number == 123456789
    assert cert.subject.rfc4514_string() == "CN=00000001"
    cert.verify_directly_issued_by(load(authority.certificate_pem))
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    issued = IssuedCertificate.objects.get()
    assert issued.fingerprint == fingerprint(cert)
    assert "PRIVATE" not in str(IssuedCertificate.objects.values().get())


def test_issuing_an_rsa_key_happens_only_when_asked(api_client, cert_connector, authority):
    response = api_client.post(
        ca_url(cert_connector, "ca/issue"), {"name": "00000001", "key_type": "rsa-2048"}
    )
    assert isinstance(load(response.json()["certificate_pem"]).public_key(), rsa.RSAPublicKey)


def test_issuing_from_a_csr_keeps_the_key_on_the_device(api_client, cert_connector, authority):
    csr, key = make_csr("00000002")
    response = api_client.post(ca_url(cert_connector, "ca/issue"), {"csr": pem(csr)})
    assert response.status_code == 201
    body = response.json()
    assert "private_key_pem" not in body
    cert = load(body["certificate_pem"])
    assert cert.public_key() == key.public_key()
    assert cert.subject.rfc4514_string() == "CN=00000002"


@pytest.mark.parametrize(
    ("payload", "status", "says"),
    [
        ({"name": "00000001", "serial": "12ab"}, 400, "serial is a positive number"),
        ({"name": "00000001", "serial": "0"}, 400, "positive"),
        ({"name": ""}, 400, "needs a name"),
        ({"name": "x" * 65}, 400, "at most"),
        ({"csr": "not a csr"}, 400, "not a PEM certificate request"),
        ({"name": "00000009", "csr": "CSR:00000002"}, 400, "asks for CN"),
        ({"name": "1", "key_type": "dsa"}, 400, "key_type"),
    ],
)
def test_bad_issue_requests_say_what_is_wrong(
    api_client, cert_connector, authority, payload, status, says
):
    if payload.get("csr", "").startswith("CSR:"):
        payload = {**payload, "csr": pem(make_csr(payload["csr"][4:])[0])}
    response = api_client.post(ca_url(cert_connector, "ca/issue"), payload)
    assert response.status_code == status
    assert says in str(response.json())
    assert not IssuedCertificate.objects.exists()


def test_a_csr_whose_signature_does_not_verify_is_refused(api_client, cert_connector, authority):
    csr, _ = make_csr("00000002")
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0xFF
    broken = x509.load_der_x509_csr(bytes(der))
    response = api_client.post(ca_url(cert_connector, "ca/issue"), {"csr": pem(broken)})
    assert response.status_code == 400


def test_a_serial_is_issued_once_per_ca(api_client, cert_connector, authority):
    url = ca_url(cert_connector, "ca/issue")
    assert api_client.post(url, {"name": "00000001", "serial": "0x10"}).status_code == 201
    again = api_client.post(url, {"name": "00000002", "serial": "16"})
    assert again.status_code == 409
    assert "already issued" in again.json()["detail"]


def test_issuing_without_a_ca_is_409(api_client, cert_connector):
    response = api_client.post(ca_url(cert_connector, "ca/issue"), {"name": "00000001"})
    assert response.status_code == 409
    assert "no certificate authority" in response.json()["detail"]


def test_a_changed_encryption_key_is_a_clear_503_not_a_crash(
    api_client, cert_connector, authority, settings
):
    settings.CA_KEY_ENCRYPTION_KEY = "a-different-key-than-the-one-that-sealed-it"
    response = api_client.post(ca_url(cert_connector, "ca/issue"), {"name": "00000001"})
    assert response.status_code == 503
    assert "CA_KEY_ENCRYPTION_KEY" in response.json()["detail"]


def test_revocation_is_published_in_the_crl_at_a_stable_url(api_client, cert_connector, authority):
    body = api_client.post(ca_url(cert_connector, "ca/issue"), {"name": "00000001"}).json()
    public = Client()
    before = x509.load_der_x509_crl(public.get(f"/pki/{cert_connector.pk}/crl").content)
    assert len(before) == 0
    revoked = api_client.post(ca_url(cert_connector, f"certificates/{body['fingerprint']}/revoke"))
    assert revoked.status_code == 200
    after = x509.load_der_x509_crl(public.get(f"/pki/{cert_connector.pk}/crl").content)
    assert after.get_revoked_certificate_by_serial_number(int(body["serial"], 16)) is not None
    number = after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert after.is_signature_valid(load(authority.certificate_pem).public_key())
    pem_crl = public.get(f"/pki/{cert_connector.pk}/crl.pem")
    assert pem_crl.content.startswith(b"-----BEGIN X509 CRL-----")
    again = api_client.post(ca_url(cert_connector, f"certificates/{body['fingerprint']}/revoke"))
    assert again.status_code == 409


def test_the_crl_of_a_connector_without_a_ca_is_404(cert_connector):
    assert Client().get(f"/pki/{cert_connector.pk}/crl").status_code == 404


def test_the_issued_list_shows_state_and_binding(api_client, cert_connector, authority):
    api_client.post(ca_url(cert_connector, "ca/issue"), {"name": "00000001"})
    listing = api_client.get(ca_url(cert_connector, "ca/certificates/")).json()
    assert [row["common_name"] for row in listing["results"]] == ["00000001"]
    assert listing["results"][0]["state"] == "active"


# --- trust anchors -------------------------------------------------------------------------


def test_a_trust_anchor_is_trusted_only_after_proof_of_possession(
    api_client, cert_connector, whitelist
):
    vendor = make_ca("Vendor device CA")
    upload = api_client.post(
        ca_url(cert_connector, "trust-anchors/"), {"certificate": vendor.cert_pem, "name": "V"}
    )
    assert upload.status_code == 201
    anchor = upload.json()
    assert anchor["status"] == "pending verification"
    code = anchor["verification_code"]
    device_cert = make_certificate("00000001", issuer=vendor)
    assert not services.chains_to_connector(cert_connector, device_cert.cert)

    verify_url = ca_url(cert_connector, f"trust-anchors/{anchor['id']}/verify")
    wrong_cn = make_certificate("not-the-code", issuer=vendor)
    response = api_client.post(verify_url, {"certificate": wrong_cn.cert_pem})
    assert response.status_code == 400
    assert f"CN must be the verification code {code}" in response.json()["detail"]
    # Same subject name, different key: someone who only has the CA certificate.
    impostor = make_ca("Vendor device CA")
    forged = make_certificate(code, issuer=impostor)
    response = api_client.post(verify_url, {"certificate": forged.cert_pem})
    assert response.status_code == 400
    assert "not signed by this CA's private key" in response.json()["detail"]
    assert TrustAnchor.objects.get().verified_at is None

    proof = make_certificate(code, issuer=vendor)
    response = api_client.post(verify_url, {"certificate": proof.cert_pem})
    assert response.status_code == 200
    assert response.json()["status"] == "trusted"
    assert services.chains_to_connector(cert_connector, device_cert.cert)
    assert not services.chains_to_connector(cert_connector, make_certificate("00000001").cert)

    reasons = list(Event.objects.filter(kind="certificate").values_list("reason", flat=True))
    assert any("awaiting proof of possession" in reason for reason in reasons)
    assert sum("verification failed" in reason for reason in reasons) == 2
    assert any("verified and trusted" in reason for reason in reasons)

    whitelist(cert_connector, "00000001")
    assert certificate_write(cert_connector, device_cert.cert_pem).status_code == 204


def test_a_disabled_then_deleted_anchor_stops_vouching(api_client, cert_connector):
    vendor = make_ca()
    anchor = services.add_trust_anchor(cert_connector, vendor.cert_pem)
    services.verify_trust_anchor(
        anchor, make_certificate(anchor.verification_code, issuer=vendor).cert_pem
    )
    device_cert = make_certificate("00000001", issuer=vendor).cert
    url = ca_url(cert_connector, f"trust-anchors/{anchor.pk}/")
    response = api_client.patch(url, {"enabled": False})
    assert response.json()["status"] == "disabled"
    assert not services.chains_to_connector(cert_connector, device_cert)
    api_client.patch(url, {"enabled": True})
    assert services.chains_to_connector(cert_connector, device_cert)
    assert api_client.delete(url).status_code == 204
    assert not services.chains_to_connector(cert_connector, device_cert)
    assert api_client.get(url).status_code == 404


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: make_certificate("leaf").cert_pem, "not a CA certificate"),
        (lambda: make_ca().key_pem, "private key"),
        (lambda: "hello", "not a PEM certificate"),
        (lambda: make_ca().cert_pem + make_ca().cert_pem, "expected one certificate"),
    ],
)
def test_an_upload_that_is_not_one_ca_certificate_is_400(api_client, cert_connector, make, says):
    response = api_client.post(ca_url(cert_connector, "trust-anchors/"), {"certificate": make()})
    assert response.status_code == 400
    assert says in response.json()["detail"]
    assert not TrustAnchor.objects.exists()


def test_a_connector_holds_at_most_100_trust_anchors(api_client, cert_connector):
    for number in range(TrustAnchor.MAX_PER_CONNECTOR):
        services.add_trust_anchor(cert_connector, make_ca(f"CA {number}").cert_pem)
    url = ca_url(cert_connector, "trust-anchors/")
    response = api_client.post(url, {"certificate": make_ca("one too many").cert_pem})
    assert response.status_code == 409
    assert "at most 100" in response.json()["detail"]
    assert len(api_client.get(url).json()) == 100


def test_the_same_anchor_twice_is_409(api_client, cert_connector):
    vendor = make_ca()
    url = ca_url(cert_connector, "trust-anchors/")
    assert api_client.post(url, {"certificate": vendor.cert_pem}).status_code == 201
    assert api_client.post(url, {"certificate": vendor.cert_pem}).status_code == 409


def test_chains_to_connector_refuses_expired_revoked_and_foreign_certificates(
    cert_connector, make_connector
):
    authority = services.create_authority(cert_connector)
    issued = services.issue_certificate(authority, common_name="00000001")
    cert = load(issued.certificate.certificate_pem)
    assert services.chains_to_connector(cert_connector, cert)
    assert not services.chains_to_connector(make_connector(), cert)
    services.revoke_certificate(cert_connector, issued.certificate.fingerprint)
    assert not services.chains_to_connector(cert_connector, cert)


# --- self-provisioning --------------------------------------------------------------


def test_generate_returns_an_inactive_certificate_and_key_in_base64(
    api_client, cert_connector, authority
):
    response = api_client.get(f"/api/v1/connectors/{cert_connector.pk}/certificates/generate")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "arn", "cert", "private"}
    cert = load(base64.b64decode(body["cert"]).decode())
    key = serialization.load_pem_private_key(base64.b64decode(body["private"]), None)
    assert key.public_key() == cert.public_key()
    assert body["id"] == fingerprint(cert)
    assert body["arn"].endswith(f":cert/{body['id']}")
    assert IssuedCertificate.objects.get().state == "inactive"


def test_generate_with_topics_activates_the_certificate(api_client, cert_connector, authority):
    topics = quote(json.dumps(["1/#", "test/+/+/1", "1/2/3"]))
    response = api_client.get(
        f"/api/v1/connectors/{cert_connector.pk}/certificates/generate?topics={topics}"
    )
    assert response.status_code == 200
    issued = IssuedCertificate.objects.get()
    assert issued.state == "active"
    assert issued.topics == ["1/#", "test/+/+/1", "1/2/3"]


def test_generate_provision_write_revoke_on_the_device_host(
    api_client, cert_connector, authority, whitelist
):
    whitelist(cert_connector, "00000002")
    host = {"HTTP_HOST": cert_connector.device_host}
    generated = api_client.get("/foundry/certificates/generate", **host).json()
    cert_pem = base64.b64decode(generated["cert"]).decode()
    assert certificate_write(cert_connector, cert_pem).status_code == 401
    provision = api_client.post(
        "/foundry/certificates/provision",
        {
            "arn": generated["arn"],
            "certId": generated["id"],
            "deviceId": "00000002",
            "topics": ["XiQ/#"],
        },
        **host,
    )
    assert provision.status_code == 200, provision.content
    assert provision.json()["status"] == "active"
    device = Device.objects.get(identity="00000002")
    assert device.status == Device.PROVISIONED
    assert certificate_write(cert_connector, cert_pem).status_code == 204
    revoke = api_client.delete(
        "/foundry/certificates/revoke",
        {"certId": generated["id"], "deviceId": "00000002"},
        **host,
    )
    assert revoke.status_code == 200
    assert revoke.json()["status"] == "revoked"
    assert certificate_write(cert_connector, cert_pem).status_code == 401
    issued = IssuedCertificate.objects.get()
    assert (issued.state, issued.device) == ("revoked", None)
    assert Credential.objects.get(fingerprint=generated["id"]).state == "revoked"
    kinds = list(
        Event.objects.filter(identity="00000002").order_by("id").values_list("kind", flat=True)
    )
    assert kinds == ["whitelist", "provision", "certificate", "write", "certificate", "auth_failed"]
    assert Event.objects.filter(identity="00000002").last().reason == "certificate was revoked"
    inactive = Event.objects.get(identity__startswith="Gatehouse device certificate ")
    assert inactive.reason == "certificate is inactive until it is provisioned"


def test_the_compatibility_path_under_c_works_too(api_client, cert_connector, authority):
    response = api_client.get(f"/c/{cert_connector.pk}/foundry/certificates/generate")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("payload", "status", "says"),
    [
        ({"certId": "x", "deviceId": "00000002"}, 400, "64 hex digits"),
        ({"certId": "a" * 64, "deviceId": "00000002"}, 404, "no certificate with that fingerprint"),
        ({"certId": "GOOD", "deviceId": "00000099"}, 404, "no device"),
        ({"certId": "GOOD", "deviceId": "00000002", "topics": "nope"}, 400, "JSON list"),
        ({"certId": "GOOD", "deviceId": "00000002", "arn": "arn:other"}, 400, "arn"),
    ],
)
def test_bad_provision_requests_answer_in_the_error_shape(
    api_client, cert_connector, authority, whitelist, payload, status, says
):
    whitelist(cert_connector, "00000002")
    generated = api_client.get(f"/api/v1/connectors/{cert_connector.pk}/certificates/generate")
    if payload["certId"] == "GOOD":
        payload = {**payload, "certId": generated.json()["id"]}
    response = api_client.post(
        f"/api/v1/connectors/{cert_connector.pk}/certificates/provision", payload
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status
    assert says in error["message"]
    assert Device.objects.get(identity="00000002").status == Device.WHITELISTED


def test_self_provisioning_needs_an_api_token(cert_connector, authority):
    response = Client().get(f"/api/v1/connectors/{cert_connector.pk}/certificates/generate")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == response.status_code


# --- management commands ----------------------------------------------------------------------


def test_the_commands_create_a_ca_and_issue_by_serial_and_name(cert_connector, tmp_path, capsys):
    call_command(
        "create_ca",
        cert_connector.pk,
        "--subject",
        "/C=US/ST=California/O=MyOrg/OU=MyDep/CN=MyDevAuthority",
    )
    authority = CertificateAuthority.objects.get()
    assert "BEGIN CERTIFICATE" in capsys.readouterr().out
    call_command(
        "issue_certificate", cert_connector.pk, "123456789", "00000001", "--out-dir", str(tmp_path)
    )
    cert = load((tmp_path / "00000001-cert.pem").read_text())
    assert cert.serial_number == 123456789
    cert.verify_directly_issued_by(load(authority.certificate_pem))
    key_file = tmp_path / "00000001-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    csr, _ = make_csr("00000002")
    (tmp_path / "device.csr").write_text(pem(csr))
    call_command(
        "issue_certificate",
        cert_connector.pk,
        "random",
        "00000002",
        "--csr",
        str(tmp_path / "device.csr"),
        "--out-dir",
        str(tmp_path),
    )
    assert (tmp_path / "00000002-cert.pem").exists()
    assert not (tmp_path / "00000002-key.pem").exists()
