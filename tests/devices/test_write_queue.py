"""Queued device writes (DEVICE_WRITE_QUEUE): Redis holds them, the ingest stores them.

Against the real Redis of the run and the real database; the ingest runs
in-process (Ingest.drain) or, in the last test, as `manage.py ingest`.
"""

import threading
import time

import pytest
from django.core.cache import cache
from django.db import connection

from audit.models import Event
from connectors.models import Connector, Resource
from core import redis_scripts
from devices import services
from devices.ingest import Ingest
from devices.models import DataPoint, Device, IngestMark
from devices.services import write_queue
from tests.support.clients import DeviceClient, basic

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _queued(settings):
    settings.DEVICE_WRITE_QUEUE = True
    write_queue.forget_all()
    yield
    write_queue.forget_all()


def queued() -> int:
    return write_queue.queued()


def values() -> list[str]:
    return list(DataPoint.objects.order_by("id").values_list("value", flat=True))


@pytest.fixture
def token_auth(device_client, connector, whitelist):
    whitelist(connector, "00000001")
    return "Token " + device_client.activate("00000001").content.decode()


def test_writes_are_queued_read_back_at_once_and_stored_by_the_ingest(device_client, token_auth):
    for value in ("1", "2", "3"):
        assert device_client.write(f"myalias={value}", token_auth).status_code == 204
    # The first write verified the token against the database; all three wait in Redis.
    assert queued() == 3 and not DataPoint.objects.exists()
    assert device_client.read("myalias", token_auth).content == b"myalias=3"

    assert Ingest().drain() == 3
    assert values() == ["1", "2", "3"] and queued() == 0
    writes = Event.objects.filter(kind=Event.WRITE).order_by("id")
    assert [event.reason for event in writes] == ["myalias=1", "myalias=2", "myalias=3"]
    assert {str(event.source_ip) for event in writes} == {"127.0.0.1"}
    device = Device.objects.get()
    assert device.last_seen_at is not None and device.last_ip == "127.0.0.1"
    assert device_client.read("myalias", token_auth).content == b"myalias=3"


def test_stored_rows_carry_the_time_the_write_arrived(device_client, token_auth):
    before = time.time()
    device_client.write("myalias=1", token_auth)
    device_client.write("myalias=2", token_auth)
    after = time.time()
    time.sleep(0.05)
    Ingest().drain()
    for point in DataPoint.objects.all():
        assert before <= point.created_at.timestamp() <= after


def test_undefined_aliases_are_logged_not_stored_and_bad_values_are_400(device_client, token_auth):
    device_client.write("myalias=1", token_auth)
    assert device_client.write("myalias=7&other=x", token_auth).status_code == 204
    response = device_client.write("myalias=seven", token_auth)
    assert response.status_code == 400 and b"not a number" in response.content
    assert queued() == 2
    Ingest().drain()
    assert values() == ["1", "7"]
    assert Event.objects.filter(reason="myalias=7, other=x (not stored, undefined: other)")


def test_revoke_and_reset_refuse_a_remembered_token_at_once(device_client, connector, token_auth):
    device = Device.objects.get()
    device_client.write("myalias=1", token_auth)
    device_client.write("myalias=2", token_auth)
    services.revoke_device(device)
    assert device_client.write("myalias=3", token_auth).status_code == 401
    services.reset_device(Device.objects.get())
    assert device_client.write("myalias=4", token_auth).status_code == 401
    fresh = "Token " + device_client.activate("00000001").content.decode()
    assert device_client.write("myalias=5", fresh).status_code == 204
    Ingest().drain()
    assert values() == ["1", "2", "5"]


def test_a_resource_defined_a_moment_ago_is_stored(device_client, connector, token_auth):
    device_client.write("later=1", token_auth)
    device_client.write("later=2", token_auth)
    Resource.objects.create(connector=connector, alias="later", format="number")
    assert device_client.write("later=3", token_auth).status_code == 204
    Ingest().drain()
    assert list(DataPoint.objects.values_list("alias", "value")) == [("later", "3")]


def test_the_write_rate_limit_holds_on_the_queued_path(device_client, token_auth, settings):
    settings.RATE_LIMIT_WRITE = "3/60"
    codes = [device_client.write("myalias=1", token_auth).status_code for _ in range(4)]
    assert codes == [204, 204, 204, 429]
    response = device_client.write("myalias=1", token_auth)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert queued() == 3


