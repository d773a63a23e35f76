"""The ingest: stores queued device writes (DEVICE_WRITE_QUEUE) in batches.

Run by `manage.py ingest`. Any number may run; one at a time holds the lease
and works, the others wait to take over. A batch moves from the queue to a
processing list in Redis, is stored in one transaction (data points, write
events, last-seen times and the IngestMark), and only then is dropped from
Redis. An ingest that stops in between leaves the batch in the processing list;
whoever holds the lease next takes it again, and the mark, read under a row
lock in the same transaction, makes every write count once.

Writes of a device deleted while they were queued are dropped with it.

Redis or the database going away does not stop an ingest: it logs the outage,
waits (doubling up to BACKOFF_MAX_SECONDS) and carries on where it was, so
writes acknowledged before or during the outage are stored once both answer.
"""

import json
import logging
import os
import secrets
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from devices.models import DataPoint, Device, Event, IngestMark
from devices.services import write_queue
from devices.services.events import EVENT_COLUMNS, INSERT_EVENT, event_row
from portal.outage import BACKEND_ERRORS

logger = logging.getLogger(__name__)

PROCESSING = "writes:processing"
LEASE = "writes:lease"
EPOCH = "writes:epoch"
TOUCH_SECONDS = 30
# Waits between attempts while Redis or the database is away: doubled from the
# first to the cap, so a long outage costs a log line every half minute.
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0

# KEYS: queue, processing, lease, epoch. ARGV: owner, lease ms, batch size, a fresh epoch.
# Returns nil when another ingest holds the lease, else {epoch, item, ...}: the
# unacknowledged batch if there is one, else the next items of the queue.
_CLAIM = """
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then
    return nil
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
local epoch = redis.call('GET', KEYS[4])
if not epoch then
    epoch = ARGV[4]
    redis.call('SET', KEYS[4], epoch)
end
local items = redis.call('LRANGE', KEYS[2], 0, -1)
if #items == 0 then
    items = redis.call('LPOP', KEYS[1], ARGV[3])
    if not items then
        return {epoch}
    end
    redis.call('RPUSH', KEYS[2], unpack(items))
end
table.insert(items, 1, epoch)
return items
"""
# KEYS: lease, processing. ARGV: owner. Drops the stored batch if still the holder.
_ACKNOWLEDGE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[2])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

_INSERT_POINT = (
    f"INSERT INTO {DataPoint._meta.db_table} (device_id, alias, value, created_at) "  # noqa: S608
    "VALUES (%s, %s, %s, %s)"
)
_TOUCH = f"UPDATE {Device._meta.db_table} SET last_seen_at = %s, last_ip = %s WHERE id = %s"  # noqa: S608
_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)
_decode = json.JSONDecoder().decode


