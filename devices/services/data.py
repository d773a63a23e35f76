"""Device data: writes, latest values, long polls."""

import json
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from connectors.models import Connector, Resource
from devices.models import DataPoint, Device, Event
from devices.services import write_queue
from devices.services.errors import InvalidData
from devices.services.events import INSERT_EVENT, event_row
from portal import inputs, ratelimit

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_value(fmt: str, value: str) -> None:
    if fmt == Resource.NUMBER:
        try:
            number = float(value)
        except ValueError as exc:
            raise InvalidData(f"{value!r} is not a number") from exc
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidData(f"{value!r} is not a finite number")
    elif fmt == Resource.BOOLEAN:
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidData(f"{value!r} is not a boolean (true, false, 1 or 0)")
    elif fmt == Resource.JSON:
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise InvalidData(f"{value[:100]!r} is not JSON (or nests too deeply)") from exc
        problem = inputs.json_problem(parsed)
        if problem:
            raise InvalidData(problem)


_resource_formats_memo: dict[str, tuple[int, dict[str, str]]] = {}


def resource_formats(connector: Connector) -> dict[str, str]:
    """alias → format of a connector, remembered per process until its revision changes.

    The revision comes with the connector row the request loaded anyway, so a
    resource defined a moment ago is never missed.
    """
    memo = _resource_formats_memo.get(connector.pk)
    if memo is not None and memo[0] == connector.resources_revision:
        return memo[1]
    formats = dict(
        Resource.objects.filter(connector_id=connector.pk).values_list("alias", "format")
    )
    _resource_formats_memo[connector.pk] = (connector.resources_revision, formats)
    return formats


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
    stored, reason = write_queue.split_pairs(resource_formats(device.connector), pairs)
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
            cursor.execute(INSERT_EVENT, event)
            return
        insert_points = (
            f"INSERT INTO {DataPoint._meta.db_table} (device_id, alias, value, created_at) "  # noqa: S608
            "VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(points))
        )
        values = [item for alias, value in points for item in (device.pk, alias, value, created_at)]
        if connection.vendor == "postgresql":
            cursor.execute(f"WITH points AS ({insert_points}) {INSERT_EVENT}", values + event)
        else:
            with transaction.atomic(using=connection.alias):
                cursor.execute(insert_points, values)
                cursor.execute(INSERT_EVENT, event)


def _touch(device: Device, now, ip) -> None:
    """Record last-seen, at most every 30 s per device, to keep writes cheap."""
    if (
        device.last_seen_at
        and (now - device.last_seen_at).total_seconds() < 30
        and (device.last_ip == ip)
    ):
        return
    Device.objects.filter(pk=device.pk).update(last_seen_at=now, last_ip=ip)


def _microseconds(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _latest(device: Device, aliases: list[str]) -> dict[str, tuple[int, str]]:
    """alias → (microseconds, value) of the newest write of each alias that has one:
    stored, or (with DEVICE_WRITE_QUEUE) still queued."""
    latest = {}
    for alias in aliases:
        point = (
            DataPoint.objects.filter(device=device, alias=alias)
            .order_by("-id")
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


def wait_for_change(device: Device, alias: str, since: float | None, timeout: float):
    """Long poll: the alias's value once it changes after `since` (unix seconds).

    Without `since`, waits for a value newer than the latest at call time.
    Returns the value, or None at the timeout.
    """
    if alias not in resource_formats(device.connector):
        raise InvalidData(f"alias {alias!r} is not defined")
    if since is not None:
        try:
            datetime.fromtimestamp(since, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidData("If-Modified-Since is out of range") from exc
    current = _latest(device, [alias]).get(alias)
    if current is not None and since is not None and current[0] > since * 1_000_000:
        return current[1]
    baseline = current[0] if current is not None else -1
    deadline = time.monotonic() + min(timeout, settings.LONG_POLL_MAX_SECONDS)
    while time.monotonic() < deadline:
        time.sleep(min(settings.LONG_POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))
        current = _latest(device, [alias]).get(alias)
        if current is not None and current[0] > baseline:
            return current[1]
    return None
