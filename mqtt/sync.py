"""Keeping the broker's clients and roles in step with Gatehouse's devices.

Two receivers fill an outbox in the database, in the transaction (or right
after the commit) of the change they hear of:
- `credentials_changed` adds a `BrokerChange`: this device (or any device of
  this connector) must be looked at again;
- `secret_issued` adds a `PendingSecret`: the device's new token or password,
  sealed (mqtt.vault), because the broker needs the clear secret to make its
  own salted hash and Gatehouse keeps only hashes of its own.

`manage.py mqtt_sync` (`Worker`) empties the outbox: it reads each device's
state from the database, turns it into dynamic-security commands, sends them in
one control message at most every MQTT_SYNC_INTERVAL (and after a pause as long
as the broker took over the last one), and deletes what the
broker answered (the sealed secrets with it). A device that is no longer
provisioned loses its broker client, which disconnects its session at once.
"""

import logging
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from core.sql import columns, insert
from devices.models import Device
from mqtt import clients, dynsec, tls, topics, vault
from mqtt.models import BrokerChange, BrokerClient, PendingSecret

logger = logging.getLogger(__name__)
BATCH = 500  # outbox rows per control message, at most
FIRST_LIMIT = 10  # rows of a worker's first message, before it has timed the broker
MESSAGE_SECONDS = 1.0  # what one control message should cost the broker

# The receivers run in every activation: written out, as the device API's own
# statements are (devices.sql), since the ORM's compiling costs more than the insert.
CHANGE_FIELDS = ("reason", "connector_id", "device_id", "identity", "created_at")
INSERT_CHANGE = insert(BrokerChange, CHANGE_FIELDS)
INSERT_SECRET = insert(PendingSecret, ("device", "credential_version", "sealed", "created_at"))
_id, _version, _connector, _identity = columns(
    Device, "id", "credential_version", "connector", "identity"
)
DEVICE_VERSION = (
    f"SELECT {_id}, {_version} FROM {Device._meta.db_table} "  # noqa: S608
    f"WHERE {_connector} = %s AND {_identity} = %s"
)


def enabled() -> bool:
    return bool(settings.MQTT_BROKER_URL)


# --- receivers ---------------------------------------------------------------------------


def _connection(model):
    return connections[router.db_for_write(model)]


def credentials_changed(sender, changes, **kwargs) -> None:
    if not enabled():
        return
    connection = _connection(BrokerChange)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = [
        [
            change.reason[:40],
            change.connector_id,
            change.device_id,
            change.identity or "",
            now,
        ]
        for change in changes
    ]
    try:
        if len(rows) == 1:
            # The usual single change: one statement, atomic by itself.
            with connection.cursor() as cursor:
                cursor.execute(INSERT_CHANGE, rows[0])
        else:
            # All or none, as bulk_create would.
            with (
                transaction.atomic(using=connection.alias, savepoint=False),
                connection.cursor() as cursor,
            ):
                cursor.executemany(INSERT_CHANGE, rows)
    except Exception:  # noqa: BLE001  (the change happened; mqtt_resync repairs the broker)
        logger.exception("could not queue %d broker change(s)", len(changes))


def secret_issued(sender, connector_id: str, identity: str, secret: str, **kwargs) -> None:
    if not enabled() or not secret:
        return
    connection = _connection(PendingSecret)
    try:
        with connection.cursor() as cursor:
            cursor.execute(DEVICE_VERSION, [connector_id, identity])
            device = cursor.fetchone()
            if device is None:
                return
            device_pk, version = device
            now = connection.ops.adapt_datetimefield_value(timezone.now())
            sealed = vault.seal(secret, device_pk, version)
            cursor.execute(INSERT_SECRET, [device_pk, version, sealed, now])
    except Exception:  # noqa: BLE001  (never let the secret reach a log line)
        logger.error("could not queue the broker secret of %s/%s", connector_id, identity)


# --- planning ------------------------------------------------------------------------------


