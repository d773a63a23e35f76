"""Murano's device library, murano-client, unchanged in its HTTP mode against gunicorn
started as the README says: only its host is Gatehouse's device host.

Every device-side call it has is made through the library's own methods, and each test
checks what the library made of the answer and what Gatehouse stored. (Its hybrid
write/read, `http_read_write`, does not run on Python 3: it compares a list with 0.)
"""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from django.core.files.base import ContentFile

from audit.events import Actor
from connectors import content
from devices import services
from devices.models import Credential, DataPoint, Device
from tests.portal.test_proxy_trust import app_server  # noqa: F401  (the fixture)
from tests.support.fronts import Front, resolve_device_hosts
from tests.support.murano import murano_client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The library imports pkg_resources.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RESOURCES = {"temp": "number", "door": "string", "config": "json"}


@pytest.fixture
def device_connector(make_connector):
    return make_connector(identity_type="base10", identity_length=8, _resources=RESOURCES)


@pytest.fixture
def front(app_server, monkeypatch, settings, tmp_path):  # noqa: F811
    settings.MEDIA_ROOT = tmp_path / "media"
    resolve_device_hosts(monkeypatch)
    return Front("direct", app_server().port)


def library(front, connector, **kwargs):
    MuranoHTTP = murano_client("http").MuranoHTTP
    kwargs = {"murano_id": "00000001", "http_timeout": 60, **kwargs}
    return MuranoHTTP(murano_host=front.url(connector), **kwargs)


@pytest.fixture
def device(front, device_connector):
    """The library, activated by its own activation call."""
    services.whitelist_device(device_connector, "00000001")
    client = library(front, device_connector)
    client.http_activate()
    assert client.is_activated()
    return client


def points(connector, alias=None) -> list[tuple[str, str]]:
    rows = DataPoint.objects.filter(device__connector=connector).order_by("created_at", "id")
    if alias:
        rows = rows.filter(alias=alias)
    return list(rows.values_list("alias", "value"))


