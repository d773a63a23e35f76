"""Values published over MQTT are stored as HTTP writes are, and read back over HTTP."""

import threading
import uuid

import pytest
from django.db import connections

from audit.models import Event
from mqtt import sync, topics
from mqtt.ingest import Ingest
from tests.mqtt.conftest import eventually

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def online(connector, whitelist, device_client, dynsec_client, mqtt_device):
    whitelist(connector, "00000031")
    token = device_client.activate("00000031").content.decode()
    sync.flush(dynsec_client)
    session = mqtt_device(topics.username(connector.pk, "00000031"), token)
    assert session.accepted()
    return session, token, topics.namespace(connector.pk, "00000031")


def test_a_value_published_over_mqtt_is_read_back_over_http(online, ingest, device_client):
    session, token, namespace = online
    session.publish(f"{namespace}/resource/myalias", "42")

    def read():
        response = device_client.read("myalias", f"Token {token}")
        return response.status_code == 200 and response.content.decode() == "myalias=42"

    eventually(read, "the MQTT write never reached the HTTP read")


def test_a_batch_stores_defined_aliases_and_logs_undefined_ones(
    online, ingest, connector, device_client
):
    session, token, namespace = online
    session.publish(f"{namespace}/resource.batch", '{"myalias": 7, "nosuch": "x"}')
    eventually(
        lambda: Event.objects.filter(connector=connector, kind=Event.WRITE).exists(),
        "no write event",
    )
    event = Event.objects.get(connector=connector, kind=Event.WRITE)
    assert "not stored, undefined: nosuch" in event.reason
    assert device_client.read("myalias", f"Token {token}").content.decode() == "myalias=7"


def test_a_bad_value_is_logged_and_stores_nothing(online, ingest, connector, device_client):
    session, token, namespace = online
    session.publish(f"{namespace}/resource/myalias", "not a number")
    eventually(
        lambda: Event.objects.filter(connector=connector, kind=Event.WRITE_IGNORED).exists(),
        "the refusal was not logged",
    )
    assert device_client.read("myalias", f"Token {token}").status_code in (200, 204)
    assert "myalias=" not in device_client.read("myalias", f"Token {token}").content.decode()


def test_an_ingest_started_before_its_broker_client_waits_for_it(
    settings, connector, whitelist, device_client, dynsec_client, mqtt_device
):
    """`make run` starts the ingest and the sync together: the ingest's client may not
    exist yet (here: its password changed with SECRET_KEY), and it keeps trying rather than
    exiting, then stores what devices send."""
    settings.SECRET_KEY = "a key the broker does not know yet " + "x" * 30
    waiting = Ingest(client_id=f"test-ingest-{uuid.uuid4()}", persistent=False)
    thread = threading.Thread(target=lambda: (waiting.run(), connections.close_all()))
    thread.start()
    try:
        assert not waiting.ready.wait(2) and thread.is_alive()
        sync.ensure_service_clients(dynsec_client)
        assert waiting.ready.wait(60), "the ingest did not subscribe once its client existed"
        whitelist(connector, "00000032")
        token = device_client.activate("00000032").content.decode()
        sync.flush(dynsec_client)
        session = mqtt_device(topics.username(connector.pk, "00000032"), token)
        assert session.accepted()
        session.publish(f"{topics.namespace(connector.pk, '00000032')}/resource/myalias", "7")
        eventually(
            lambda: device_client.read("myalias", f"Token {token}").content == b"myalias=7",
            "the write was not stored",
        )
    finally:
        waiting.stop()
        thread.join(60)
    assert not thread.is_alive()
    # The settings fixture restores SECRET_KEY; the next test's dynsec_client restores the
    # ingest's password with it.


def test_an_ingest_waiting_for_an_absent_broker_stops_when_told(settings):
    waiting = Ingest(client_id=f"test-ingest-{uuid.uuid4()}", url="mqtt://127.0.0.1:1")

    def run():
        try:
            waiting.run()
        finally:
            connections.close_all()  # the thread's own, opened to read the receipts

    thread = threading.Thread(target=run)
    thread.start()
    assert not waiting.ready.wait(1.5) and thread.is_alive()
    waiting.stop()
    thread.join(60)
    assert not thread.is_alive() and not waiting.ready.is_set()
