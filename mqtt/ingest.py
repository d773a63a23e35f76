"""Storing what devices publish: the subscriber behind `manage.py mqtt_ingest`.

It subscribes to every device's resource topics through the shared subscription
`$share/gatehouse/...`, so several ingests split the stream, and stores each
message through `devices.services.write_data`, the path HTTP writes take:
defined aliases become data points, undefined ones are named in the write
event, last-seen moves. The broker's ACLs guarantee that only a device
publishes in its own namespace, so the topic names the writer.

Messages are QoS 1, stored in batches of up to BATCH in one transaction (their
data points and events in a few statements: devices.services.WriteBatch) and
acknowledged only once committed: a message in flight when an ingest stops is
delivered again (to it on reconnection: it keeps its session). The receipts
written with each batch (mqtt.receipts) keep a message that was stored but not
yet acknowledged when the ingest died from being stored twice.
"""

import base64
import hashlib
import hmac
import json
import logging
import queue
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction

from audit.models import Event
from devices import services
from devices.models import Device
from mqtt import dynsec, receipts, topics

logger = logging.getLogger(__name__)
DEVICE_MEMORY_SECONDS = 5.0
MAX_PAYLOAD_BYTES = 64 * 1024
BATCH = 200  # messages stored in one transaction
# While the broker is away or refuses the ingest: pauses between tries, a line now and then.
CONNECT_FIRST_PAUSE, CONNECT_MAX_PAUSE, CONNECT_SAY_EVERY = 0.5, 10.0, 60.0
BATCH_FORMS = (
    'resource.batch is a non-empty JSON object {"alias": value, …} or Murano\'s list '
    '[{"timestamp": …, "values": {"alias": value, …}}, …]'
)


def password() -> str:
    """The ingest's broker password: derived from SECRET_KEY, the same on every host."""
    digest = hmac.new(settings.SECRET_KEY.encode(), b"gatehouse mqtt ingest", hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


class UnusableMessage(ValueError):
    """A message that cannot be stored as a write; logged on the device when it has one."""


def pairs_of(kind: str, alias: str | None, payload: bytes) -> list[tuple[str, str]]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise UnusableMessage(f"payload over {MAX_PAYLOAD_BYTES} bytes")
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        raise UnusableMessage("payload is not UTF-8") from exc
    if "\x00" in text:
        raise UnusableMessage("payload holds a NUL")
    if kind == "resource":
        return [(alias, text)]
    try:
        values = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UnusableMessage(BATCH_FORMS) from exc
    if isinstance(values, list):
        values = _murano_batch(values)
    if not isinstance(values, dict) or not values:
        raise UnusableMessage(BATCH_FORMS)
    return [
        (str(name), value if isinstance(value, str) else json.dumps(value))
        for name, value in values.items()
    ]


def _murano_batch(entries: list) -> dict:
    """Murano's batch, `[{"timestamp": µs, "values": {alias: value}}, …]`, as one object
    (a later entry's value of an alias wins). Values are stored when they arrive: the
    device's timestamps are not kept."""
    merged = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("values"), dict):
            raise UnusableMessage(BATCH_FORMS)
        merged.update(entry["values"])
    return merged


