"""The portal's certificate pages: CA, issuance, trust anchors, a device's certificates."""

import html
import re
from urllib.parse import quote

import pytest
from django.test import Client

from audit.models import Event
from certificates import services
from certificates.models import CertificateAuthority, IssuedCertificate, TrustAnchor
from devices.models import Credential
from tests.support.clients import DeviceClient, through_proxy
from tests.support.tls import make_ca, make_certificate, make_csr, pem

pytestmark = pytest.mark.django_db


def field_error(response, field_id: str) -> str:
    """The error shown next to the field whose input has this id ("" when none)."""
    body = response.content.decode()
    start = body.index(f'id="{field_id}"')
    following = re.search(r'<div class="field[" ]', body[start:])
    within = body[start : start + following.start()] if following else body[start:]
    found = re.search(r'class="field-error"[^>]*>(.*?)</div>', within, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""


def page(connector, rest=""):
    return f"/connectors/{connector.pk}/certificates/{rest}"


def test_the_page_offers_to_create_a_ca_and_creating_one_writes_an_event(
    owner_client, cert_connector
):
    response = owner_client.get(page(cert_connector))
    assert response.status_code == 200
    assert b"Create certificate authority" in response.content
    created = owner_client.post(page(cert_connector, "ca/create"), {"key_type": "rsa-2048"})
    assert created.status_code == 302
    authority = CertificateAuthority.objects.get()
    assert authority.key_type == "rsa-2048"
    shown = owner_client.get(page(cert_connector))
    assert authority.fingerprint.encode() in shown.content
    assert f"/pki/{cert_connector.pk}/crl".encode() in shown.content
    assert "by owner" in Event.objects.get(kind="certificate").reason


def test_issuing_shows_the_generated_key_once_and_never_caches_it(owner_client, cert_connector):
    services.create_authority(cert_connector)
    posted = owner_client.post(
        page(cert_connector, "issue"), {"name": "00000001", "serial": "42", "key_type": "ec-p256"}
    )
    issued = IssuedCertificate.objects.get()
    assert posted.status_code == 302
    assert posted["Location"] == page(cert_connector, f"issued/{issued.pk}/")
    assert b"PRIVATE KEY" not in posted.content
    response = owner_client.get(posted["Location"])
    assert response.status_code == 200
    assert b"BEGIN PRIVATE KEY" in response.content
    assert response["Cache-Control"] == "no-store"
    assert issued.serial == "2a"
    # A refresh shows the certificate again, neither a second key nor a second certificate.
    again = owner_client.get(posted["Location"])
    assert b"PRIVATE KEY-----" not in again.content
    assert issued.certificate_pem.encode() in again.content
    assert IssuedCertificate.objects.count() == 1
    listing = owner_client.get(page(cert_connector))
    assert b"BEGIN PRIVATE KEY" not in listing.content
    assert b"00000001" in listing.content


def test_issuing_from_a_csr_shows_no_key(owner_client, cert_connector):
    services.create_authority(cert_connector)
    csr, _ = make_csr("00000002")
    response = owner_client.post(
        page(cert_connector, "issue"), {"csr": pem(csr), "key_type": "ec-p256"}, follow=True
    )
    assert response.status_code == 200
    assert b"PRIVATE KEY-----" not in response.content
    assert b"never left the device" in response.content


def test_a_bad_issue_form_is_a_400_with_the_reason(owner_client, cert_connector):
    services.create_authority(cert_connector)
    response = owner_client.post(
        page(cert_connector, "issue"), {"name": "00000001", "serial": "zz", "key_type": "ec-p256"}
    )
    assert response.status_code == 400
    assert field_error(response, "id_serial").startswith("Serial is a positive number")
    assert not IssuedCertificate.objects.exists()


def test_a_trust_anchor_is_uploaded_then_verified_in_the_portal(owner_client, cert_connector):
    vendor = make_ca("Vendor CA")
    response = owner_client.post(
        page(cert_connector, "trust-anchors/add"),
        {"name": "Vendor", "certificate": vendor.cert_pem},
    )
    assert response.status_code == 302
    anchor = TrustAnchor.objects.get()
    shown = owner_client.get(page(cert_connector))
    assert anchor.verification_code.encode() in shown.content
    assert b"pending verification" in shown.content
    wrong = owner_client.post(
        page(cert_connector, f"trust-anchors/{anchor.pk}/verify"),
        {"certificate": make_certificate("nope", issuer=vendor).cert_pem},
    )
    assert wrong.status_code == 400
    assert field_error(wrong, "id_certificate").startswith("Verification failed")
    proof = make_certificate(anchor.verification_code, issuer=vendor)
    owner_client.post(
        page(cert_connector, f"trust-anchors/{anchor.pk}/verify"), {"certificate": proof.cert_pem}
    )
    anchor.refresh_from_db()
    assert anchor.trusted
    owner_client.post(page(cert_connector, f"trust-anchors/{anchor.pk}/disable"))
    anchor.refresh_from_db()
    assert not anchor.enabled
    owner_client.post(page(cert_connector, f"trust-anchors/{anchor.pk}/delete"))
    assert not TrustAnchor.objects.exists()
    reasons = " | ".join(Event.objects.filter(kind="certificate").values_list("reason", flat=True))
    for step in ("uploaded", "verification failed", "verified", "disabled", "deleted"):
        assert step in reasons


def test_an_unknown_anchor_action_is_404(owner_client, cert_connector):
    anchor = services.add_trust_anchor(cert_connector, make_ca().cert_pem)
    response = owner_client.post(page(cert_connector, f"trust-anchors/{anchor.pk}/explode"))
    assert response.status_code == 404


def test_a_device_page_lists_its_certificate_and_revokes_it(
    owner_client, cert_connector, whitelist
):
    device = whitelist(cert_connector, "00000003")
    issued = make_certificate("00000003")
    written = DeviceClient(cert_connector).post(
        "/api:v1/stack/alias",
        "myalias=1",
        content_type="application/x-www-form-urlencoded",
        **through_proxy(HTTP_X_SSL_CLIENT_CERT=quote(issued.cert_pem)),
    )
    assert written.status_code == 204
    credential = Credential.objects.get(device=device)
    url = page(cert_connector, f"devices/{device.pk}/")
    shown = owner_client.get(url)
    assert shown.status_code == 200
    assert credential.fingerprint.encode() in shown.content
    assert credential.serial.encode() in shown.content
    assert b"pinned (no CA)" in shown.content
    revoked = owner_client.post(
        page(cert_connector, f"{credential.fingerprint}/revoke"), {"next": url}
    )
    assert revoked.status_code == 302
    assert revoked["Location"] == url
    credential.refresh_from_db()
    assert credential.state == "revoked"
    assert b"Revoke</button>" not in owner_client.get(url).content


def test_someone_elses_connector_pages_are_404(cert_connector, other_user):
    client = Client()
    client.force_login(other_user)
    assert client.get(page(cert_connector)).status_code == 404
    assert (
        client.post(page(cert_connector, "ca/create"), {"key_type": "ec-p256"}).status_code == 404
    )
    assert not CertificateAuthority.objects.exists()


def test_the_pages_need_a_login(cert_connector):
    response = Client().get(page(cert_connector))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
