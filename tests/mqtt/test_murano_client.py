"""Murano's own device library, murano-client, in MQTT mode and unchanged, on the broker.

What a standard Mosquitto allows (docs/mqtt.md, "Murano's MQTT dialect"): the
library's username/password mode connects with `<connector id>/<identity>` as its
id and the token as its password; its `$resource…` publishes are dropped by the
ACLs; values it publishes into the device's namespace, in either batch form, are
stored. Its token mode (username "") is anonymous to Mosquitto and refused.
"""

import json
import time

import pytest

from devices.models import DataPoint
from mqtt import sync, topics
from tests.mqtt.conftest import eventually
from tests.support.murano import murano_client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The library predates paho-mqtt 2's callback versions and imports pkg_resources.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture
def provisioned(connector, whitelist, device_client, dynsec_client):
    whitelist(connector, "00000041")
    token = device_client.activate("00000041").content.decode()
    sync.flush(dynsec_client)
    return topics.username(connector.pk, "00000041"), token


@pytest.fixture
def murano(mosquitto):
    MuranoClient = murano_client("client").MuranoClient

    started = []

    def start(**kwargs):
        client = MuranoClient(
            memory_queue=False,
            murano_host=f"mqtt://{mosquitto.host}",
            murano_port=mosquitto.tls_port,
            murano_cacert=str(mosquitto.server_ca),
            watchlist=["myalias"],
            **kwargs,
        )
        client.start()
        started.append(client)
        return client

    yield start
    for client in started:
        client.always_reconnect = False
        client.disconnect()
        client.loop_stop()


def stored_values(connector) -> list[str]:
    return list(
        DataPoint.objects.filter(device__connector=connector)
        .order_by("pk")
        .values_list("value", flat=True)
    )


def test_murano_client_in_password_mode_connects_and_its_namespace_writes_are_stored(
    provisioned, connector, murano, ingest, device_client
):
    username, token = provisioned
    client = murano(murano_id=username, murano_token=token, password="username mode")
    assert client.is_connected() and not client.cannot_connect()
    namespace = topics.namespace(connector.pk, "00000041")

    # Its own dialect: published, and dropped by the broker (no topic names the device).
    assert client.ack("myalias", "1")[0]
    assert client.tell(resource="myalias", timestamp=time.time(), payload="2")[0]
    # The same values in the device's namespace, as the paho client it is.
    client.publish(f"{namespace}/resource/myalias", "3", qos=1).wait_for_publish(30)
    batch = [{"timestamp": int(time.time() * 1e6), "values": {"myalias": 4}}]
    client.publish(f"{namespace}/resource.batch", json.dumps(batch), qos=1).wait_for_publish(30)

    eventually(lambda: len(stored_values(connector)) >= 2, "the namespace writes were not stored")
    assert stored_values(connector) == ["3", "4"]
    assert device_client.read("myalias", f"Token {token}").content.decode() == "myalias=4"


def test_murano_clients_token_mode_an_empty_username_is_refused(provisioned, mqtt_device):
    _, token = provisioned
    assert not mqtt_device("", token).accepted()
    assert not mqtt_device("", token, tls_port=True).accepted()


def test_murano_provisioning_topic_reaches_nobody(provisioned, connector, mqtt_device):
    """A device may not publish `$provision/<id>` (nothing would answer it alone)."""
    username, token = provisioned
    device = mqtt_device(username, token)
    assert device.accepted()
    assert not device.subscribe("$provision/#")
    assert device.subscribe(f"{topics.namespace(connector.pk, '00000041')}/#")
