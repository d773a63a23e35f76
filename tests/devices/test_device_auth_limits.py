"""Per-address limits on device credential guesses (RATE_LIMIT_AUTH_FAILURES).

A slow password hash is counted before it runs, atomically, so a burst never
runs more hashes than the limit; an address past its limit is refused before
any credential it presents is looked up, so the right one answers 429 too.
"""

import threading

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import Event
from core import redis_scripts
from devices.models import DataPoint
from devices.services import authentication, write_queue
from tests.support.clients import DeviceClient, basic

PASSWORD = "correct-horse-battery-staple"
# A day's window, so no test straddles the start of a new one.
LIMIT = 30
RATE = f"{LIMIT}/86400"
BURST = 64


class SlowHasher(PBKDF2PasswordHasher):
    """Slow enough that a burst's requests are all inside their hash together."""

    algorithm = "pbkdf2_sha256_tests"
    iterations = 20_000


@pytest.fixture
def limits(settings):
    settings.RATE_LIMIT_AUTH_FAILURES = RATE


@pytest.fixture
def password_device(make_connector, whitelist, settings, limits):
    connector = make_connector(auth_mode="password", _resources={"myalias": "number"})
    whitelist(connector, "dev-1")
    settings.PASSWORD_HASHERS = [f"{__name__}.SlowHasher"]
    client = DeviceClient(connector)
    assert client.activate("dev-1", PASSWORD).status_code == 204
    return client


@pytest.fixture
def counted_hashes(monkeypatch):
    """How many times the slow password check ran (wrapped at the service boundary)."""
    calls = []
    check = authentication._device_by_password

    def counting(*args):
        calls.append(1)
        return check(*args)

    monkeypatch.setattr(authentication, "_device_by_password", counting)
    return calls


def _burst(request, count: int) -> list[int]:
    """`count` requests from threads released together; their status codes."""
    start, statuses = threading.Barrier(count), []

    def send():
        try:
            start.wait(timeout=60)
            statuses.append(request())
        finally:
            connection.close()
            redis_scripts.close_connection()

    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return statuses


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_wrong_passwords_runs_no_more_slow_hashes_than_the_limit(
    password_device, counted_hashes
):
    statuses = _burst(
        lambda: (
            password_device.write(
                "myalias=1", basic("dev-1", "wrong-password-0123456789")
            ).status_code
        ),
        BURST,
    )
    assert sorted(statuses) == [401] * LIMIT + [429] * (BURST - LIMIT)
    assert len(counted_hashes) == LIMIT
    assert Event.objects.filter(kind=Event.AUTH_FAILED).count() == LIMIT


@pytest.mark.django_db
def test_a_right_password_gives_its_count_back(password_device, counted_hashes):
    wrong = basic("dev-1", "wrong-password-0123456789")
    for _ in range(LIMIT - 1):
        assert password_device.write("myalias=1", wrong).status_code == 401
    assert password_device.write("myalias=1", basic("dev-1", PASSWORD)).status_code == 204
    # The verified password did not use up the last guess.
    assert password_device.write("myalias=1", wrong).status_code == 401
    assert password_device.write("myalias=1", wrong).status_code == 429
    assert len(counted_hashes) == LIMIT + 1


@pytest.mark.django_db
def test_past_the_limit_the_right_password_is_refused_without_a_lookup(password_device):
    right = basic("dev-1", PASSWORD)
    # Verified once, so the cache remembers it.
    assert password_device.write("myalias=1", right).status_code == 204
    for _ in range(LIMIT):
        password_device.write("myalias=1", basic("dev-1", "wrong-password-0123456789"))
    with CaptureQueriesContext(connection) as queries:
        response = password_device.write("myalias=2", right)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert not queries.captured_queries
    assert list(DataPoint.objects.values_list("value", flat=True)) == ["1"]


@pytest.fixture
def token_device(connector, whitelist, limits):
    whitelist(connector, "00000001")
    client = DeviceClient(connector)
    token = client.activate("00000001").content.decode()
    return client, f"Token {token}"


def _guess_tokens(client, count: int) -> list[int]:
    return [client.write("myalias=1", "Token " + "x" * 40).status_code for _ in range(count)]


@pytest.mark.django_db
def test_past_the_limit_the_right_token_is_refused_without_a_lookup(token_device):
    client, right = token_device
    assert client.write("myalias=1", right).status_code == 204
    assert _guess_tokens(client, LIMIT + 5) == [401] * LIMIT + [429] * 5
    with CaptureQueriesContext(connection) as queries:
        write = client.write("myalias=2", right)
        read = client.read("myalias", right)
    assert (write.status_code, read.status_code) == (429, 429)
    assert not queries.captured_queries
    assert list(DataPoint.objects.values_list("value", flat=True)) == ["1"]


@pytest.mark.redis
@pytest.mark.django_db
def test_past_the_limit_a_remembered_token_is_refused_by_the_queued_write_too(
    token_device, settings
):
    settings.DEVICE_WRITE_QUEUE = True
    write_queue.forget_all()
    try:
        client, right = token_device
        # Verified against the database, then remembered by this process.
        assert client.write("myalias=1", right).status_code == 204
        assert client.write("myalias=2", right).status_code == 204
        assert _guess_tokens(client, LIMIT) == [401] * LIMIT
        with CaptureQueriesContext(connection) as queries:
            response = client.write("myalias=3", right)
        assert response.status_code == 429
        assert not queries.captured_queries
        assert write_queue.queued() == 2
    finally:
        write_queue.forget_all()