def _secrets(states: dict, pending: list[PendingSecret]) -> dict[int, str]:
    """device id -> clear secret, for secrets still belonging to their device."""
    clear = {}
    for row in sorted(pending, key=lambda row: row.pk):
        state = states.get(row.device_id)
        if state is None or state["credential_version"] != row.credential_version:
            continue
        try:
            clear[row.device_id] = vault.unseal(row.sealed, row.device_id, row.credential_version)
        except vault.Unsealable:
            logger.warning("broker secret of device %s cannot be unsealed", row.device_id)
    return clear


def plan(changes: list[BrokerChange], pending: list[PendingSecret]) -> clients.Plan:
    targets: dict[int, tuple[str, str]] = {}
    swept = {change.connector_id for change in changes if change.device_id is None}
    # A change to a whole connector: every device of it holding a broker client.
    for row in BrokerClient.objects.filter(connector_id__in=swept).values(
        "device_id", "connector_id", "identity"
    ):
        targets[row["device_id"]] = (row["connector_id"], row["identity"])
    for change in changes:
        if change.device_id is not None:
            targets[change.device_id] = (change.connector_id, change.identity)
    states = {
        row["pk"]: row
        for row in Device.objects.filter(
            pk__in={*targets, *(row.device_id for row in pending)}
        ).values("pk", "connector_id", "identity", "status", "auth_mode", "credential_version")
    }
    for pk, row in states.items():
        targets.setdefault(pk, (row["connector_id"], row["identity"]))
    return clients.plan_devices(targets, _secrets(states, pending), states)


# --- sending -----------------------------------------------------------------------------------


def send(client: dynsec.Dynsec, commands: list[dict]) -> list[str]:
    """Run commands; the problems the broker reported (without the secrets)."""
    problems = []
    for command, answer in zip(commands, client.run(commands), strict=True):
        if not answer.ok:
            subject = command.get("username") or command.get("rolename") or ""
            problems.append(f"{command['command']} {subject}: {answer.error}")
    return problems


def flush(client: dynsec.Dynsec, limit: int = BATCH) -> int:
    """Send what the outbox holds (up to `limit` rows of each kind); rows handled."""
    changes = list(BrokerChange.objects.order_by("pk")[:limit])
    secrets = list(PendingSecret.objects.order_by("pk")[:limit])
    if not changes and not secrets:
        return 0
    work = plan(changes, secrets)
    for problem in send(client, work.commands):
        logger.warning("broker refused: %s", problem)
    with transaction.atomic():
        BrokerChange.objects.filter(pk__in=[change.pk for change in changes]).delete()
        PendingSecret.objects.filter(pk__in=[pending.pk for pending in secrets]).delete()
    for note in work.notes:
        logger.info("broker client %s", note)
    refresh_trust()
    return len(changes) + len(secrets)


def refresh_trust() -> bool:
    """Rewrite the certificate listener's CA list and CRLs (MQTT_TRUST_DIR) and have
    the broker reread them if they changed: a revoked certificate is then refused at
    the TLS handshake, not only left without access."""
    if not settings.MQTT_TRUST_DIR:
        return False
    folder = Path(settings.MQTT_TRUST_DIR)
    if not tls.write_trust(folder / "device-cas.pem", folder / "device-crls.pem"):
        return False
    if settings.MQTT_BROKER_PID_FILE:
        try:
            os.kill(int(Path(settings.MQTT_BROKER_PID_FILE).read_text().strip()), signal.SIGHUP)
        except (OSError, ValueError) as exc:
            logger.warning("could not signal the broker to reload its CA list: %s", exc)
    return True


def drop_stale_secrets() -> int:
    """Secrets the broker never got in time are deleted: the device must be reset."""
    cutoff = timezone.now() - timedelta(seconds=settings.MQTT_PENDING_SECRET_SECONDS)
    stale = PendingSecret.objects.filter(created_at__lt=cutoff)
    for device_id in stale.values_list("device_id", flat=True):
        logger.warning("broker secret of device %s expired before the broker took it", device_id)
    return stale.delete()[0]


