"""POST /onep:v1/stack/record: points at the device's timestamps, in any order, each
alias and timestamp stored once; the latest value is the newest by time."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from audit.models import Event
from devices.models import DataPoint
from tests.support.clients import DeviceClient

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded; charset=utf-8"
# Past points; a test sending points ahead of the clock takes the time when it runs.
NOW = int(time.time())


@pytest.fixture
def connector(make_connector):
    return make_connector(
        identity_type="base10",
        identity_length=8,
        _resources={"temp": "number", "door": "string"},
    )


@pytest.fixture
def token(device_client, connector, whitelist):
    whitelist(connector, "00000001")
    return device_client.activate("00000001").content.decode()


def send(client, token, body, path="/onep:v1/stack/record"):
    return client.post(path, body, content_type=FORM, HTTP_X_EXOSITE_CIK=token)


def stored():
    return sorted(
        (alias, int(at.timestamp()), value)
        for alias, at, value in DataPoint.objects.values_list("alias", "created_at", "value")
    )


@pytest.mark.parametrize("path", ["/onep:v1/stack/record", "/api:v1/stack/record"])
def test_points_are_stored_at_the_device_timestamps(device_client, token, path):
    body = f"alias=temp&{NOW - 120}=20.5&{NOW - 60}=21&alias=door&{NOW - 90}=open"
    response = send(device_client, token, body, path)
    assert response.status_code == 204
    assert stored() == [
        ("door", NOW - 90, "open"),
        ("temp", NOW - 120, "20.5"),
        ("temp", NOW - 60, "21"),
    ]
    assert Event.objects.filter(kind="write", reason__startswith="record ").count() == 1


def test_fractional_timestamps_keep_their_microseconds(device_client, token):
    assert send(device_client, token, f"alias=temp&{NOW - 10}.250001=1").status_code == 204
    at = DataPoint.objects.get().created_at
    assert at == datetime.fromtimestamp(NOW - 10, tz=UTC).replace(microsecond=250001)


@pytest.mark.parametrize(
    ("fraction", "microsecond"),
    [("4706593", 470659), ("4706597", 470660), ("9999996", None), ("0000005", 0), ("5", 500000)],
)
def test_timestamps_with_more_decimals_round_to_the_microsecond(
    device_client, token, fraction, microsecond
):
    # str(time.time()) writes seven decimals, as Murano's device library sends them.
    assert send(device_client, token, f"alias=temp&{NOW - 10}.{fraction}=1").status_code == 204
    at = DataPoint.objects.get().created_at
    whole = datetime.fromtimestamp(NOW - 10, tz=UTC)
    if microsecond is None:
        assert at == whole + timedelta(seconds=1)
    else:
        assert at == whole.replace(microsecond=microsecond)


def test_timestamps_in_one_microsecond_are_one_point(device_client, token):
    body = f"alias=temp&{NOW - 10}.1234561=1&{NOW - 10}.1234564=1"
    assert send(device_client, token, body).status_code == 204
    assert DataPoint.objects.count() == 1
    conflict = send(device_client, token, f"alias=temp&{NOW - 10}.123456=2")
    assert conflict.status_code == 409
    assert DataPoint.objects.get().value == "1"


def test_out_of_order_points_leave_the_newest_as_latest(device_client, token):
    assert device_client.write("temp=30", f"Token {token}").status_code == 204
    assert send(device_client, token, f"alias=temp&{NOW - 30}=10&{NOW - 600}=5").status_code == 204
    assert device_client.read("temp", f"Token {token}").content == b"temp=30"
    ahead = int(time.time()) + 60
    assert send(device_client, token, f"alias=temp&{ahead}=40").status_code == 204
    assert device_client.read("temp", f"Token {token}").content == b"temp=40"


def test_a_record_of_past_points_does_not_wake_a_long_poll(device_client, token, settings):
    settings.LONG_POLL_INTERVAL_SECONDS = 0.01
    assert device_client.write("temp=30", f"Token {token}").status_code == 204
    since = str(int(time.time()) + 1)
    assert send(device_client, token, f"alias=temp&{NOW - 5}=1").status_code == 204
    poll = device_client.get(
        "/onep:v1/stack/alias?temp",
        HTTP_X_EXOSITE_CIK=token,
        HTTP_REQUEST_TIMEOUT="30",
        HTTP_IF_MODIFIED_SINCE=since,
    )
    assert poll.status_code == 304


def test_the_same_point_sent_again_is_stored_once(device_client, token):
    body = f"alias=temp&{NOW - 60}=21&{NOW - 60}=21"
    assert send(device_client, token, body).status_code == 204
    assert send(device_client, token, body).status_code == 204
    assert stored() == [("temp", NOW - 60, "21")]


def test_another_value_at_a_stored_timestamp_is_409_and_stores_nothing(device_client, token):
    assert send(device_client, token, f"alias=temp&{NOW - 60}=21").status_code == 204
    body = f"alias=temp&{NOW - 60}=22&{NOW - 30}=23&alias=door&{NOW - 5}=a&{NOW - 5}=b"
    response = send(device_client, token, body)
    assert response.status_code == 409
    assert response.content == f"temp={NOW - 60}&door={NOW - 5}".encode()
    assert stored() == [("temp", NOW - 60, "21")]


def test_two_copies_of_a_record_at_once_store_it_once(connector, token, transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("row locks serialize records on PostgreSQL")
    body = f"alias=temp&{NOW - 60}=21&{NOW - 50}=22"
    codes = []

    def one():
        codes.append(send(DeviceClient(connector), token, body).status_code)
        connection.close()

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [204] * 4
    assert DataPoint.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", b"no points"),
        ("alias=temp", b"no points"),
        (f"{NOW}=1", b"before any alias"),
        ("alias=&1=1", b"names no alias"),
        ("alias=temp&yesterday=1", b"not a timestamp"),
        ("alias=temp&-5=1", b"not a timestamp"),
        ("alias=temp&1e9=1", b"not a timestamp"),
        ("alias=temp&1.=1", b"not a timestamp"),
        (f"alias=temp&{NOW}.{'1' * 21}=1", b"not a timestamp"),
        (f"alias=temp&{NOW + 3600}=1", b"ahead of the server"),
        ("alias=temp&1=1", b"older than the data retention"),
        (f"alias=temp&{NOW}=warm", b"not a number"),
        (f"alias=temp&{NOW}=1%00", b"NUL"),
    ],
)
def test_a_bad_record_is_400_says_why_and_stores_nothing(device_client, token, body, says):
    response = send(device_client, token, body)
    assert response.status_code == 400
    assert says in response.content
    assert not DataPoint.objects.exists()


def test_undefined_aliases_are_logged_not_stored(device_client, token):
    assert send(device_client, token, f"alias=other&{NOW}=1&alias=temp&{NOW}=2").status_code == 204
    assert stored() == [("temp", NOW, "2")]
    assert "undefined: other" in Event.objects.get(kind="write").reason


def test_more_points_than_the_limit_is_413(device_client, token, settings):
    settings.DEVICE_RECORD_MAX_POINTS = 3
    points = "&".join(f"{NOW - i}={i}" for i in range(4))
    response = send(device_client, token, f"alias=temp&{points}")
    assert response.status_code == 413
    many = "&".join(f"alias=temp&{NOW - i}={i}" for i in range(4))
    assert send(device_client, token, many).status_code == 413
    assert not DataPoint.objects.exists()


def test_a_record_without_credentials_is_401_before_its_body_is_read(device_client, token):
    response = device_client.post("/onep:v1/stack/record", "garbage%", content_type=FORM)
    assert response.status_code == 401
    response = device_client.post(
        "/onep:v1/stack/record", "alias=temp&1=1", content_type=FORM, HTTP_X_EXOSITE_CIK="z" * 40
    )
    assert response.status_code == 401


def test_records_count_against_the_write_rate(device_client, token, settings):
    settings.RATE_LIMIT_WRITE = "2/60"
    codes = [send(device_client, token, f"alias=temp&{NOW - i}=1").status_code for i in range(3)]
    assert codes == [204, 204, 429]


def test_record_takes_only_post(device_client, token):
    response = device_client.get("/onep:v1/stack/record", HTTP_X_EXOSITE_CIK=token)
    assert response.status_code == 405


@pytest.mark.redis
def test_queued_writes_and_records_agree_on_the_latest(device_client, token, settings):
    from devices.ingest import Ingest
    from devices.services import write_queue

    settings.DEVICE_WRITE_QUEUE = True
    write_queue.forget_all()
    try:
        auth = f"Token {token}"
        for value in ("1", "2", "3"):
            assert device_client.write(f"temp={value}", auth).status_code == 204
        assert write_queue.queued() >= 1
        # Past points, recorded while the writes wait in the queue, stay behind them.
        assert send(device_client, token, f"alias=temp&{NOW - 60}=0").status_code == 204
        assert device_client.read("temp", auth).content == b"temp=3"
        # A point ahead of the queued writes is the latest at once, and after the ingest.
        ahead = int(time.time()) + 120
        assert send(device_client, token, f"alias=temp&{ahead}=9").status_code == 204
        assert device_client.read("temp", auth).content == b"temp=9"
        Ingest().drain()
        assert device_client.read("temp", auth).content == b"temp=9"
        assert DataPoint.objects.count() == 5
    finally:
        write_queue.forget_all()
