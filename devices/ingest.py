"""The ingest: stores queued device writes (DEVICE_WRITE_QUEUE) in batches.

The web processes append writes to a Redis stream (devices.services.write_queue);
`manage.py ingest` reads it as a consumer of one consumer group, so any number
may run and they share the work. Each ingest takes a batch (XREADGROUP), stores
it in one transaction (data points, write events, last-seen times, and its
mark: the ids of the batch), and only then acknowledges and deletes the batch
in Redis (XACK and XDEL in one MULTI).

Until then the batch stays pending under the ingest's name. An ingest takes its
own pending entries first (a failed acknowledgement, Redis away), and claims
those of an ingest silent for INGEST_CLAIM_SECONDS (XAUTOCLAIM: it was killed,
or its host went away). An entry delivered again may have been stored already,
and the ingest it was taken from may still be alive. So every store transaction
first locks one row shared by all ingests, then stores only the entries still
pending under its own ingest (not claimed or acknowledged by another since),
skipping entries delivered again that a mark names. A mark keeps an entry's id
until the entry is acknowledged, and a mark with nothing pending is dropped. So
a write is stored exactly once, whichever ingest stops or stalls when. (A Redis
that comes back from its append-only file without its last writes may have
forgotten deliveries too; give it `appendfsync always` where that matters, as
for the writes it acknowledged.)

Writes of a device deleted while they were queued are dropped with it.

Redis or the database going away does not stop an ingest: it logs the outage,
waits (doubling up to BACKOFF_MAX_SECONDS) and carries on where it was, so
writes acknowledged before or during the outage are stored once both answer.
`store()` is the storing step alone, for any other path that hands writes over.
"""

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from redis.exceptions import ResponseError

from audit.events import INSERT_EVENT, event_row
from audit.models import Event
from core import redis_scripts
from core.outage import BACKEND_ERRORS
from devices import sql
from devices.models import DataPoint, Device, IngestMark
from devices.services import write_queue
from devices.services.write_queue import Write

logger = logging.getLogger(__name__)

GROUP = "ingest"
TOUCH_SECONDS = 30
# Waits between attempts while Redis or the database is away: doubled from the
# first to the cap, so a long outage costs a log line every half minute.
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
# How often an ingest drops marks and consumers that nothing is pending under.
TIDY_SECONDS = 60.0
# How many pending entries of other ingests a mark's check reads past its own.
PENDING_SCAN = 10_000
# The mark row every store transaction locks first (no ingest is named so).
_LOCK = ""

# KEYS: the stream. ARGV: group, consumer. Removes the consumer from the group
# only if nothing is pending under it, in one step.
_FORGET_CONSUMER = redis_scripts.Script(
    """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
    return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
"""
)

_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


