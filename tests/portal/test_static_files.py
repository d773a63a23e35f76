"""Collected static files, served by the web processes themselves, over WSGI and ASGI."""

import os
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import Client

from tests.support.secure_devices import serving

# Larger than one read of the ASGI handler, so the file goes out in several chunks.
ASSET = os.urandom(200_000)


@pytest.fixture
def static_root(settings, tmp_path):
    """STATIC_ROOT after collectstatic, as `make run` leaves it; WhiteNoise indexes it
    when the handler loads its middleware."""
    settings.STATIC_ROOT = tmp_path / "static"
    (settings.STATIC_ROOT / "gatehouse").mkdir(parents=True)
    (settings.STATIC_ROOT / "gatehouse" / "asset.bin").write_bytes(ASSET)
    return settings.STATIC_ROOT


def test_a_static_file_is_served_whole_over_asgi_and_its_file_closed(static_root):
    # Warnings are errors here: the handler used to warn about the file's synchronous
    # iterator, fail mid-response and leave the file and the request body open.
    with serving(ASGIHandler()) as address:
        url = f"http://{address}/static/gatehouse/asset.bin"
        with urlopen(url, timeout=60) as response:
            assert response.status == 200
            assert response.read() == ASSET
            etag = response.headers["ETag"]
        with pytest.raises(HTTPError) as unchanged:
            urlopen(Request(url, headers={"If-None-Match": etag}), timeout=60)
        assert unchanged.value.code == 304
        unchanged.value.close()


def test_a_static_file_is_served_whole_over_wsgi(static_root):
    response = Client().get("/static/gatehouse/asset.bin")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == ASSET