def test_basic_password_writes_are_queued_and_refused_after_reset(make_connector, whitelist):
    connector = make_connector(auth_mode="password", _resources={"a": "number"})
    client = DeviceClient(connector)
    device = whitelist(connector, "dev-1")
    client.activate("dev-1", PASSWORD)
    for value in ("1", "2"):
        assert client.write(f"a={value}", basic("dev-1", PASSWORD)).status_code == 204
    assert client.write("a=3", basic("dev-1", PASSWORD + "x")).status_code == 401
    assert queued() == 2
    services.reset_device(device)
    assert client.write("a=4", basic("dev-1", PASSWORD)).status_code == 401
    Ingest().drain()
    assert values() == ["1", "2"]


def test_a_full_queue_stores_writes_directly(device_client, token_auth, settings):
    settings.DEVICE_WRITE_QUEUE_MAX = 2
    for value in ("1", "2", "3", "4"):
        assert device_client.write(f"myalias={value}", token_auth).status_code == 204
    assert queued() == 2
    assert values() == ["3", "4"]
    Ingest().drain()
    assert sorted(values()) == ["1", "2", "3", "4"]
    assert device_client.read("myalias", token_auth).content == b"myalias=4"


def test_a_batch_stored_by_an_ingest_that_died_before_acknowledging_is_stored_once(
    device_client, token_auth
):
    for value in ("1", "2"):
        device_client.write(f"myalias={value}", token_auth)
    crashed = Ingest(name="crashed")
    entries, again = crashed._take()
    # Stored and committed, then the process died before acknowledging to Redis.
    crashed._store_batch(entries, again=again)
    device_client.write("myalias=3", token_auth)
    # Another ingest claims the two it left pending, finds them marked, and stores the new one.
    assert Ingest(claim_seconds=0).drain() == 3
    assert values() == ["1", "2", "3"] and queued() == 0


def test_an_ingest_started_again_under_its_name_finds_its_batch_stored(device_client, token_auth):
    for value in ("1", "2"):
        device_client.write(f"myalias={value}", token_auth)
    crashed = Ingest(name="ingest-1")
    crashed._store_batch(crashed._take()[0], again=False)
    # Its own pending entries come first, before anyone's claim period is over.
    assert Ingest(name="ingest-1", claim_seconds=3600).run_once() == 2
    assert values() == ["1", "2"] and queued() == 0


def test_a_batch_an_ingest_took_but_never_stored_is_stored_by_another(device_client, token_auth):
    for value in ("1", "2"):
        device_client.write(f"myalias={value}", token_auth)
    Ingest(name="killed")._take()  # taken, then killed before storing
    # Still the other's until it has been silent for the claim period.
    assert Ingest(claim_seconds=3600).drain() == 0
    assert Ingest(claim_seconds=0).drain() == 2
    assert values() == ["1", "2"] and queued() == 0


def test_an_ingest_that_stalled_past_its_claim_period_leaves_its_batch_to_the_claimer(
    device_client, token_auth
):
    for value in ("1", "2"):
        device_client.write(f"myalias={value}", token_auth)
    slow = Ingest(name="slow")
    entries, again = slow._take()  # then it stalls
    assert Ingest(claim_seconds=0).drain() == 2  # claimed, stored, acknowledged
    slow._store_batch(entries, again=again)  # it wakes: nothing is pending under it any more
    assert values() == ["1", "2"] and queued() == 0


def test_a_mark_keeps_a_batch_until_it_is_acknowledged(device_client, token_auth):
    for value in ("1", "2"):
        device_client.write(f"myalias={value}", token_auth)
    first = Ingest(name="first")
    entries, again = first._take()
    first._store_batch(entries, again=again)  # stored; acknowledging it to Redis failed
    second = Ingest(name="second", claim_seconds=0)
    claimed, again = second._take()
    assert again and len(claimed) == 2
    device_client.write("myalias=3", token_auth)
    # The first ingest goes on with a new batch; its mark still names the two.
    assert first.run_once() == 1
    second._store_batch(claimed, again=again)
    assert values() == ["1", "2", "3"]


def test_a_redis_that_lost_its_data_gets_the_group_again(device_client, token_auth):
    device_client.write("myalias=1", token_auth)
    device_client.write("myalias=2", token_auth)
    ingest = Ingest()
    ingest.drain()
    cache.clear()  # Redis restarted empty: no stream, no group
    write_queue.forget_all()
    device_client.write("myalias=3", token_auth)
    device_client.write("myalias=4", token_auth)
    assert ingest.drain() == 2
    assert values() == ["1", "2", "3", "4"]