class Ingest:
    """One member of the shared subscription."""

    def __init__(self, *, client_id: str, url: str | None = None, persistent: bool = True):
        self.url = url or settings.MQTT_BROKER_URL
        self.client_id = client_id
        # A persistent session is kept by the broker while the ingest is away, with the
        # messages of the shared subscription that were handed to it: restart it under
        # the same client id. A throwaway id (tests) must not leave such a session behind.
        self.persistent = persistent
        self.stored = 0
        self.repeated = 0  # delivered again after a crash, already stored: not stored again
        self._devices: dict[tuple[str, str], tuple[float, Device | None]] = {}
        self._stop = threading.Event()
        self._inbox: queue.Queue = queue.Queue()
        self._receipts: receipts.Receipts | None = None
        self.ready = threading.Event()
        self.on_ready = None  # called once subscribed (manage.py mqtt_ingest says so)

    def device(self, connector_id: str, identity: str) -> Device | None:
        key = (connector_id, identity)
        remembered = self._devices.get(key)
        now = time.monotonic()
        if remembered is not None and now - remembered[0] < DEVICE_MEMORY_SECONDS:
            return remembered[1]
        device = (
            Device.objects.select_related("connector")
            .filter(connector_id=connector_id, identity=identity, status=Device.PROVISIONED)
            .first()
        )
        self._devices[key] = (now, device)
        return device

    def store(self, messages: list, writes: services.WriteBatch) -> None:
        """Add the messages to `writes`, their writes counted against the rate limit in
        one round trip; one that cannot be stored is logged and dropped."""
        read = [self.read(message.topic, message.payload) for message in messages]
        writing = [item for item in read if item is not None and item[2] is not None]
        counts = iter(writes.count([device for device, _, _ in writing]))
        for item in read:
            if item is None:
                continue
            device, failure, pairs = item
            try:
                if failure is not None:
                    raise failure
                writes.add(device, pairs, None, counted=next(counts))
            except (UnusableMessage, services.InvalidData) as exc:
                reason = f"MQTT write refused: {getattr(exc, 'message', str(exc))}"
                writes.add_event(
                    device.connector_id, device.identity, Event.WRITE_IGNORED, reason[:500], None
                )
            except services.RateLimited:
                writes.add_event(
                    device.connector_id, device.identity, Event.RATE_LIMITED, "MQTT write", None
                )
            self.stored += 1

    def read(self, topic: str, payload: bytes):
        """(device, None, pairs) for a message to write, (device, UnusableMessage, None)
        for one to log as refused, None for one to drop (an unknown topic or device)."""
        try:
            connector_id, identity, kind, alias = topics.parse_device_topic(topic)
        except (topics.TopicError, UnicodeDecodeError):
            logger.warning("ignored a message on %r", topic[:200])
            return None
        device = self.device(connector_id, identity)
        if device is None:
            return None  # revoked or deleted a moment ago; the broker has dropped its client
        try:
            return device, None, pairs_of(kind, alias, payload)
        except UnusableMessage as exc:
            return device, exc, None

    def on_message(self, client, userdata, message) -> None:
        """paho's network thread: hand the message to the storing loop."""
        self._inbox.put(message)

    def _take(self) -> list:
        """The next messages waiting, up to BATCH; none after a short wait."""
        try:
            batch = [self._inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < BATCH:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def store_batch(self, messages: list) -> None:
        """Store the messages not stored before, with their receipts, in one transaction;
        while the database is away, wait for it (nothing is acknowledged meanwhile)."""
        while not self._stop.is_set():
            stored = self.stored
            try:
                with transaction.atomic():
                    fresh = self._receipts.fresh(messages)
                    writes = services.WriteBatch()
                    self.store(fresh, writes)
                    writes.save()
                    sequence = self._receipts.note(fresh)
            except DatabaseError:
                logger.exception("database unavailable; retrying %d message(s)", len(messages))
                self.stored = stored
                close_old_connections()
                time.sleep(1.0)
                continue
            self._receipts.sequence = sequence
            self.repeated += len(messages) - len(fresh)
            return

    def connect(self):
        """The ingest's connection, waited for while the broker is away or does not know
        the ingest yet (mqtt_sync makes its client when it starts); None once stopped."""
        pause, last_said = CONNECT_FIRST_PAUSE, None
        while not self._stop.is_set():
            try:
                return dynsec.connect(
                    self.url,
                    topics.INGEST_USERNAME,
                    password(),
                    client_id=self.client_id,
                    clean_start=not self.persistent,
                    on_message=self.on_message,
                    receive_maximum=receipts.RECEIVE_MAXIMUM,
                )
            except dynsec.BrokerUnavailable as exc:
                if last_said is None or time.monotonic() - last_said > CONNECT_SAY_EVERY:
                    logger.warning("mqtt ingest not connected yet (%s); trying again", exc)
                    last_said = time.monotonic()
            self._stop.wait(pause)
            pause = min(pause * 2, CONNECT_MAX_PAUSE)
        return None

    def run(self) -> None:
        self._receipts = receipts.Receipts(self.client_id)
        client = self.connect()
        if client is None:
            return
        granted = threading.Event()
        refused = []

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            refused.extend(code for code in reason_codes if code.is_failure)
            granted.set()

        client.on_subscribe = on_subscribe
        try:
            client.subscribe([(subscription, 1) for subscription in topics.ingest_subscriptions()])
            if not granted.wait(30) or refused:
                raise dynsec.BrokerUnavailable(f"the broker refused the subscription: {refused}")
            self.ready.set()
            if self.on_ready is not None:
                self.on_ready()
            while not self._stop.is_set():
                batch = self._take()
                if batch:
                    self.store_batch(batch)
                    for message in batch:
                        client.ack(message.mid, message.qos)
        finally:
            client.disconnect()
            client.loop_stop()

    def stop(self) -> None:
        self._stop.set()
