"""HTTP details firmware meets, against gunicorn started as the README says and reached
directly on its port (no proxy in front to smooth anything over)."""

import base64
import http.client

import pytest
from django.conf import settings

from devices import services
from devices.models import DataPoint, Device
from tests.portal.test_proxy_trust import app_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)

FORM = "application/x-www-form-urlencoded"
WRITE = "/api:v1/stack/alias"


@pytest.fixture
def server(app_server):  # noqa: F811
    return app_server()


@pytest.fixture
def token_device(connector):
    services.whitelist_device(connector, "00000001")
    token = services.activate_device(connector, "00000001", None, "127.0.0.1")
    return connector, f"Token {token}"


def send(server, method, path, host, body=None, headers=None, chunked=False):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    all_headers = {"Host": host, **(headers or {})}
    if body is not None:
        all_headers.setdefault("Content-Type", FORM)
    try:
        if chunked:
            # An iterable body without Content-Length goes out chunked.
            connection.request(method, path, body=iter(body), headers=all_headers)
        else:
            connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def values(connector) -> list[str]:
    return list(
        DataPoint.objects.filter(device__connector=connector)
        .order_by("id")
        .values_list("value", flat=True)
    )


def test_a_chunked_write_is_read_and_stored(server, token_device):
    connector, authorization = token_device
    status, headers, _ = send(
        server, "POST", WRITE, connector.device_host, [b"myal", b"ias=", b"42"],
        {"Authorization": authorization}, chunked=True,
    )  # fmt: skip
    assert status == 204
    assert values(connector) == ["42"]


def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(server, token_device):
    connector, authorization = token_device
    chunk = b"x" * 1024
    count = settings.DEVICE_MAX_BODY_BYTES // len(chunk) + 2
    status, _, body = send(
        server, "POST", WRITE, connector.device_host, [b"myalias=1&pad="] + [chunk] * count,
        {"Authorization": authorization}, chunked=True,
    )  # fmt: skip
    assert status == 413, body
    assert values(connector) == []


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_a_trailing_line_ending_is_not_part_of_the_value(server, token_device, ending):
    connector, authorization = token_device
    status, _, _ = send(
        server, "POST", WRITE, connector.device_host, f"myalias=7{ending}",
        {"Authorization": authorization},
    )  # fmt: skip
    assert status == 204
    assert values(connector) == ["7"]


def test_a_mac_identity_with_colons_writes_with_basic_identity_password(server, make_connector):
    connector = make_connector(
        auth_mode="password", identity_type="mac", identity_mac_style="colon",
        _resources={"myalias": "number"},
    )  # fmt: skip
    identity, password = "aa:bb:cc:dd:ee:ff", "pass:word:with:colons:1234"
    services.whitelist_device(connector, identity)
    # Activated by the server, so the password is hashed with its (production) hasher.
    activated = send(
        server, "POST", "/provision/activate", connector.device_host,
        f"id={identity}&password={password}",
    )  # fmt: skip
    assert activated[0] == 204, activated
    credential = base64.b64encode(f"{identity}:{password}".encode()).decode()
    status, _, body = send(
        server, "POST", WRITE, connector.device_host, "myalias=5",
        {"Authorization": f"Basic {credential}"},
    )  # fmt: skip
    assert status == 204, body
    assert values(connector) == ["5"]
    wrong = base64.b64encode(f"{identity}:pass:word".encode()).decode()
    status, headers, _ = send(
        server, "POST", WRITE, connector.device_host, "myalias=6",
        {"Authorization": f"Basic {wrong}"},
    )  # fmt: skip
    assert status == 401 and "Basic" in headers["WWW-Authenticate"]
    assert values(connector) == ["5"]


def test_no_content_answers_carry_no_html_content_type(server, token_device):
    connector, authorization = token_device
    host, auth = connector.device_host, {"Authorization": authorization}
    status, headers, body = send(server, "POST", WRITE, host, "myalias=3", auth)
    assert (status, body) == (204, b"")
    assert "text/html" not in headers.get("Content-Type", "")
    # No value yet for this alias: 204 again.
    status, headers, body = send(server, "GET", f"{WRITE}?other", host, headers=auth)
    assert (status, body) == (204, b"")
    assert "text/html" not in headers.get("Content-Type", "")


def test_a_long_poll_answers_with_last_modified_or_a_bare_304(server, token_device):
    connector, authorization = token_device
    host = connector.device_host
    assert (
        send(server, "POST", WRITE, host, "myalias=9", {"Authorization": authorization})[0] == 204
    )
    poll = {"Authorization": authorization, "Request-Timeout": "500"}
    status, headers, body = send(
        server, "GET", f"{WRITE}?myalias", host, headers={**poll, "If-Modified-Since": "0"}
    )
    assert (status, body) == (200, b"myalias=9")
    assert headers["Last-Modified"].endswith(" GMT")
    status, headers, body = send(server, "GET", f"{WRITE}?myalias", host, headers=poll)
    assert (status, body) == (304, b"")
    assert "text/html" not in headers.get("Content-Type", "")


@pytest.mark.redis
def test_an_identity_as_sent_never_names_a_cache_key(server, connector):
    from django.core.cache import cache

    raw = "odd identity\x01with spaces"
    status, _, _ = send(
        server, "POST", "/provision/activate", connector.device_host,
        "id=" + raw.replace(" ", "+").replace("\x01", "%01"),
    )  # fmt: skip
    assert status == 400
    keys = [key.decode() for key in cache.raw_client().keys("*")]
    assert keys and not any("odd" in key or "spaces" in key for key in keys)
    assert not Device.objects.exists()