class Ingest:
    """One ingest process: a consumer of the write stream's group."""

    def __init__(
        self,
        *,
        batch_size: int | None = None,
        claim_seconds: float | None = None,
        name: str | None = None,
    ):
        self.batch_size = batch_size or settings.INGEST_BATCH_SIZE
        if claim_seconds is None:
            claim_seconds = settings.INGEST_CLAIM_SECONDS
        self.claim_ms = int(claim_seconds * 1000)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.stream = write_queue.stream_key()
        self.stored = 0  # writes handled by this process, for its log
        self._claim_from = "0-0"
        self._tidied = time.monotonic()

    def run_once(self) -> int:
        """Store one batch. Returns how many entries it held (0: nothing to do)."""
        entries, again = self._take()
        if entries:
            self._store_batch(entries, again=again)
            pipe = write_queue.redis_client().pipeline(transaction=True)
            ids = [entry_id for entry_id, _ in entries]
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()
            self.stored += len(entries)
        return len(entries)

    def _take(self) -> tuple[list, bool]:
        """(entries, whether they were delivered before): own pending ones first,
        then those of a silent ingest, then new ones."""
        try:
            own = self._read("0")
            if own:
                return own, True
            self._claim_from, claimed, *_ = write_queue.redis_client().xautoclaim(
                self.stream,
                GROUP,
                self.name,
                self.claim_ms,
                self._claim_from,
                count=self.batch_size,
            )
            if claimed:
                logger.warning("ingest %s: took over %d pending writes", self.name, len(claimed))
                return claimed, True
            return self._read(">"), False
        except ResponseError as exc:
            # No group yet, or a Redis that lost its data: make it, and read on.
            if "NOGROUP" not in str(exc):
                raise
            self._create_group()
            self._claim_from = "0-0"
            # A group made now has nothing pending: every entry is new to it.
            return self._read(">"), False

    def _read(self, start: str) -> list:
        reply = write_queue.redis_client().xreadgroup(
            GROUP, self.name, {self.stream: start}, count=self.batch_size
        )
        return reply[0][1] if reply else []

    def _create_group(self) -> None:
        """The group, reading the stream from its start (made again if Redis lost it)."""
        try:
            write_queue.redis_client().xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _store_batch(self, entries: list, *, again: bool) -> None:
        """Store the entries of a batch still pending under this ingest, and mark them.

        Under the lock: entries another ingest claimed or acknowledged meanwhile
        are left to it, and entries delivered `again` are skipped if a mark has
        them. A mark keeps the ids of earlier batches until they are acknowledged.
        """
        with transaction.atomic():
            IngestMark.objects.select_for_update().get_or_create(consumer=_LOCK)
            earlier = (
                IngestMark.objects.filter(consumer=self.name)
                .values_list("entries", flat=True)
                .first()
                or ""
            ).split()
            owned, pending_earlier = self._still_pending(entries, earlier)
            entries = [entry for entry in entries if entry[0] in owned]
            if again:
                marked = set()
                for ids in IngestMark.objects.exclude(consumer=_LOCK).values_list(
                    "entries", flat=True
                ):
                    marked.update(ids.encode().split())
                fresh = [entry for entry in entries if entry[0] not in marked]
            else:
                fresh = entries
            # An entry deleted from the stream while pending comes back without fields.
            store(Write.decode(fields[b"w"]) for _, fields in fresh if fields)
            ids = [entry_id.decode() for entry_id in pending_earlier]
            ids += [entry_id.decode() for entry_id, _ in entries if entry_id not in pending_earlier]
            IngestMark.objects.update_or_create(
                consumer=self.name, defaults={"entries": " ".join(ids)}
            )

    def _still_pending(self, entries: list, earlier: list[str]) -> tuple[set, list]:
        """(ids of `entries` still pending under this ingest, ids of `earlier` still
        pending under anyone, in order), in one round trip."""
        pipe = write_queue.redis_client().pipeline(transaction=False)
        pipe.xpending_range(
            self.stream, GROUP, entries[0][0], entries[-1][0], len(entries), self.name
        )
        if earlier:
            # Other ingests' entries may lie in between: a reply that fills the
            # count may have left some out, and then every earlier id is kept.
            limit = len(earlier) + PENDING_SCAN
            pipe.xpending_range(self.stream, GROUP, earlier[0], earlier[-1], limit)
        mine, *rest = pipe.execute()
        owned = {row["message_id"] for row in mine}
        if not earlier:
            return owned, []
        still = {row["message_id"] for row in rest[0]}
        if len(rest[0]) >= limit:
            return owned, [entry_id.encode() for entry_id in earlier]
        return owned, [entry_id.encode() for entry_id in earlier if entry_id.encode() in still]

    def tidy(self) -> None:
        """Drop marks none of whose entries is pending any more, and ingests that
        left nothing pending and have not read for ten claim periods."""
        try:
            self._tidy(write_queue.redis_client())
        except ResponseError as exc:  # no group (a Redis that lost its data): nothing to tidy
            logger.info("ingest %s: nothing tidied (%s)", self.name, exc)

    def _tidy(self, client) -> None:
        for consumer, ids in IngestMark.objects.exclude(consumer=_LOCK).values_list(
            "consumer", "entries"
        ):
            first, _, last = ids.partition(" ")
            last = last.rpartition(" ")[2] or first
            if not first or not client.xpending_range(
                self.stream, GROUP, min=first, max=last, count=1
            ):
                IngestMark.objects.filter(consumer=consumer, entries=ids).delete()
        for consumer in client.xinfo_consumers(self.stream, GROUP):
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else name
            if name != self.name and consumer["idle"] >= 10 * self.claim_ms:
                _FORGET_CONSUMER([self.stream], [GROUP, name])

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
                if time.monotonic() - self._tidied > TIDY_SECONDS:
                    self.tidy()
                    self._tidied = time.monotonic()
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
            if handled < self.batch_size:
                stop.wait(idle_seconds)

    def drain(self) -> int:
        """Store until nothing is left to take (tests, `ingest --once`). Returns entries handled."""
        total = 0
        while handled := self.run_once():
            total += handled
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


def store(writes: Iterable[Write]) -> None:
    """Store device writes: their data points and events, and last-seen times.

    In the caller's transaction; writes of a device that no longer exists are dropped.
    """
    writes = list(writes)
    if not writes:
        return
    connection = connections[DataPoint.objects.db]
    ops = connection.ops
    present = {
        pk: (last_seen, last_ip)
        for pk, last_seen, last_ip in Device.objects.filter(
            pk__in={write.device_pk for write in writes}
        ).values_list("pk", "last_seen_at", "last_ip")
    }
    points, events, seen = [], [], {}
    for write in writes:
        if write.device_pk not in present:
            continue
        moment = _EPOCH_START + timedelta(microseconds=write.at)
        created_at = ops.adapt_datetimefield_value(moment)
        points += [(write.device_pk, alias, value, created_at) for alias, value in write.stored]
        events.append(
            event_row(
                connection,
                write.connector_id,
                write.identity,
                Event.WRITE,
                write.reason,
                write.ip,
                moment,
            )
        )
        seen[write.device_pk] = (moment, write.ip)
    touches = [
        (ops.adapt_datetimefield_value(moment), ops.adapt_ipaddressfield_value(ip), pk)
        for pk, (moment, ip) in seen.items()
        if _due(present[pk], moment, ip)
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY: one statement for the whole batch, nothing parsed per row.
            _copy(cursor, sql.COPY_DATA_POINTS, points)
            _copy(cursor, sql.COPY_EVENTS, events)
        else:
            if points:
                cursor.executemany(sql.INSERT_DATA_POINT, points)
            if events:
                cursor.executemany(INSERT_EVENT, events)
        if touches:
            cursor.executemany(sql.TOUCH_DEVICE, touches)


def _copy(cursor, statement: str, rows: list) -> None:
    if not rows:
        return
    with cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _due(current: tuple, moment: datetime, ip) -> bool:
    """Last-seen moves at most every TOUCH_SECONDS per device, or when its address changes."""
    last_seen, last_ip = current
    return (
        last_seen is None or last_ip != ip or (moment - last_seen).total_seconds() >= TOUCH_SECONDS
    )
