"""Which devices are connected over MQTT, read from the broker's own log.

Mosquitto announces each session in its log (`connection_messages true`, which
mqtt/broker.py and deploy/mosquitto/ set):

    New client connected from 10.0.0.7:51234 as sensor-1 (p2, c1, k60, u'dt…/00000001').
    Client sensor-1 closed its connection.
    Client sensor-1 has exceeded timeout, disconnecting.
    Client sensor-1 disconnected.
    Client sensor-1 been disconnected by administrative action.

`manage.py mqtt_presence` follows that file (`Follower`), keeps one `Session` row
per connected device, and logs `mqtt_connect` and `mqtt_disconnect` events for the
device; a session the broker ended because Gatehouse removed or changed the
device's broker client (revoked, reset or deleted: mqtt.clients.remove) is
logged as `mqtt_kicked`.

Refused connections are not logged per device: Mosquitto 2.0 writes
"Client <unknown> disconnected, not authorised." without the username or the
client id, so nothing ties the refusal to a device.
"""

import logging
import os
import re
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.models import Event
from devices.models import Device
from devices.services import record_event
from mqtt.models import BrokerClient, LogPosition, Session

logger = logging.getLogger(__name__)

# What one step reads at most; the rest waits for the next step.
READ_BYTES = 1024 * 1024
CONNECTED = re.compile(
    r"New client connected from (?P<address>\S+) as (?P<client>.+) "
    r"\(p\d+, c\d+, k\d+(?:, u'(?P<username>.*)')?\)\.$"
)
ENDED = re.compile(
    r"Client (?P<client>.+?) (?P<how>closed its connection|has exceeded timeout"
    r"|been disconnected by administrative action"
    r"|disconnected(?: due to [a-z ]+)?|already connected, closing old connection)[.,]"
)
STARTED = re.compile(r"mosquitto version \S+ running$")
KICKED = "been disconnected by administrative action"
WORDS = {
    "closed its connection": "closed its connection",
    "has exceeded timeout": "stopped answering (keepalive timeout)",
    "already connected, closing old connection": "replaced by a new connection with its client id",
}


def split_line(line: str) -> tuple[datetime, str]:
    """The time Mosquitto wrote a line ("%Y-%m-%dT%H:%M:%S" or seconds since 1970,
    its default) and the message; now when the time is in another format."""
    stamp, sep, message = line.partition(": ")
    if not sep:
        return timezone.now(), line
    try:
        if stamp.isdigit():
            return datetime.fromtimestamp(int(stamp), tz=timezone.get_current_timezone()), message
        return datetime.fromisoformat(stamp).astimezone(), message
    except ValueError:
        return timezone.now(), line


def handle(line: str) -> None:
    """Apply one line of the broker's log."""
    at, message = split_line(line.rstrip("\r\n"))
    if match := CONNECTED.search(message):
        if match["username"] is not None:
            connected(match["username"], match["client"], match["address"], at)
    elif match := ENDED.search(message):
        if match["client"] != "<unknown>":
            ended(match["client"], match["how"])
    elif STARTED.search(message):
        # A broker that starts holds no session: those of its last run are over.
        Session.objects.all().delete()


def connected(username: str, client_id: str, address: str, at: datetime) -> None:
    client = BrokerClient.objects.filter(username=username).first()
    if client is None:
        return  # Gatehouse's own sync and ingest, or a client it did not make
    ip = peer_ip(address)
    with transaction.atomic():
        Session.objects.update_or_create(
            username=username,
            defaults={
                "client_id": client_id,
                "device_id": client.device_id,
                "connector_id": client.connector_id,
                "identity": client.identity,
                "address": ip or "",
                "connected_at": at,
            },
        )
        # Seen: a device given a secret (devices.services.issued) has connected in time.
        Device.objects.filter(pk=client.device_id).update(
            first_seen_at=Coalesce("first_seen_at", Value(at)), last_seen_at=at, last_ip=ip
        )
        record_event(
            client.connector_id,
            client.identity,
            Event.MQTT_CONNECT,
            f"as client {client_id[:100]} with username {username[:200]}",
            ip,
        )


def peer_ip(address: str) -> str | None:
    """The IP address of "<ip>:<port>" as Mosquitto writes it (IPv6 unbracketed)."""
    try:
        return str(ip_address(address.rsplit(":", 1)[0].strip("[]")))
    except ValueError:
        return None


def ended(client_id: str, how: str) -> None:
    with transaction.atomic():
        for session in Session.objects.select_for_update().filter(client_id=client_id):
            session.delete()
            kicked = how == KICKED or not (
                BrokerClient.objects.filter(
                    username=session.username, device_id=session.device_id
                ).exists()
            )
            record_event(
                session.connector_id,
                session.identity,
                Event.MQTT_KICKED if kicked else Event.MQTT_DISCONNECT,
                (
                    "its broker client was removed or changed (revoked, reset or deleted)"
                    if kicked
                    else WORDS.get(how, "disconnected")
                ),
                session.address,
            )


class Follower:
    """Reads what the broker appended to its log since the last step."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def step(self) -> int:
        """Apply the complete lines written since the last step; how many there were."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return 0
        position, _ = LogPosition.objects.get_or_create(
            path=str(self.path), defaults={"inode": stat.st_ino, "offset": 0}
        )
        if position.inode != stat.st_ino or stat.st_size < position.offset:
            # Rotated or truncated: the new file is read from its start.
            position.inode, position.offset = stat.st_ino, 0
        with open(self.path, "rb") as log:
            log.seek(position.offset)
            data = log.read(READ_BYTES)
        complete = data[: data.rfind(b"\n") + 1]
        lines = complete.decode(errors="replace").splitlines()
        for line in lines:
            handle(line)
        position.offset += len(complete)
        position.save(update_fields=["inode", "offset"])
        return len(lines)
