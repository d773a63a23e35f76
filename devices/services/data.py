"""Device data: writes, latest values, long polls."""

import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from audit.events import event_row
from audit.models import Event
from core import ratelimit
from devices import sql
from devices.models import DataPoint, Device
from devices.services import write_queue
from devices.services.errors import InvalidData
from devices.services.values import resource_formats, split_pairs

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def write(caller, pairs: list[tuple[str, str]], ip) -> None:
    """A device's write, by the one path every write takes: queued in one Redis round
    trip when `caller` (authentication.Caller) presented a credential this process
    remembers and the queue takes it, else written with the device loaded."""
    if caller.remembered and write_queue.try_write(caller.presented, pairs, ip):
        return
    write_data(caller.device, pairs, ip)


def write_data(device: Device, pairs: list[tuple[str, str]], ip) -> None:
    """Store values for defined aliases; log every write, including undefined aliases.

    With DEVICE_WRITE_QUEUE, a device authenticated by Token or Basic is
    remembered and the write queued (write_queue); a full queue, or a device that
    changed under the check, falls back to storing it here.
    """
    presented = getattr(device, "presented_credential", None)
    if presented and write_queue.enabled():
        if write_queue.remember_and_write(presented, device, pairs, ip):
            return
    ratelimit.hit("write", str(device.pk), ratelimit.Rate.parse(settings.RATE_LIMIT_WRITE))
    stored, reason = split_pairs(resource_formats(device.connector), pairs)
    now = timezone.now()
    _insert_write(device, stored, reason, ip, now)
    if write_queue.enabled():
        write_queue.note_latest(device.pk, stored, _microseconds(now))
    _touch(device, now, ip)


def _insert_write(device: Device, points: list[tuple[str, str]], reason: str, ip, now) -> None:
    """Insert a write's data points and its event, atomically, in as few round trips
    as the database allows: one statement on PostgreSQL (a data-modifying CTE)."""
    connection = connections[device._state.db or "default"]
    created_at = connection.ops.adapt_datetimefield_value(now)
    event = event_row(
        connection, device.connector_id, device.identity, Event.WRITE, reason, ip, now
    )
    with connection.cursor() as cursor:
        if not points:
            cursor.execute(sql.INSERT_EVENT, event)
            return
        insert_points = sql.insert_data_points(len(points))
        values = [item for alias, value in points for item in (device.pk, alias, value, created_at)]
        if connection.vendor == "postgresql":
            cursor.execute(sql.insert_data_points_and_event(len(points)), values + event)
        else:
            with transaction.atomic(using=connection.alias):
                cursor.execute(insert_points, values)
                cursor.execute(sql.INSERT_EVENT, event)


class WriteBatch:
    """Many devices' writes stored together, as `write_data` stores one: one INSERT of
    their data points and one of their events (each chunk of ROWS), then last-seen once
    per device. The MQTT ingest stores a batch of messages so, in the transaction that
    writes their receipts; a round trip per message would bound it to a few hundred
    messages a second. Devices loaded from the database (no presented credential), so
    nothing goes through DEVICE_WRITE_QUEUE."""

    ROWS = 500  # rows per statement: far below any database's limit on parameters

    def __init__(self, using: str = "default"):
        self.connection = connections[using]
        self.points: list[list] = []
        self.events: list[list] = []
        self.latest: list[tuple[int, list[tuple[str, str]], int]] = []
        self.touched: dict[int, tuple[Device, datetime, str | None]] = {}

    @staticmethod
    def count(devices: list[Device]) -> list[int]:
        """Count a write of each device against RATE_LIMIT_WRITE (a device once per
        write), all in one round trip: each write's count in its window, for `add`."""
        if not devices:
            return []
        rate = ratelimit.Rate.parse(settings.RATE_LIMIT_WRITE)
        counted, _ = ratelimit.count_all([("write", str(device.pk), rate) for device in devices])
        return counted.used

    def add(
        self, device: Device, pairs: list[tuple[str, str]], ip, counted: int | None = None
    ) -> None:
        """One write; RateLimited or InvalidData as `write_data` raises them, nothing added.
        `counted` is its count from `count`, where the caller counted a batch at once."""
        rate = ratelimit.Rate.parse(settings.RATE_LIMIT_WRITE)
        if counted is None:
            ratelimit.hit("write", str(device.pk), rate)
        elif counted > rate.count:
            raise ratelimit.RateLimited(retry_after=ratelimit.retry_after(rate, time.time()))
        stored, reason = split_pairs(resource_formats(device.connector), pairs)
        now = timezone.now()
        created_at = self.connection.ops.adapt_datetimefield_value(now)
        self.points += [[device.pk, alias, value, created_at] for alias, value in stored]
        self.events.append(
            event_row(
                self.connection, device.connector_id, device.identity, Event.WRITE, reason, ip, now
            )
        )
        self.latest.append((device.pk, stored, _microseconds(now)))
        self.touched[device.pk] = (device, now, ip)

    def add_event(self, connector_id: str, identity: str, kind: str, reason: str, ip) -> None:
        """A line for the log in its place among the writes' (a refused write)."""
        self.events.append(event_row(self.connection, connector_id, identity, kind, reason, ip))

    def save(self) -> None:
        with self.connection.cursor() as cursor:
            for statement, rows in (
                (sql.insert_data_points, self.points),
                (sql.insert_events, self.events),
            ):
                for start in range(0, len(rows), self.ROWS):
                    chunk = rows[start : start + self.ROWS]
                    cursor.execute(statement(len(chunk)), [value for row in chunk for value in row])
        if write_queue.enabled():
            for device_pk, stored, at in self.latest:
                write_queue.note_latest(device_pk, stored, at)
        for device, now, ip in self.touched.values():
            if _touch(device, now, ip):
                # The caller may keep the device: it need not be touched again for 30 s.
                device.last_seen_at, device.last_ip = now, ip
        self.points, self.events, self.latest, self.touched = [], [], [], {}


