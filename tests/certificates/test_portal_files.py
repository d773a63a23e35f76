"""Certificates as files in the portal: the certificate, the CA and a bundle, for makers only."""

import io
import re
import zipfile

import pytest
from django.test import Client

from certificates import services
from certificates.models import IssuedCertificate
from tests.certificates.test_portal import field_error, page
from tests.support.tls import make_csr, pem

pytestmark = pytest.mark.django_db


@pytest.fixture
def connector_with_ca(make_connector):
    connector = make_connector(auth_mode="certificate", identity_type="base10", identity_length=8)
    services.create_authority(connector)
    return connector


@pytest.fixture
def issued(owner_client, connector_with_ca) -> IssuedCertificate:
    owner_client.post(page(connector_with_ca, "issue"), {"name": "00000001", "key_type": "ec-p256"})
    return IssuedCertificate.objects.get()


def test_the_certificate_downloads_as_a_pem_file(owner_client, connector_with_ca, issued):
    response = owner_client.get(page(connector_with_ca, f"issued/{issued.pk}/cert.pem"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-pem-file"
    assert response["Content-Disposition"] == 'attachment; filename="00000001-cert.pem"'
    assert response.content.decode() == issued.certificate_pem


def test_the_ca_downloads_as_a_pem_file(owner_client, connector_with_ca, issued):
    response = owner_client.get(page(connector_with_ca, "ca.pem"))
    assert response.status_code == 200
    assert (
        response["Content-Disposition"] == f'attachment; filename="{connector_with_ca.pk}-ca.pem"'
    )
    assert response.content.decode() == issued.authority.certificate_pem


def test_the_bundle_is_a_zip_of_certificate_ca_and_chain_without_any_key(
    owner_client, connector_with_ca, issued
):
    response = owner_client.get(page(connector_with_ca, f"issued/{issued.pk}/bundle.zip"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="00000001.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        assert sorted(bundle.namelist()) == [
            "00000001/ca.pem",
            "00000001/chain.pem",
            "00000001/device-cert.pem",
        ]
        assert bundle.read("00000001/device-cert.pem").decode() == issued.certificate_pem
        chain = bundle.read("00000001/chain.pem").decode()
        assert chain.count("BEGIN CERTIFICATE") == 2
        assert all(b"PRIVATE KEY" not in bundle.read(name) for name in bundle.namelist())


def test_the_issued_page_offers_the_key_and_a_pem_bundle_once(owner_client, connector_with_ca):
    posted = owner_client.post(
        page(connector_with_ca, "issue"), {"name": "00000002", "key_type": "ec-p256"}
    )
    first = owner_client.get(posted["Location"]).content.decode()
    assert 'data-download-from="#key-pem #certificate-pem #ca-pem"' in first
    assert 'data-filename="00000002-bundle.pem"' in first
    assert "gatehouse/downloads.js" in first
    second = owner_client.get(posted["Location"]).content.decode()
    assert "#key-pem" not in second
    assert "never left the device" in second


def test_ids_codes_and_fingerprints_have_copy_buttons(owner_client, connector_with_ca, issued):
    listing = owner_client.get(page(connector_with_ca)).content.decode()
    assert 'aria-label="Copy fingerprint"' in listing
    assert f'data-copy="{issued.fingerprint}"' in listing
    assert f'data-copy="{issued.serial}"' in listing
    shown = owner_client.get(page(connector_with_ca, f"issued/{issued.pk}/")).content.decode()
    assert f'data-copy="{issued.fingerprint}"' in shown


def test_a_csr_naming_another_device_is_refused_next_to_the_csr(owner_client, connector_with_ca):
    csr, _ = make_csr("00000009")
    response = owner_client.post(
        page(connector_with_ca, "issue"),
        {"name": "00000001", "csr": pem(csr), "key_type": "ec-p256"},
    )
    assert response.status_code == 400
    assert field_error(response, "id_csr").startswith('The CSR asks for CN "00000009"')
    assert not IssuedCertificate.objects.exists()


def test_a_bad_trust_anchor_is_refused_next_to_its_field(owner_client, connector_with_ca):
    response = owner_client.post(
        page(connector_with_ca, "trust-anchors/add"), {"certificate": "not a certificate"}
    )
    assert response.status_code == 400
    assert field_error(response, "id_certificate")
    assert 'class="messages"' not in response.content.decode()


@pytest.mark.parametrize(
    "tail", ["ca.pem", "issued/{pk}/", "issued/{pk}/cert.pem", "issued/{pk}/bundle.zip"]
)
def test_only_the_connectors_makers_get_its_files(
    tail, connector_with_ca, issued, other_user, end_user_browser
):
    url = page(connector_with_ca, tail.format(pk=issued.pk))
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert re.match(r"^/login/", anonymous["Location"])
    other = Client()
    other.force_login(other_user)
    assert other.get(url).status_code == 404
    assert end_user_browser.get(url).status_code == 403


def test_a_connector_without_a_ca_has_no_ca_file(owner_client, make_connector):
    connector = make_connector(auth_mode="certificate")
    assert owner_client.get(page(connector, "ca.pem")).status_code == 404
    assert owner_client.get(page(connector, "issued/1/bundle.zip")).status_code == 404