def test_two_ingests_share_the_stream_and_store_each_write_once(device_client, token_auth):
    for value in range(1, 6):
        device_client.write(f"myalias={value}", token_auth)
    first, second = Ingest(batch_size=2), Ingest(batch_size=2)
    assert first.run_once() == 2
    assert second.run_once() == 2
    assert first.run_once() == 1
    assert (second.run_once(), first.run_once()) == (0, 0)
    assert sorted(values()) == ["1", "2", "3", "4", "5"] and queued() == 0
    stop = threading.Event()
    stop.set()
    first.run(stop)  # returns at once


def test_marks_and_ingests_with_nothing_pending_are_tidied_away(device_client, token_auth):
    device_client.write("myalias=1", token_auth)
    Ingest(name="done").drain()
    device_client.write("myalias=2", token_auth)
    stopped = Ingest(name="stopped")
    stopped._store_batch(stopped._take()[0], again=False)  # stored, not acknowledged
    Ingest(name="tidy", claim_seconds=0).tidy()
    assert set(IngestMark.objects.exclude(consumer="").values_list("consumer", flat=True)) == {
        "stopped"
    }
    group = write_queue.redis_client().xinfo_consumers(write_queue.stream_key(), "ingest")
    assert [consumer["name"] for consumer in group] == [b"stopped"]


def test_writes_of_a_device_deleted_meanwhile_are_dropped(device_client, token_auth):
    device_client.write("myalias=1", token_auth)
    Device.objects.get().delete()
    assert Ingest().drain() == 1
    assert not DataPoint.objects.exists()
    assert not Event.objects.filter(kind=Event.WRITE).exists()


def test_deleting_a_device_refuses_its_remembered_token(device_client, token_auth):
    device_client.write("myalias=1", token_auth)
    services.delete_device(Device.objects.get())
    assert device_client.write("myalias=2", token_auth).status_code == 401


def test_a_connector_change_is_seen_at_once(device_client, connector, token_auth):
    device_client.write("myalias=1", token_auth)
    device_client.write("myalias=2", token_auth)
    Connector.objects.get(pk=connector.pk).delete()
    assert device_client.write("myalias=3", token_auth).status_code == 404
    assert Ingest().drain() == 2
    assert not DataPoint.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_long_poll_wakes_on_a_queued_write(device_client, token_auth, settings):
    settings.LONG_POLL_INTERVAL_SECONDS = 0.02
    device_client.write("myalias=1", token_auth)
    assert device_client.read("myalias", token_auth, HTTP_REQUEST_TIMEOUT="100").status_code == 304
    answer = {}

    def poll():
        try:
            answer["response"] = DeviceClient(device_client.connector).read(
                "myalias", token_auth, HTTP_REQUEST_TIMEOUT="5000"
            )
        finally:
            connection.close()

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    device_client.write("myalias=9", token_auth)
    poller.join(10)
    assert answer["response"].status_code == 200
    assert answer["response"].content == b"myalias=9"
    # And with If-Modified-Since in the past, the queued value answers at once.
    response = device_client.read(
        "myalias", token_auth, HTTP_REQUEST_TIMEOUT="100", HTTP_IF_MODIFIED_SINCE="1000"
    )
    assert response.content == b"myalias=9"


def test_a_redis_that_forgot_the_script_still_queues(device_client, token_auth):
    device_client.write("myalias=1", token_auth)
    write_queue.redis_client().script_flush()
    assert device_client.write("myalias=2", token_auth).status_code == 204
    assert device_client.write("myalias=3", token_auth).status_code == 204
    assert Ingest().drain() == 3
    assert values() == ["1", "2", "3"]


def test_a_redis_connection_closed_by_the_server_is_reopened(device_client, token_auth):
    device_client.write("myalias=1", token_auth)
    device_client.write("myalias=2", token_auth)
    # What a Redis restart does to every client connection; here only to this
    # thread's connection for queued writes.
    own = redis_scripts.connection()
    own.send_command("CLIENT", "ID")
    write_queue.redis_client().client_kill_filter(_id=own.read_response())
    assert device_client.write("myalias=3", token_auth).status_code == 204
    assert Ingest().drain() == 3
    assert values() == ["1", "2", "3"]


def test_past_the_limit_the_oldest_remembered_credential_makes_room(
    device_client, connector, whitelist, token_auth, monkeypatch
):
    monkeypatch.setattr(write_queue, "_REMEMBERED_MAX", 1)
    whitelist(connector, "00000002")
    other = "Token " + device_client.activate("00000002").content.decode()
    for auth in (token_auth, other, token_auth, other):
        assert device_client.write("myalias=1", auth).status_code == 204
    assert len(write_queue._remembered) == 1
    assert Ingest().drain() == 4
