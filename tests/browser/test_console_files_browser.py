"""The console at laptop and phone sizes, for what runs long or leaves the browser:
a bulk revoke of ten thousand devices a filter matched, followed on its progress
page by a real worker, and an issued certificate's bundle downloaded as a zip."""

import io
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import Event
from certificates import services as certificates
from certificates.models import IssuedCertificate
from devices.models import BulkAction, Device
from tests.browser.conftest import LAPTOP, PHONE
from tests.browser.test_console_browser import fits_the_viewport, keep_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
BULK_DEVICES = 10_000
# Generous, for a busy machine: each device is revoked through its own service call.
BULK_SECONDS = 600


def many_devices(connector, count: int, group: str, first: int) -> None:
    deadline = timezone.now() + timedelta(days=7)
    Device.objects.bulk_create(
        (
            Device(
                connector=connector,
                identity=f"{number:08d}",
                tags=[{"name": "group", "value": group}],
                activation_expires_at=deadline,
            )
            for number in range(first, first + count)
        ),
        batch_size=2000,
    )


@pytest.mark.worker
@SIZES
def test_a_filtered_bulk_revoke_of_ten_thousand_devices_reaches_done(
    signed_in_page, connector, celery_worker, size
):
    many_devices(connector, BULK_DEVICES, "g1", first=1)
    many_devices(connector, 3, "g2", first=BULK_DEVICES + 1)
    page = signed_in_page
    page.set_viewport_size(size)
    page.goto(f"/connectors/{connector.pk}/devices/?tag=group%3Dg1")
    expect(page.locator("#apply-all")).to_contain_text("10,000")
    page.select_option("#bulk-action", "revoke")
    page.click("#apply-all")
    expect(page.locator("#bulk-confirm-button")).to_contain_text("10,000")
    fits_the_viewport(page)
    page.click("#bulk-confirm-button")

    expect(page.locator("#bulk-progress")).to_be_visible()
    job = BulkAction.objects.get()
    # Its total starts as what the count found (on PostgreSQL only "more than
    # what runs inline") and grows as the worker goes.
    assert job.action == "revoke"
    status = page.locator("#bulk-status")
    seen = []
    give_up = time.monotonic() + BULK_SECONDS
    while status.get_attribute("data-status") != "done":
        celery_worker.assert_alive()
        assert time.monotonic() < give_up, celery_worker.logs()
        seen.append(page.locator("#bulk-processed").text_content())
        time.sleep(0.2)
    assert any(value != "10,000" for value in seen), "never saw it unfinished"
    expect(page.locator("#bulk-summary")).to_contain_text("Done: 10,000 devices revoked.")
    expect(page.locator("#bulk-progress")).to_have_attribute("value", str(BULK_DEVICES))
    fits_the_viewport(page)
    keep_screenshot(page, "bulk-done")
    job.refresh_from_db()
    assert (job.total, job.processed, job.changed) == (BULK_DEVICES,) * 3
    revoked = Device.objects.filter(status=Device.REVOKED)
    assert revoked.count() == BULK_DEVICES
    assert not revoked.tagged("group", "g2").exists()
    assert sorted(
        Device.objects.filter(status=Device.WHITELISTED).values_list("identity", flat=True)
    ) == [f"{number:08d}" for number in range(BULK_DEVICES + 1, BULK_DEVICES + 4)]
    assert Event.objects.filter(kind=Event.REVOKE, actor_name="owner").count() == BULK_DEVICES


@SIZES
def test_an_issued_certificates_bundle_downloads_as_a_zip_of_certificate_ca_and_chain(
    signed_in_page, connector, size
):
    authority = certificates.create_authority(connector)
    page = signed_in_page
    page.set_viewport_size(size)
    page.goto(f"/connectors/{connector.pk}/certificates/")
    page.fill("#id_name", "00000001")
    page.click("text=Issue certificate")
    expect(page.locator("#issued-certificate h2")).to_have_text("Certificate for 00000001")
    fits_the_viewport(page)
    issued = IssuedCertificate.objects.get()

    with page.expect_download() as info:
        page.click("#bundle-zip")
    download = info.value
    assert download.suggested_filename == "00000001.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as bundle:
        assert sorted(bundle.namelist()) == [
            "00000001/ca.pem",
            "00000001/chain.pem",
            "00000001/device-cert.pem",
        ]
        device_pem = bundle.read("00000001/device-cert.pem").decode()
        ca_pem = bundle.read("00000001/ca.pem").decode()
        chain = bundle.read("00000001/chain.pem").decode()
        assert all(b"PRIVATE KEY" not in bundle.read(name) for name in bundle.namelist())
    assert device_pem == issued.certificate_pem
    assert ca_pem == authority.certificate_pem
    device, ca = x509.load_pem_x509_certificates(chain.encode())
    assert device.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "00000001"
    assert device.issuer == ca.subject
    device.verify_directly_issued_by(ca)
