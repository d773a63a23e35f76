"""HTTP details firmware meets, against gunicorn started as the README says, each
reached directly on its port (no proxy in front to smooth anything over) and through
nginx running the shipped deploy/nginx/gatehouse.conf."""

import base64

import pytest
from django.conf import settings

from devices import services
from devices.models import DataPoint, Device
from tests.portal.test_proxy_trust import app_server  # noqa: F401  (the fixture)
from tests.support.fronts import Front, device_front, resolve_device_hosts  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

WRITE = "/api:v1/stack/alias"


@pytest.fixture
def token_device(connector):
    services.whitelist_device(connector, "00000001")
    token = services.activate_device(connector, "00000001", None, "127.0.0.1")
    return connector, f"Token {token}"


def values(connector) -> list[str]:
    return list(
        DataPoint.objects.filter(device__connector=connector)
        .order_by("id")
        .values_list("value", flat=True)
    )


def test_a_chunked_write_is_read_and_stored(device_front, token_device):  # noqa: F811
    connector, authorization = token_device
    status, headers, _ = device_front.send(
        connector, "POST", WRITE, [b"myal", b"ias=", b"42"],
        {"Authorization": authorization}, chunked=True,
    )  # fmt: skip
    assert status == 204
    assert values(connector) == ["42"]


def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(device_front, token_device):  # noqa: F811
    connector, authorization = token_device
    chunk = b"x" * 1024
    count = settings.DEVICE_MAX_BODY_BYTES // len(chunk) + 2
    status, _, body = device_front.send(
        connector, "POST", WRITE, [b"myalias=1&pad="] + [chunk] * count,
        {"Authorization": authorization}, chunked=True,
    )  # fmt: skip
    assert status == 413, body
    assert values(connector) == []


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_a_trailing_line_ending_is_not_part_of_the_value(device_front, token_device, ending):  # noqa: F811
    connector, authorization = token_device
    status, _, _ = device_front.send(
        connector, "POST", WRITE, f"myalias=7{ending}",
        {"Authorization": authorization},
    )  # fmt: skip
    assert status == 204
    assert values(connector) == ["7"]


def test_a_mac_identity_with_colons_writes_with_basic_identity_password(
    device_front,  # noqa: F811
    make_connector,
):
    connector = make_connector(
        auth_mode="password", identity_type="mac", identity_mac_style="colon",
        _resources={"myalias": "number"},
    )  # fmt: skip
    identity, password = "aa:bb:cc:dd:ee:ff", "pass:word:with:colons:1234"
    services.whitelist_device(connector, identity)
    # Activated by the server, so the password is hashed with its (production) hasher.
    activated = device_front.send(
        connector, "POST", "/provision/activate",
        f"id={identity}&password={password}",
    )  # fmt: skip
    assert activated[0] == 204, activated
    credential = base64.b64encode(f"{identity}:{password}".encode()).decode()
    status, _, body = device_front.send(
        connector, "POST", WRITE, "myalias=5",
        {"Authorization": f"Basic {credential}"},
    )  # fmt: skip
    assert status == 204, body
    assert values(connector) == ["5"]
    wrong = base64.b64encode(f"{identity}:pass:word".encode()).decode()
    status, headers, _ = device_front.send(
        connector, "POST", WRITE, "myalias=6",
        {"Authorization": f"Basic {wrong}"},
    )  # fmt: skip
    assert status == 401 and "Basic" in headers["WWW-Authenticate"]
    assert values(connector) == ["5"]


def test_no_content_answers_carry_no_content_type(device_front, token_device):  # noqa: F811
    connector, authorization = token_device
    auth = {"Authorization": authorization}
    status, headers, body = device_front.send(connector, "POST", WRITE, "myalias=3", auth)
    assert (status, body) == (204, b"")
    assert "Content-Type" not in headers
    # No value yet for this alias: 204 again.
    status, headers, body = device_front.send(connector, "GET", f"{WRITE}?other", headers=auth)
    assert (status, body) == (204, b"")
    assert "Content-Type" not in headers


def test_a_long_poll_answers_with_last_modified_or_a_bare_304(device_front, token_device):  # noqa: F811
    connector, authorization = token_device
    written = device_front.send(
        connector, "POST", WRITE, "myalias=9", {"Authorization": authorization}
    )
    assert written[0] == 204
    poll = {"Authorization": authorization, "Request-Timeout": "500"}
    status, headers, body = device_front.send(
        connector, "GET", f"{WRITE}?myalias", headers={**poll, "If-Modified-Since": "0"}
    )
    assert (status, body) == (200, b"myalias=9")
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    stored = DataPoint.objects.get(device__connector=connector).created_at
    assert headers["Last-Modified"] == stored.strftime("%a, %d %b %Y %H:%M:%S GMT")
    status, headers, body = device_front.send(connector, "GET", f"{WRITE}?myalias", headers=poll)
    assert (status, body) == (304, b"")
    assert "Content-Type" not in headers


@pytest.mark.redis
def test_an_identity_as_sent_never_names_a_cache_key(app_server, connector, monkeypatch):  # noqa: F811
    from django.core.cache import cache

    resolve_device_hosts(monkeypatch)
    direct = Front("direct", app_server().port)
    raw = "odd identity\x01with spaces"
    status, _, _ = direct.send(
        connector, "POST", "/provision/activate",
        "id=" + raw.replace(" ", "+").replace("\x01", "%01"),
    )  # fmt: skip
    assert status == 400
    keys = [key.decode() for key in cache.raw_client().keys("*")]
    assert keys and not any("odd" in key or "spaces" in key for key in keys)
    assert not Device.objects.exists()