class Ingest:
    """One ingest process's view of the queue."""

    def __init__(self, *, batch_size: int | None = None, lease_seconds: float = 30.0):
        self.batch_size = batch_size or settings.INGEST_BATCH_SIZE
        self.lease_ms = int(lease_seconds * 1000)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        client = write_queue.redis_client()
        self._claim = client.register_script(_CLAIM)
        self._acknowledge = client.register_script(_ACKNOWLEDGE)
        self._release = client.register_script(_RELEASE)
        self._keys = [write_queue.key(name) for name in (write_queue.QUEUE, PROCESSING, LEASE)]
        self.stored = 0  # writes handled by this process, for its log

    def run_once(self) -> int | None:
        """Store one batch. Returns how many writes it held (0: the queue is empty),
        or None while another ingest holds the lease."""
        claimed = self._claim(
            keys=[*self._keys, write_queue.key(EPOCH)],
            args=[self.owner, self.lease_ms, self.batch_size, secrets.token_hex(8)],
        )
        if claimed is None:
            return None
        epoch, items = claimed[0].decode(), claimed[1:]
        if items:
            self.store(epoch, items)
            self._acknowledge(keys=[self._keys[2], self._keys[1]], args=[self.owner])
            self.stored += len(items)
        return len(items)

    def store(self, epoch: str, items: list[bytes]) -> None:
        """Store a batch, skipping writes the mark says are stored already."""
        with transaction.atomic():
            mark, _ = IngestMark.objects.select_for_update().get_or_create(
                pk=1, defaults={"epoch": epoch}
            )
            stored_up_to = mark.last_sequence if mark.epoch == epoch else 0
            writes = []
            for item in items:
                sequence, _, payload = item.partition(b" ")
                if int(sequence) > stored_up_to:
                    writes.append(_decode(payload.decode()))
            last = int(items[-1].partition(b" ")[0])
            if writes:
                _store_writes(writes)
            IngestMark.objects.filter(pk=mark.pk).update(
                epoch=epoch, last_sequence=max(last, stored_up_to)
            )

    def run(self, stop: threading.Event, idle_seconds: float | None = None) -> None:
        """Store batches until `stop` is set. After a batch that was not full it
        waits INGEST_INTERVAL_MS, so that under load each transaction stores
        hundreds of writes rather than a handful: per write, a batch of 100 cost
        the ingest and PostgreSQL about twice the CPU of a batch of 1000."""
        if idle_seconds is None:
            idle_seconds = settings.INGEST_INTERVAL_MS / 1000
        failures, down_since = 0, 0.0
        while not stop.is_set():
            try:
                handled = self.run_once()
            except BACKEND_ERRORS as exc:
                if not failures:
                    down_since = time.monotonic()
                failures += 1
                delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (failures - 1))
                logger.warning(
                    "ingest: %s unavailable (%s: %s); reconnecting in %.1f s (attempt %d)",
                    _backend_name(exc), type(exc).__name__, exc, delay, failures,
                )  # fmt: skip
                _close_database_connection()
                stop.wait(delay)
                continue
            if failures:
                logger.warning(
                    "ingest: reconnected after %.0f s and %d attempts",
                    time.monotonic() - down_since, failures,
                )  # fmt: skip
                failures = 0
            if handled is None:
                stop.wait(min(1.0, self.lease_ms / 3000))
            elif handled < self.batch_size:
                stop.wait(idle_seconds)
        self.release()

    def release(self) -> None:
        """Give up the lease, so a standby ingest takes over at once (not when it expires)."""
        try:
            self._release(keys=[self._keys[2]], args=[self.owner])
        except BACKEND_ERRORS:
            logger.warning("ingest: could not release the lease; it expires by itself")

    def drain(self) -> int:
        """Store until the queue is empty (tests, `ingest --once`). Returns writes stored."""
        total = 0
        while True:
            handled = self.run_once()
            if handled is None:
                raise RuntimeError("another ingest holds the lease")
            total += handled
            if handled == 0:
                return total


def _backend_name(exc: Exception) -> str:
    return "the database" if isinstance(exc, DatabaseError) else "Redis"


def _close_database_connection() -> None:
    """Drop a connection that may be broken; the next batch opens a fresh one."""
    connection = connections[DataPoint.objects.db]
    try:
        connection.close()
    except DatabaseError:
        # Closing a dead connection can fail too; Django has forgotten it either way.
        logger.debug("ingest: closing the database connection failed", exc_info=True)


def _store_writes(writes: list) -> None:
    """Insert the writes' data points and events and move last-seen times forward."""
    connection = connections[DataPoint.objects.db]
    ops = connection.ops
    present = {
        pk: (last_seen, last_ip)
        for pk, last_seen, last_ip in Device.objects.filter(
            pk__in={write[1] for write in writes}
        ).values_list("pk", "last_seen_at", "last_ip")
    }
    points, events, seen = [], [], {}
    for at, device_pk, connector_id, identity, ip, stored, reason in writes:
        if device_pk not in present:
            continue
        moment = _EPOCH_START + timedelta(microseconds=at)
        created_at = ops.adapt_datetimefield_value(moment)
        points += [(device_pk, alias, value, created_at) for alias, value in stored]
        events.append(
            event_row(connection, connector_id, identity, Event.WRITE, reason, ip, moment)
        )
        seen[device_pk] = (moment, ip)
    touches = [
        (ops.adapt_datetimefield_value(moment), ops.adapt_ipaddressfield_value(ip), pk)
        for pk, (moment, ip) in seen.items()
        if _due(present[pk], moment, ip)
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY: one statement for the whole batch, nothing parsed per row.
            _copy(cursor, DataPoint, _POINT_COLUMNS, points)
            _copy(cursor, Event, EVENT_COLUMNS, events)
        else:
            if points:
                cursor.executemany(_INSERT_POINT, points)
            if events:
                cursor.executemany(INSERT_EVENT, events)
        if touches:
            cursor.executemany(_TOUCH, touches)


_POINT_COLUMNS = ("device_id", "alias", "value", "created_at")


def _copy(cursor, model, columns: tuple[str, ...], rows: list) -> None:
    if not rows:
        return
    statement = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _due(current: tuple, moment: datetime, ip) -> bool:
    """Last-seen moves at most every TOUCH_SECONDS per device, or when its address changes."""
    last_seen, last_ip = current
    return (
        last_seen is None or last_ip != ip or (moment - last_seen).total_seconds() >= TOUCH_SECONDS
    )
