"""Publishing commands to devices: `<connector id>/<identity>/command/<alias>`.

When a device's maker writes a value to one of its aliases
(`devices.services.send_command`, after commit), the value is published there,
QoS 1, not retained. Each process publishes through one connection of its own,
opened on first use under the ingest's broker client (whose role may publish to
command topics and nowhere else a device reads), and opened again after a fork
or when the broker dropped it. A device subscribed to its own command topics
receives it, also after reconnecting if its session is persistent (the broker
queues QoS 1 messages for it); no other device can subscribe there.

The value is stored before it is published: a command the broker could not take
(broker unreachable) stays readable over HTTP, and the device's log says it was
not published.
"""

import logging
import os
import socket
import threading

import paho.mqtt.client as paho
from django.conf import settings

from audit.models import Event
from devices.services import record_event
from mqtt import dynsec, ingest, sync, topics

logger = logging.getLogger(__name__)
PUBLISH_TIMEOUT = 10.0


class Publisher:
    """One broker connection per process, shared by its threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._client = None
        self._pid = None
        self._url = None

    def _connected(self):
        stale = self._pid != os.getpid() or self._url != settings.MQTT_BROKER_URL
        if self._client is not None and (stale or not self._alive()):
            self._drop()
        if self._client is None:
            self._client = dynsec.connect(
                settings.MQTT_BROKER_URL,
                topics.INGEST_USERNAME,
                ingest.password(),
                client_id=f"gatehouse-commands-{socket.gethostname()}-{os.getpid()}",
            )
            self._pid = os.getpid()
            self._url = settings.MQTT_BROKER_URL
        return self._client

    def _alive(self) -> bool:
        return self._client.is_connected()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.disconnect()
            client.loop_stop()

    def publish(self, topic: str, payload: str) -> None:
        """Publish QoS 1 and wait for the broker's PUBACK; BrokerUnavailable otherwise.

        A connection the broker ended (it does when the service client's roles are
        set again, as `mqtt_sync` does on starting) is opened again once."""
        with self._lock:
            try:
                self._publish(topic, payload)
            except dynsec.BrokerUnavailable:
                self._drop()
                self._publish(topic, payload)

    def _publish(self, topic: str, payload: str) -> None:
        info = self._connected().publish(topic, payload.encode(), qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise dynsec.BrokerUnavailable(paho.error_string(info.rc))
        try:
            info.wait_for_publish(PUBLISH_TIMEOUT)
        except RuntimeError as exc:
            raise dynsec.BrokerUnavailable(str(exc)) from exc
        if not info.is_published():
            raise dynsec.BrokerUnavailable("the broker did not acknowledge the command")

    def close(self) -> None:
        with self._lock:
            self._drop()


publisher = Publisher()


def command_issued(sender, connector_id, identity, alias, value, **kwargs) -> None:
    """Receiver of devices.signals.command_issued: publish the command to the device."""
    if not sync.enabled():
        return
    topic = topics.command_topic(connector_id, identity, alias)
    try:
        publisher.publish(topic, value)
    except (dynsec.BrokerUnavailable, OSError, ValueError) as exc:
        logger.warning("command to %s not published: %s", topic, exc)
        record_event(
            connector_id,
            identity,
            Event.COMMAND,
            f"MQTT: {alias} not published to the device (broker unavailable)",
            None,
        )