def connect() -> dynsec.Dynsec:
    return dynsec.Dynsec(
        settings.MQTT_BROKER_URL, settings.MQTT_ADMIN_USERNAME, settings.MQTT_ADMIN_PASSWORD
    )


def next_limit(limit: int, took: float | None, timeout: float) -> int:
    """Outbox rows for the next control message, sized so the broker spends about
    MESSAGE_SECONDS on one: Mosquitto 2.0 rewrites its plugin file after every command
    and serves no client meanwhile, so a message's cost grows with the broker, and a
    message of a minute stalls every device for that minute. One that took longer
    gets proportionally fewer rows; one not answered in time (`took` None) a quarter
    as many (resending a message the broker is still working through only adds to its
    queue); one answered within half the budget twice as many again, up to BATCH."""
    if took is None:
        return max(1, limit // 4)
    budget = min(MESSAGE_SECONDS, timeout / 4)
    if took > budget:
        return max(1, int(limit * budget / took))
    if took < budget / 2:
        return min(BATCH, limit * 2)
    return limit


class Worker:
    """The loop behind `manage.py mqtt_sync`: polls the outbox, sends at a bounded rate,
    in control messages sized to what the broker answers in about MESSAGE_SECONDS
    (`next_limit`), starting small: the broker's size is unknown until it answers."""

    def __init__(self, *, interval: float | None = None, poll: float = 0.1):
        self.interval = settings.MQTT_SYNC_INTERVAL if interval is None else interval
        self.poll = poll
        self.stopping = False
        self.last_sent = 0.0
        self.last_took = 0.0
        self.limit = FIRST_LIMIT

    def run(self) -> None:
        client = None
        while not self.stopping:
            try:
                if client is None:
                    client = connect()
                    ensure_service_clients(client)
                    logger.info("mqtt sync connected to %s", settings.MQTT_BROKER_URL)
                self.step(client)
            except dynsec.BrokerUnavailable as exc:
                if client is not None:
                    self.limit = next_limit(self.limit, None, client.timeout)
                    client.close()
                logger.warning("broker unavailable: %s (next batch: %d)", exc, self.limit)
                client = None
                time.sleep(1.0)
        if client is not None:
            client.close()

    def step(self, client: dynsec.Dynsec) -> None:
        if not (BrokerChange.objects.exists() or PendingSecret.objects.exists()):
            time.sleep(self.poll)
            return
        wait = self.next_send_at() - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # gathers what arrives meanwhile into the same batch
        self.last_sent = time.monotonic()
        flush(client, self.limit)
        self.last_took = time.monotonic() - self.last_sent
        self.limit = next_limit(self.limit, self.last_took, client.timeout)
        drop_stale_secrets()

    def next_send_at(self) -> float:
        """When the next message may go (monotonic clock): MQTT_SYNC_INTERVAL after the
        last one began, and never before the broker has had as long to serve its clients
        as the last message kept it busy (Mosquitto serves nobody while it works through
        one), so a large broker spends at most half its time on the sync while a small
        one hears of a new device within the interval."""
        return self.last_sent + max(self.interval, 2 * self.last_took)


def ensure_service_clients(client: dynsec.Dynsec) -> None:
    """The ingest's client and role, as the code says they are.

    The role is taken off the client before it is deleted: Mosquitto 2.0.11 leaves a
    deleted role in the lists of the clients holding it and then crashes on their
    next ACL check. (Device roles are only deleted after their client.)
    """
    from mqtt import ingest

    name, role = topics.INGEST_USERNAME, topics.INGEST_ROLE
    client.run(
        [
            {"command": "removeClientRole", "username": name, "rolename": role},
            {"command": "deleteRole", "rolename": role},
            {"command": "createRole", "rolename": role, "acls": topics.ingest_acls()},
            {"command": "createClient", "username": name, "password": ingest.password()},
            {"command": "setClientPassword", "username": name, "password": ingest.password()},
            {"command": "addClientRole", "username": name, "rolename": role},
        ]
    )
