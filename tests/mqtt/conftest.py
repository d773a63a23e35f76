"""A Mosquitto with the dynamic-security plugin for the MQTT tests, started by the suite.

One broker per test session on free loopback ports, in a temporary folder, with
an admin password made for the run and a TLS listener whose server certificate
Gatehouse's certificate code made. Each test points the settings at it; device
usernames are unique per test (connector ids are random).
"""

import ssl
import threading
import time
import uuid

import paho.mqtt.client as paho
import pytest
from django.db import connections

from mqtt import broker, sync, tls
from mqtt.ingest import Ingest


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory):
    assert broker.installed(), "the MQTT tests need Debian's mosquitto (apt-get install mosquitto)"
    folder = tmp_path_factory.mktemp("mosquitto")
    files, ca_path = tls.server_files(folder / "tls")
    running = broker.Broker(folder, tls=files).start()
    running.server_ca = ca_path
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def broker_settings(settings, mosquitto):
    for name, value in mosquitto.settings().items():
        setattr(settings, name, value)
    settings.MQTT_SYNC_INTERVAL = 0.0
    return mosquitto


@pytest.fixture
def dynsec_client(broker_settings):
    client = sync.connect()
    sync.ensure_service_clients(client)
    try:
        yield client
    finally:
        client.close()


class Device:
    """A paho-mqtt client as firmware would run it, recording what happens to it."""

    def __init__(self, mosquitto, username, password, *, tls_port=False, protocol=paho.MQTTv311):
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"device-{uuid.uuid4()}", protocol=protocol
        )
        self.client.username_pw_set(username, password)
        port = mosquitto.port
        if tls_port:
            self.client.tls_set(ca_certs=str(mosquitto.server_ca), cert_reqs=ssl.CERT_REQUIRED)
            port = mosquitto.tls_port
        self.connack = threading.Event()
        self.gone = threading.Event()
        self.subacks: dict[int, list] = {}
        self.suback = threading.Condition()
        self.messages: list[tuple[str, bytes]] = []
        self.received = threading.Condition()
        self.reason = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(mosquitto.host, port)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.reason = reason_code
        self.connack.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.gone.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.suback:
            self.subacks[mid] = reason_codes
            self.suback.notify_all()

    def _on_message(self, client, userdata, message):
        with self.received:
            self.messages.append((message.topic, message.payload))
            self.received.notify_all()

    def accepted(self) -> bool:
        assert self.connack.wait(30), "no CONNACK"
        return not self.reason.is_failure

    def subscribe(self, topic_filter: str) -> bool:
        """Whether the broker granted the subscription."""
        _, mid = self.client.subscribe(topic_filter, qos=1)
        with self.suback:
            assert self.suback.wait_for(lambda: mid in self.subacks, 30), "no SUBACK"
        return not self.subacks[mid][0].is_failure

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(30)

    def wait_for_message(self, count: int = 1) -> list:
        with self.received:
            assert self.received.wait_for(lambda: len(self.messages) >= count, 30)
        return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_device(mosquitto):
    opened = []

    def connect(username, password, **kwargs):
        device = Device(mosquitto, username, password, **kwargs)
        opened.append(device)
        return device

    yield connect
    for device in opened:
        device.close()


@pytest.fixture
def ingest(dynsec_client):
    running = Ingest(client_id=f"test-ingest-{uuid.uuid4()}", persistent=False)
    thread = threading.Thread(target=lambda: (running.run(), connections.close_all()))
    thread.start()
    assert running.ready.wait(30), "the ingest did not subscribe"
    yield running
    running.stop()
    thread.join(30)


def eventually(check, what: str):
    """Polls until `check()` is truthy; a deadline only for a broken system."""
    deadline = time.monotonic() + 30
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return result