def at_microsecond(timestamp: float) -> datetime:
    """Where a `str(time.time())` timestamp is stored: its nearest microsecond."""
    seconds = Decimal(str(timestamp)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    return EPOCH + timedelta(microseconds=int(seconds * 1_000_000))


def test_activation_gives_the_library_its_token_once(front, device_connector):
    services.whitelist_device(device_connector, "00000001")
    client = library(front, device_connector)
    assert not client.is_activated()
    client.http_activate()
    assert client.is_activated()
    token = client.murano_token()
    assert len(token) == 40
    device = Device.objects.get(connector=device_connector, identity="00000001")
    assert device.status == Device.PROVISIONED
    assert Credential.objects.filter(device=device).count() == 1
    assert token not in str(Credential.objects.filter(device=device).values().first())

    again = library(front, device_connector)._http_activate()
    assert (again.code, again.activated) == (409, False)
    unknown = library(front, device_connector, murano_id="00000002")._http_activate()
    assert (unknown.code, unknown.activated) == (404, False)
    assert Credential.objects.filter(device__connector=device_connector).count() == 1


def test_timestamp_is_the_servers_unix_time(device):
    before = int(time.time())
    answer = device.exosite_timestamp()
    after = int(time.time())
    assert answer.status_code == 200
    assert before <= int(answer.text) <= after


def test_writes_of_one_alias_and_several_are_stored(device, device_connector):
    answer = device.http_write("temp", "21.5")
    assert (answer.code, answer.success) == (204, True)
    answer = device.http_write_multiple({"temp": "22", "door": "half open", "undefined": "x"})
    assert (answer.code, answer.success) == (204, True)
    assert points(device_connector) == [("temp", "21.5"), ("temp", "22"), ("door", "half open")]

    # The same with the library encoding the form itself.
    device.form_encode()
    answer = device.http_write("config", '{"rate": 5}')
    assert (answer.code, answer.success) == (204, True)
    assert points(device_connector, "config") == [("config", '{"rate": 5}')]

    refused = device.http_write("temp", "warm")
    assert (refused.code, refused.success) == (400, False)
    assert "not a number" in refused.body
    assert len(points(device_connector)) == 4


def test_a_wrong_token_deactivates_the_library_and_stores_nothing(front, device_connector, device):
    stranger = library(front, device_connector, murano_token="0" * 40)
    answer = stranger.http_write("temp", "1")
    assert (answer.code, answer.authorized) == (401, False)
    assert not stranger.is_activated()
    assert stranger.http_read(["temp"]).code == 401
    assert points(device_connector) == []


def test_reads_answer_the_latest_values(device, device_connector):
    nothing = device.http_read(["temp"])
    assert (nothing.code, nothing.success, nothing.body) == (204, True, "")
    device.http_write_multiple({"temp": "20", "door": "open & shut"})
    device.http_write("temp", "23.25")
    answer = device.http_read(["temp", "door"])
    assert (answer.code, answer.success) == (200, True)
    assert answer.body == "temp=23.25&door=open & shut"
    assert device.http_read("temp").body == "temp=23.25"


def test_long_polls_of_one_alias_and_several(device, device_connector):
    device.http_write_multiple({"temp": "1", "door": "closed"})
    # The library sends If-Modified-Since in whole unix seconds and Request-Timeout in ms.
    answer = device.http_long_poll("temp", timeout_ms=500, modify_ts=0)
    assert (answer.code, answer.body) == (200, "temp=1")
    newest = DataPoint.objects.filter(device__connector=device_connector).latest("created_at")
    last_modified = answer.response.headers["Last-Modified"]
    assert last_modified == newest.created_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    both = device.http_long_poll(["temp", "door"], timeout_ms=500, modify_ts=0.0)
    assert (both.code, both.body) == (200, "temp=1&door=closed")

    quiet = device.http_long_poll(["temp", "door"], timeout_ms=300, modify_ts=time.time() + 2)
    assert (quiet.code, quiet.body) == (304, "Not modified")
    assert "Content-Type" not in quiet.response.headers

    # Without If-Modified-Since a poll waits for a value newer than when it arrived; the
    # writer keeps writing until it answers, so it cannot matter which comes first.
    answers = []
    answered = threading.Event()

    def poll():
        answers.append(device.http_long_poll(["temp", "door"], timeout_ms=30_000))
        answered.set()

    other = _same_device(device)
    thread = threading.Thread(target=poll)
    thread.start()
    written = []
    while not answered.wait(0.3):
        written.append(f"open {len(written)}")
        assert other.http_write("door", written[-1]).success
    thread.join()
    (answer,) = answers
    assert answer.code == 200
    alias, value = answer.body.split("=", 1)
    assert alias == "door" and value in written
    assert ("door", value) in points(device_connector, "door")


def _same_device(device):
    """A second copy of the library holding the same device's token."""
    MuranoHTTP = murano_client("http").MuranoHTTP
    return MuranoHTTP(
        murano_host=device.murano_host(),
        murano_id=device.murano_id(),
        murano_token=device.murano_token(),
        http_timeout=60,
    )


def test_records_of_time_time_floats_are_stored_at_their_microsecond(device, device_connector):
    now = time.time()
    # What the library is given is what it sends: str() of each float, seven decimals.
    first, second, third = now - 30.25, now - 20.5, now - 10.125
    batch = {"temp": {first: "20.5", second: "20.75"}, "door": {third: "open"}}
    answer = device.http_record(batch)
    assert (answer.code, answer.success) == (204, True), answer
    stored = DataPoint.objects.filter(device__connector=device_connector)
    assert sorted(stored.values_list("alias", "created_at", "value")) == sorted(
        [
            ("temp", at_microsecond(first), "20.5"),
            ("temp", at_microsecond(second), "20.75"),
            ("door", at_microsecond(third), "open"),
        ]
    )
    for point, sent in zip(stored.order_by("created_at"), (first, second, third), strict=True):
        assert abs((point.created_at - EPOCH).total_seconds() - sent) < 1e-6

    # A retry is stored once; another value at a stored timestamp is a conflict the
    # library reads back as the timestamps it sent.
    assert device.http_record(batch).success
    assert stored.count() == 3
    conflict = device.http_record({"temp": {second: "99"}})
    assert (conflict.code, conflict.conflict) == (409, True)
    assert conflict.get_conflict_timestamps() == [second]
    assert stored.count() == 3
    assert device.http_read(["temp", "door"]).body == "temp=20.75&door=open"


def test_content_calls(device, device_connector):
    upload = ContentFile(b"\x00firmware\xff" * 1000, name="fw image.bin")
    upload.content_type = "application/octet-stream"
    content.upload(device_connector, upload, actor=Actor(None, "test"), description="v2")
    listing = device._http_listContent()
    assert (listing.status_code, listing.text) == (200, "fw image.bin")
    info = device._http_getContentInfo("fw image.bin")
    assert info.status_code == 200
    kind, size, uploaded, description = info.text.split(",")
    assert (kind, size, description) == ("application/octet-stream", "10000", "v2")
    assert abs(int(uploaded) - time.time()) < 3600
    whole = device._http_getContent("fw image.bin")
    assert (whole.status_code, whole.content) == (200, b"\x00firmware\xff" * 1000)
    streamed = device._http_getContent("fw image.bin", stream=True)
    with streamed:
        assert b"".join(streamed.iter_content(chunk_size=4096)) == b"\x00firmware\xff" * 1000
    assert device._http_getContent("missing.bin").status_code == 404
