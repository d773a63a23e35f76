"""Values published over MQTT are stored as HTTP writes are, and read back over HTTP."""

import pytest

from audit.models import Event
from mqtt import sync, topics
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
