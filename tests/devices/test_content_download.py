"""The content area through gunicorn started as the README says: a 100 MB file
downloaded in ranges by a device, and murano-client's own content calls, unchanged."""

import hashlib
import http.client
import os

import pytest
from django.core.files import File

from audit.events import Actor
from connectors import content
from devices import services
from tests.portal.test_proxy_trust import app_server  # noqa: F401  (the fixture)
from tests.support.murano import murano_client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The library imports pkg_resources.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

SIZE = 100 * 1024 * 1024
PART = 8 * 1024 * 1024


@pytest.fixture
def stored(settings, tmp_path, connector):
    settings.MEDIA_ROOT = tmp_path / "media"
    source = tmp_path / "firmware.bin"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(SIZE // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    with source.open("rb") as handle:
        upload = File(handle, name="firmware.bin")
        upload.content_type = "application/octet-stream"
        content.upload(connector, upload, actor=Actor(None, "test"))
    source.unlink()
    services.whitelist_device(connector, "00000001")
    token = services.activate_device(connector, "00000001", None, "127.0.0.1")
    return connector, token, digest.hexdigest()


def test_a_100_mb_file_downloads_in_ranges_through_gunicorn(app_server, stored):  # noqa: F811
    connector, token, expected = stored
    server = app_server()
    digest, start = hashlib.sha256(), 0
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        while start < SIZE:
            connection.request(
                "GET",
                "/provision/download?id=firmware.bin",
                headers={
                    "Host": connector.device_host,
                    "Authorization": f"Token {token}",
                    "Range": f"bytes={start}-{start + PART - 1}",
                },
            )
            response = connection.getresponse()
            body = response.read()
            assert response.status == 206, body[:200]
            end = min(start + PART, SIZE) - 1
            assert response.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
            assert len(body) == end - start + 1
            digest.update(body)
            start = end + 1
    finally:
        connection.close()
    assert digest.hexdigest() == expected


def test_murano_clients_content_calls_work_unchanged(app_server, stored, monkeypatch, tmp_path):  # noqa: F811
    MuranoHTTP = murano_client("http").MuranoHTTP

    connector, token, expected = stored
    server = app_server()
    # No DNS names the device host here: requests sends the absolute URL to gunicorn
    # as to a proxy, with the device host in Host, exactly as it would reach it by name.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = MuranoHTTP(
        murano_host=f"http://{connector.device_host}:{server.port}/",
        murano_id="00000001",
        murano_token=token,
        http_timeout=120,
    )
    try:
        listing = client._http_listContent()
        assert (listing.status_code, listing.text) == (200, "firmware.bin")
        info = client._http_getContentInfo("firmware.bin")
        assert info.status_code == 200
        assert info.text.startswith(f"application/octet-stream,{SIZE},")
        download = client._http_getContent("firmware.bin", stream=True)
        assert download.status_code == 200
        digest = hashlib.sha256()
        with download:
            for chunk in download.iter_content(chunk_size=1024 * 1024):
                digest.update(chunk)
    finally:
        client.close_session()
    assert digest.hexdigest() == expected
