"""Certificate-mode devices end to end: real TLS handshakes through nginx."""

import subprocess
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from cryptography import x509

from audit.models import Event
from certificates import services as certificate_services
from devices.models import Credential, DataPoint, Device
from tests.support.tls import curl, fingerprint, make_ca, make_certificate

pytestmark = pytest.mark.django_db(transaction=True)

# The certificate walkthrough's command (docs/certificates.md), verbatim.
SEED_OPENSSL = (
    "openssl req -x509 -nodes -days 365 -sha256 -subj /C=US/ST=MN/L=Mpls/O=West/CN=00000002 "
    "-newkey rsa:2048 -keyout device-key.pem -out device-cert.pem"
)


def kinds(identity):
    return list(
        Event.objects.filter(identity=identity).order_by("id").values_list("kind", flat=True)
    )


def last_reason(identity):
    return Event.objects.filter(identity=identity).order_by("-id").first().reason


def write(proxy, connector, issued, tmp_path, body="myalias=55"):
    cert_file, key_file = issued.write(tmp_path, f"device-{fingerprint(issued.cert)[:8]}")
    return proxy.device_request(
        connector,
        "POST",
        "/api:v1/stack/alias",
        body=body,
        cert_file=cert_file,
        key_file=key_file,
    )


def test_seed_002_openssl_and_curl_provision_then_write(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    whitelist(cert_connector, "00000002")
    made = subprocess.run(
        SEED_OPENSSL.split(), cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    url = nginx_proxy.device_url(cert_connector, "/api:v1/stack/alias")
    seed_curl = [url, "-d", "myalias=55", "--cert", "device-cert.pem", "--key", "device-key.pem"]
    result = curl(
        "-v",
        "--cacert",
        str(nginx_proxy.ca_file),
        *nginx_proxy.curl_resolve(cert_connector),
        "--write-out",
        "%{http_code}",
        *seed_curl,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "204"
    assert "TLS handshake, CERT verify" in result.stderr
    assert kinds("00000002") == ["whitelist", "provision", "write"]
    device = Device.objects.get(identity="00000002")
    assert device.status == Device.PROVISIONED
    assert device.auth_mode == "certificate"
    assert DataPoint.objects.get(device=device).value == "55"
    assert "pinned on first use" in Event.objects.get(kind="provision").reason

    again = curl(
        "--cacert",
        str(nginx_proxy.ca_file),
        *nginx_proxy.curl_resolve(cert_connector),
        "--write-out",
        "%{http_code}",
        url,
        "-d",
        "myalias=56",
        "--cert",
        "device-cert.pem",
        "--key",
        "device-key.pem",
        cwd=tmp_path,
    )
    assert again.stdout == "204"
    assert kinds("00000002")[-1] == "write"


def test_a_second_certificate_for_a_pinned_device_is_refused(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    whitelist(cert_connector, "00000002")
    assert write(nginx_proxy, cert_connector, make_certificate("00000002"), tmp_path).status == 204
    response = write(nginx_proxy, cert_connector, make_certificate("00000002"), tmp_path)
    assert response.status == 401
    assert last_reason("00000002") == "device is provisioned with a different certificate"


def test_a_certificate_issued_by_the_connector_ca_provisions_and_reads(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    authority = certificate_services.create_authority(cert_connector)
    issued = certificate_services.issue_certificate(authority, common_name="00000003", serial=3)
    whitelist(cert_connector, "00000003")
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_text(issued.certificate.certificate_pem)
    key_file.write_text(issued.private_key_pem)
    response = nginx_proxy.device_request(
        cert_connector,
        "POST",
        "/api:v1/stack/alias",
        body="myalias=7",
        cert_file=cert_file,
        key_file=key_file,
    )
    assert response.status == 204
    assert kinds("00000003")[-2:] == ["provision", "write"]
    assert "signed by the connector CA" in Event.objects.get(kind="provision").reason
    read = nginx_proxy.device_request(
        cert_connector,
        "GET",
        "/api:v1/stack/alias?myalias",
        cert_file=cert_file,
        key_file=key_file,
    )
    assert (read.status, read.text) == (200, "myalias=7")
    credential = Credential.objects.get(device__identity="00000003", state="active")
    assert credential.issuer_fingerprint == authority.fingerprint
    assert credential.serial == "3"


def test_an_expired_certificate_is_refused_and_the_event_says_so(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    whitelist(cert_connector, "00000004")
    now = datetime.now(UTC)
    expired = make_certificate(
        "00000004", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    response = write(nginx_proxy, cert_connector, expired, tmp_path)
    assert response.status == 401
    assert "certificate expired on" in last_reason("00000004")
    assert Device.objects.get(identity="00000004").status == Device.WHITELISTED


def test_a_certificate_that_is_not_yet_valid_is_refused(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    whitelist(cert_connector, "00000004")
    now = datetime.now(UTC)
    future = make_certificate(
        "00000004", not_before=now + timedelta(hours=1), not_after=now + timedelta(days=1)
    )
    assert write(nginx_proxy, cert_connector, future, tmp_path).status == 401
    assert "not valid before" in last_reason("00000004")


def test_a_revoked_certificate_fails_on_the_next_request(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    authority = certificate_services.create_authority(cert_connector)
    issued = certificate_services.issue_certificate(authority, common_name="00000005")
    whitelist(cert_connector, "00000005")
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_text(issued.certificate.certificate_pem)
    key_file.write_text(issued.private_key_pem)

    def send():
        return nginx_proxy.device_request(
            cert_connector,
            "POST",
            "/api:v1/stack/alias",
            body="myalias=1",
            cert_file=cert_file,
            key_file=key_file,
        ).status

    assert send() == 204
    certificate_services.revoke_certificate(cert_connector, issued.certificate.fingerprint)
    assert send() == 401
    assert last_reason("00000005") == "certificate was revoked"
    crl = certificate_services.current_crl(authority)
    listed = x509.load_der_x509_crl(crl)
    assert listed.get_revoked_certificate_by_serial_number(int(issued.certificate.serial, 16))


def test_a_certificate_whose_cn_is_not_an_identity_is_refused(
    nginx_proxy, cert_connector, tmp_path
):
    response = write(nginx_proxy, cert_connector, make_certificate("not-a-device"), tmp_path)
    assert response.status == 401
    reason = last_reason("not-a-device")
    assert 'certificate CN "not-a-device" is not an identity' in reason
    assert "exactly 8 decimal digits" in reason


def test_a_certificate_other_than_the_pinned_one_is_refused(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    device = whitelist(cert_connector, "00000006")
    pinned = make_certificate("00000006")
    Credential.objects.create(
        device=device,
        kind="certificate",
        state="inactive",
        certificate_pem=pinned.cert_pem,
        fingerprint=fingerprint(pinned.cert),
        serial=format(pinned.cert.serial_number, "x"),
        not_before=pinned.cert.not_valid_before_utc,
        not_after=pinned.cert.not_valid_after_utc,
    )
    impostor = make_certificate("00000006")
    assert write(nginx_proxy, cert_connector, impostor, tmp_path).status == 401
    assert last_reason("00000006") == "certificate is not the one pinned in the whitelist entry"
    assert Event.objects.filter(identity="00000006", kind="provision_failed").exists()
    assert write(nginx_proxy, cert_connector, pinned, tmp_path).status == 204
    assert "pinned in the whitelist entry" in Event.objects.get(kind="provision").reason


def test_a_certificate_from_an_untrusted_ca_is_refused_when_the_connector_has_a_ca(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    certificate_services.create_authority(cert_connector)
    whitelist(cert_connector, "00000007")
    stranger = make_ca("Somebody else's CA")
    response = write(
        nginx_proxy, cert_connector, make_certificate("00000007", issuer=stranger), tmp_path
    )
    assert response.status == 401
    assert last_reason("00000007") == (
        "certificate is not signed by the connector's CA or a trusted anchor"
    )
    self_signed = make_certificate("00000007")
    assert write(nginx_proxy, cert_connector, self_signed, tmp_path).status == 401
    assert Device.objects.get(identity="00000007").status == Device.WHITELISTED


def test_a_certificate_header_sent_straight_to_the_app_never_authenticates(
    nginx_proxy, cert_connector, whitelist, tmp_path, settings
):
    whitelist(cert_connector, "00000008")
    issued = make_certificate("00000008")
    assert write(nginx_proxy, cert_connector, issued, tmp_path).status == 204
    spoofed = curl(
        "--write-out",
        "%{http_code}",
        "-o",
        "/dev/null",
        "-H",
        f"Host: {cert_connector.device_host}",
        "-H",
        f"X-SSL-Client-Cert: {quote(issued.cert_pem)}",
        "-d",
        "myalias=66",
        f"{nginx_proxy.app_url}/api:v1/stack/alias",
    )
    assert spoofed.stdout == "401"
    # Even from an address the app trusts, the header needs the proxy's secret.
    settings.TRUSTED_PROXIES = ["127.0.0.1", "127.0.0.2"]
    again = curl(
        "--write-out",
        "%{http_code}",
        "-o",
        "/dev/null",
        "-H",
        f"Host: {cert_connector.device_host}",
        "-H",
        f"X-SSL-Client-Cert: {quote(issued.cert_pem)}",
        "-H",
        "X-Gatehouse-Proxy-Secret: guessed",
        "-d",
        "myalias=67",
        f"{nginx_proxy.app_url}/api:v1/stack/alias",
    )
    assert again.stdout == "401"
    assert not DataPoint.objects.filter(value__in=["66", "67"]).exists()


def test_a_certificate_header_sent_through_nginx_without_a_certificate_is_overwritten(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    whitelist(cert_connector, "00000009")
    issued = make_certificate("00000009")
    assert write(nginx_proxy, cert_connector, issued, tmp_path).status == 204
    for header in ("X-SSL-Client-Cert", "X-SSL_Client_Cert"):
        response = nginx_proxy.device_request(
            cert_connector,
            "POST",
            "/api:v1/stack/alias",
            body="myalias=68",
            headers={header: quote(issued.cert_pem), "X-Gatehouse-Proxy-Secret": "x"},
        )
        assert response.status == 401, header
    assert last_reason("") == "no credentials presented"
    assert not DataPoint.objects.filter(value="68").exists()


def test_a_chained_device_is_cut_off_when_its_trust_anchor_is_disabled(
    nginx_proxy, cert_connector, whitelist, tmp_path
):
    vendor = make_ca("Vendor device CA")
    anchor = certificate_services.add_trust_anchor(cert_connector, vendor.cert_pem)
    proof = make_certificate(anchor.verification_code, issuer=vendor)
    certificate_services.verify_trust_anchor(anchor, proof.cert_pem)
    whitelist(cert_connector, "00000010")
    device_cert = make_certificate("00000010", issuer=vendor)
    assert write(nginx_proxy, cert_connector, device_cert, tmp_path).status == 204
    certificate_services.set_trust_anchor_enabled(anchor, False)
    assert write(nginx_proxy, cert_connector, device_cert, tmp_path).status == 401
    assert "no longer trusted" in last_reason("00000010")
    certificate_services.set_trust_anchor_enabled(anchor, True)
    assert write(nginx_proxy, cert_connector, device_cert, tmp_path).status == 204


def test_a_pem_of_the_ca_itself_is_published_with_its_crl(nginx_proxy, cert_connector):
    authority = certificate_services.create_authority(cert_connector)
    response = nginx_proxy.request("GET", f"/pki/{cert_connector.pk}/ca.pem")
    assert response.status == 200
    assert response.text == authority.certificate_pem
    crl = nginx_proxy.request("GET", f"/pki/{cert_connector.pk}/crl")
    assert crl.status == 200
    assert crl.headers["Content-Type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(crl.body).is_signature_valid(
        x509.load_pem_x509_certificate(authority.certificate_pem.encode()).public_key()
    )