def _touch(device: Device, now, ip) -> bool:
    """Record last-seen, at most every 30 s per device, to keep writes cheap."""
    if (
        device.last_seen_at
        and (now - device.last_seen_at).total_seconds() < 30
        and (device.last_ip == ip)
    ):
        return False
    Device.objects.filter(pk=device.pk).update(last_seen_at=now, last_ip=ip)
    return True


def _microseconds(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _latest(device: Device, aliases: list[str]) -> dict[str, tuple[int, str]]:
    """alias → (microseconds, value) of the newest point of each alias that has one,
    by its time (records are stored at the device's timestamps, in any order):
    stored, or (with DEVICE_WRITE_QUEUE) still queued."""
    latest = {}
    for alias in aliases:
        point = (
            DataPoint.objects.filter(device=device, alias=alias)
            .order_by("-created_at", "-id")
            .values_list("created_at", "value")
            .first()
        )
        if point is not None:
            latest[alias] = (_microseconds(point[0]), point[1])
    if write_queue.enabled():
        for alias, pending in write_queue.pending_latest(device.pk, aliases).items():
            if alias not in latest or pending[0] > latest[alias][0]:
                latest[alias] = pending
    return latest


def read_latest(device: Device, aliases: list[str]) -> dict[str, str]:
    """Latest value of each defined alias asked for that has one."""
    defined = resource_formats(device.connector)
    wanted = list(dict.fromkeys(alias for alias in aliases if alias in defined))
    latest = _latest(device, wanted)
    return {alias: latest[alias][1] for alias in wanted if alias in latest}


def wait_for_change(device: Device, aliases: list[str], since: float | None, timeout: float):
    """Long poll: the values of the aliases that change after `since` (unix seconds).

    Without `since`, waits for a value newer than each alias's latest at call time.
    Returns ({alias: value} of those that changed, in the order asked, and the unix
    seconds the newest of them was written), or None at the timeout.
    """
    formats = resource_formats(device.connector)
    aliases = list(dict.fromkeys(aliases))
    for alias in aliases:
        if alias not in formats:
            raise InvalidData(f"alias {alias!r} is not defined")
    if since is not None:
        try:
            datetime.fromtimestamp(since, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidData("If-Modified-Since is out of range") from exc
    current = _latest(device, aliases)
    if since is not None:
        baseline = dict.fromkeys(aliases, since * 1_000_000)
        changed = _newer(aliases, current, baseline)
        if changed is not None:
            return changed
    baseline = {alias: current[alias][0] if alias in current else -1 for alias in aliases}
    deadline = time.monotonic() + min(timeout, settings.LONG_POLL_MAX_SECONDS)
    while time.monotonic() < deadline:
        time.sleep(min(settings.LONG_POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))
        changed = _newer(aliases, _latest(device, aliases), baseline)
        if changed is not None:
            return changed
    return None


def _newer(aliases, latest: dict[str, tuple[int, str]], baseline: dict[str, float]):
    """({alias: value}, unix seconds of the newest) of the aliases newer than their
    baseline (microseconds), or None when none is."""
    newer = [alias for alias in aliases if alias in latest and latest[alias][0] > baseline[alias]]
    if not newer:
        return None
    values = {alias: latest[alias][1] for alias in newer}
    return values, max(latest[alias][0] for alias in newer) / 1_000_000
