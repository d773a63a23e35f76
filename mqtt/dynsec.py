"""A client of Mosquitto's dynamic-security API (`$CONTROL/dynamic-security/v1`).

Commands go in batches: one control message carries many commands and the
broker answers them all in one response message, in order. Mosquitto 2.0
rewrites its whole plugin file after each command, so callers send batches
at a bounded rate (mqtt.sync) rather than command by command.
"""

import json
import ssl
import threading
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = CONTROL + "/response"
# Errors that mean the broker already is as a command wanted it.
ALREADY_DONE = {
    "Client not found",
    "Role not found",
    "Client already exists",
    "Role already exists",
}


class BrokerUnavailable(RuntimeError):
    """The broker did not accept the connection or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Response:
    command: str
    error: str | None
    data: dict | None

    @property
    def ok(self) -> bool:
        return self.error is None or self.error in ALREADY_DONE


def connect(
    url: str,
    username: str,
    password: str,
    *,
    client_id: str,
    timeout: float = 10.0,
    clean_start: bool = True,
    on_message=None,
    receive_maximum: int | None = None,
):
    """A connected, looping paho client (MQTT 5) for Gatehouse's own use of the broker.

    With `on_message`, messages are acknowledged by the caller (`client.ack`), and
    with `clean_start=False` the broker keeps the session (and what it queued for
    it) for a day while the client is away. `receive_maximum` bounds how many
    messages the broker sends before they are acknowledged."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{url!r} is not an mqtt:// or mqtts:// URL")
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
    )
    client.username_pw_set(username, password)
    if parts.scheme == "mqtts":
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    connected = threading.Event()
    result = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["reason"] = reason_code
        connected.set()

    client.on_connect = on_connect
    if on_message is not None:
        client.manual_ack_set(True)
        client.on_message = on_message
    properties = Properties(PacketTypes.CONNECT)
    if not clean_start:
        properties.SessionExpiryInterval = 24 * 3600
    if receive_maximum is not None:
        properties.ReceiveMaximum = receive_maximum
    try:
        client.connect(
            parts.hostname,
            parts.port or (8883 if parts.scheme == "mqtts" else 1883),
            clean_start=clean_start,
            properties=properties,
        )
    except OSError as exc:
        raise BrokerUnavailable(f"cannot reach the broker at {url}: {exc}") from exc
    client.loop_start()
    if not connected.wait(timeout) or result["reason"].is_failure:
        client.loop_stop()
        client.disconnect()
        raise BrokerUnavailable(f"the broker at {url} refused: {result.get('reason', 'timeout')}")
    return client


class Dynsec:
    """Sends batches of dynamic-security commands and reads their answers."""

    def __init__(self, url: str, username: str, password: str, *, timeout: float = 60.0):
        self.timeout = timeout
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list]] = {}
        self.client = connect(url, username, password, client_id=f"gatehouse-sync-{uuid.uuid4()}")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.subscribe(RESPONSE, qos=1)
        if not subscribed.wait(self.timeout):
            self.close()
            raise BrokerUnavailable("the broker did not confirm the response subscription")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _on_message(self, client, userdata, message):
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        if not responses:
            return
        # Every command of a batch carries the batch's id in its correlation data.
        batch = str(responses[0].get("correlationData", "")).split(":")[0]
        with self._lock:
            waiting = self._waiting.get(batch)
        if waiting is not None:
            waiting[1].extend(responses)
            waiting[0].set()

    def run(self, commands: list[dict]) -> list[Response]:
        """Send `commands` as one control message; their responses, in order."""
        if not commands:
            return []
        batch = uuid.uuid4().hex
        numbered = [
            {**command, "correlationData": f"{batch}:{index}"}
            for index, command in enumerate(commands)
        ]
        done = threading.Event()
        answers: list = []
        with self._lock:
            self._waiting[batch] = (done, answers)
        try:
            info = self.client.publish(CONTROL, json.dumps({"commands": numbered}), qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise BrokerUnavailable(
                    f"publishing to the broker failed: {paho.error_string(info.rc)}"
                )
            if not done.wait(self.timeout):
                raise BrokerUnavailable("the broker did not answer the commands in time")
        finally:
            with self._lock:
                self._waiting.pop(batch, None)
        by_index = {}
        for answer in answers:
            index = int(str(answer.get("correlationData", "")).split(":")[-1])
            by_index[index] = Response(
                answer.get("command", ""), answer.get("error"), answer.get("data")
            )
        return [
            by_index.get(index, Response(command["command"], "no answer", None))
            for index, command in enumerate(commands)
        ]

    def list_clients(self) -> list[str]:
        [answer] = self.run([{"command": "listClients", "verbose": False}])
        return list((answer.data or {}).get("clients", []))

    def list_roles(self) -> list[str]:
        [answer] = self.run([{"command": "listRoles", "verbose": False}])
        return list((answer.data or {}).get("roles", []))
