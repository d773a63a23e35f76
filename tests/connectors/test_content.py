"""The content area: makers upload through the API and the portal; devices list, describe
and download with their own credentials, in ranges and conditionally."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Event
from connectors.models import ContentFile
from devices import services
from tests.support.clients import DeviceClient

pytestmark = pytest.mark.django_db

DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def token(connector):
    services.whitelist_device(connector, "00000001")
    return "Token " + services.activate_device(connector, "00000001", None, "127.0.0.1")


def api_upload(api_client, connector, filename="fw.bin", data=DATA, **fields):
    return api_client.post(
        f"/api/v1/connectors/{connector.pk}/content/",
        {"file": SimpleUploadedFile(filename, data, "application/octet-stream"), **fields},
        format="multipart",
    )


def test_api_upload_list_and_device_download(api_client, connector, token):
    answer = api_upload(api_client, connector, description="v1")
    assert answer.status_code == 201, answer.content
    assert answer.json()["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert Event.objects.filter(connector=connector, reason__contains="fw.bin").exists()
    device = DeviceClient(connector)
    listing = device.get("/provision/download", HTTP_X_EXOSITE_CIK=token.split()[1])
    assert listing.status_code == 200 and listing.content == b"fw.bin"
    info = device.get("/provision/download?id=fw.bin&info=true", HTTP_AUTHORIZATION=token)
    assert info.content.decode().startswith("application/octet-stream,10240,")
    whole = device.get("/provision/download?id=fw.bin", HTTP_AUTHORIZATION=token)
    assert whole.status_code == 200 and b"".join(whole.streaming_content) == DATA
    assert whole["ETag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert whole["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-199", 100, 199), ("bytes=-10", 10230, 10239),
     ("bytes=10000-", 10000, 10239), ("bytes=10000-999999", 10000, 10239)],
)  # fmt: skip
def test_ranges(api_client, connector, token, header, start, end):
    api_upload(api_client, connector)
    got = DeviceClient(connector).get(
        "/provision/download?id=fw.bin", HTTP_AUTHORIZATION=token, HTTP_RANGE=header
    )
    assert got.status_code == 206
    assert got["Content-Range"] == f"bytes {start}-{end}/10240"
    assert b"".join(got.streaming_content) == DATA[start : end + 1]


def test_unsatisfiable_not_modified_and_if_range(api_client, connector, token):
    api_upload(api_client, connector)
    device = DeviceClient(connector)
    url = "/provision/download?id=fw.bin"
    got = device.get(url, HTTP_AUTHORIZATION=token, HTTP_RANGE="bytes=10240-")
    assert got.status_code == 416 and got["Content-Range"] == "bytes */10240"
    etag = f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert device.get(url, HTTP_AUTHORIZATION=token, HTTP_IF_NONE_MATCH=etag).status_code == 304
    stale = device.get(url, HTTP_AUTHORIZATION=token, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"x"')
    assert stale.status_code == 200
    stale.close()


def test_resume_in_ranges_matches_sha256(api_client, connector, token):
    api_upload(api_client, connector)
    device, parts = DeviceClient(connector), []
    for start in range(0, len(DATA), 3000):
        got = device.get(
            "/provision/download?id=fw.bin",
            HTTP_AUTHORIZATION=token,
            HTTP_RANGE=f"bytes={start}-{start + 2999}",
        )
        parts.append(b"".join(got.streaming_content))
    assert hashlib.sha256(b"".join(parts)).digest() == hashlib.sha256(DATA).digest()


def test_refusals(api_client, other_api_client, connector, make_connector, token):
    assert api_upload(api_client, connector, data=b"1", name="..").status_code == 400
    assert api_upload(api_client, connector, data=b"1", name="a/b").status_code == 400
    assert api_upload(other_api_client, connector).status_code == 404
    api_upload(api_client, connector)
    device = DeviceClient(connector)
    assert device.get("/provision/download?id=nope", HTTP_AUTHORIZATION=token).status_code == 404
    assert device.get("/provision/download?id=a%00b", HTTP_AUTHORIZATION=token).status_code == 400
    assert device.get("/provision/download").status_code == 401
    other = make_connector(identity_type="base10", identity_length=8)
    services.whitelist_device(other, "00000009")
    other_token = "Token " + services.activate_device(other, "00000009", None, "127.0.0.1")
    stranger = DeviceClient(other)
    assert stranger.get("/provision/download", HTTP_AUTHORIZATION=other_token).status_code == 204
    got = stranger.get("/provision/download?id=fw.bin", HTTP_AUTHORIZATION=other_token)
    assert got.status_code == 404


def test_too_large_is_413(api_client, connector, settings):
    settings.CONTENT_MAX_BYTES = 100
    assert api_upload(api_client, connector).status_code == 413
    assert not ContentFile.objects.exists()


def test_portal_upload_and_delete_removes_bytes(
    owner_client, other_browser, connector, django_capture_on_commit_callbacks
):
    url = f"/connectors/{connector.pk}/content/"
    assert other_browser.get(url).status_code == 404
    answer = owner_client.post(url, {"file": SimpleUploadedFile("a.txt", b"hello")})
    assert answer.status_code == 302
    stored = ContentFile.objects.get(name="a.txt")
    storage = stored.file.storage
    assert storage.exists(stored.file.name)
    page = owner_client.get(url)
    assert b"a.txt" in page.content
    name = stored.file.name
    with django_capture_on_commit_callbacks(execute=True):
        deleted = owner_client.post(f"{url}a.txt/delete")
    assert deleted.status_code == 302
    assert not ContentFile.objects.exists()
    assert Event.objects.filter(connector=connector, reason__contains="deleted").exists()
    assert not storage.exists(name)
