"""Records: values a device measured earlier, stored at the device's own timestamps.

A record body names an alias, then its points, then the next alias:
`alias=temp&1700000000=21.5&1700000060=21.7&alias=door&1700000030=open`.
Timestamps are unix seconds, whole or with decimals (`time.time()` as text, as
Murano's device library sends them), stored to the nearest microsecond: two
timestamps within the same microsecond name the same point.

- Each point is stored under its timestamp, whatever the order it comes in; the
  latest value of an alias is the one with the newest timestamp (a record of
  past points never hides a newer value, and never wakes a long poll waiting
  for something newer than them).
- The same alias and timestamp is stored once: a point sent again with the same
  value (a retry after a lost answer) is skipped, in the same request or a later
  one. With another value it is a conflict: the request is refused (409, naming
  the timestamps) and nothing of it is stored.
- Aliases the connector does not define are logged, not stored, as in writes.
- At most DEVICE_RECORD_MAX_POINTS points per request; timestamps no further
  than DEVICE_RECORD_MAX_AHEAD_SECONDS ahead of the server's clock, and no older
  than DATA_RETENTION_DAYS (they would be purged at once).

Records are stored directly, never queued: they are checked against what is
already stored under the same timestamps.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from audit.events import event_row
from audit.models import Event
from core import ratelimit
from devices import sql
from devices.models import DataPoint, Device
from devices.services.errors import DeviceError, InvalidData
from devices.services.values import check_value, resource_formats

# Whole seconds or decimals, as many as `str(time.time())` writes (and a few more).
TIMESTAMP = re.compile(r"[0-9]{1,11}(?:\.[0-9]{1,20})?")
MICROSECOND = Decimal("0.000001")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RecordConflict(DeviceError):
    """Points already stored (or sent twice) with another value; `conflicts` maps
    each alias to the timestamps, as the device sent them."""

    default_message = "points already stored with another value"

    def __init__(self, conflicts: dict[str, list[str]]):
        super().__init__()
        self.conflicts = conflicts


class TooManyPoints(DeviceError):
    default_message = "too many points in one record"


def parse_record(pairs: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(alias, timestamp as sent, value) of each point in a record body, in order."""
    if not pairs:
        raise InvalidData("no points: send alias=<alias>&<timestamp>=<value>…")
    points, alias = [], None
    for name, value in pairs:
        if name == "alias":
            if not value:
                raise InvalidData("alias= names no alias")
            alias = value
            continue
        if alias is None:
            raise InvalidData(f"{name!r} comes before any alias=<alias>")
        if not TIMESTAMP.fullmatch(name):
            raise InvalidData(f"{name!r} is not a timestamp (unix seconds, maybe with decimals)")
        points.append((alias, name, value))
    if not points:
        raise InvalidData("no points: send alias=<alias>&<timestamp>=<value>…")
    limit = settings.DEVICE_RECORD_MAX_POINTS
    if len(points) > limit:
        raise TooManyPoints(f"at most {limit} points in one record")
    return points


def _moment(timestamp: str, earliest: datetime, latest: datetime) -> datetime:
    # Stored to the nearest microsecond, halves to even, as datetime.fromtimestamp rounds.
    seconds = Decimal(timestamp).quantize(MICROSECOND, rounding=ROUND_HALF_EVEN)
    moment = EPOCH + timedelta(microseconds=int(seconds * 1_000_000))
    if moment > latest:
        raise InvalidData(f"timestamp {timestamp} is ahead of the server's clock")
    if moment < earliest:
        raise InvalidData(f"timestamp {timestamp} is older than the data retention")
    return moment


def record(device: Device, pairs: list[tuple[str, str]], ip) -> None:
    """Store a record body's points at their timestamps (see the module's rules)."""
    points = parse_record(pairs)
    ratelimit.hit("write", str(device.pk), ratelimit.Rate.parse(settings.RATE_LIMIT_WRITE))
    now = timezone.now()
    latest = now + timedelta(seconds=settings.DEVICE_RECORD_MAX_AHEAD_SECONDS)
    days = settings.DATA_RETENTION_DAYS
    earliest = now - timedelta(days=days) if days else EPOCH
    formats = resource_formats(device.connector)
    # (alias, moment) → (value, timestamp as sent), first of each; undefined aliases apart.
    wanted: dict[tuple[str, datetime], tuple[str, str]] = {}
    conflicts: set[tuple[str, str]] = set()
    ignored = []
    for alias, timestamp, value in points:
        moment = _moment(timestamp, earliest, latest)
        if alias not in formats:
            ignored.append(alias)
            continue
        try:
            check_value(formats[alias], value)
        except InvalidData as exc:
            raise InvalidData(f"{alias}@{timestamp}: {exc.message}") from exc
        earlier = wanted.setdefault((alias, moment), (value, timestamp))
        if earlier[0] != value:
            conflicts.add((alias, timestamp))
    reason = "record " + ", ".join(f"{alias}@{ts}={value}" for alias, ts, value in points)
    if ignored:
        reason += f" (not stored, undefined: {', '.join(dict.fromkeys(ignored))})"
    with transaction.atomic(using=device._state.db or "default"):
        # One record of a device at a time, so two copies of a retry store it once.
        list(Device.objects.select_for_update().filter(pk=device.pk).values_list("pk"))
        stored = _stored(device, wanted)
        for (alias, moment), (value, timestamp) in wanted.items():
            if (alias, moment) in stored and stored[(alias, moment)] != value:
                conflicts.add((alias, timestamp))
        if conflicts:
            named: dict[str, list[str]] = {}
            for alias, timestamp, _ in points:
                if (alias, timestamp) in conflicts and timestamp not in named.get(alias, ()):
                    named.setdefault(alias, []).append(timestamp)
            raise RecordConflict(named)
        fresh = [(alias, moment, value) for (alias, moment), (value, _) in wanted.items()
                 if (alias, moment) not in stored]  # fmt: skip
        _insert(device, fresh, reason, ip, now)
    Device.objects.filter(pk=device.pk).update(last_seen_at=now, last_ip=ip)


def _stored(device: Device, wanted) -> dict[tuple[str, datetime], str]:
    """(alias, moment) → value of the points already stored under the wanted timestamps."""
    if not wanted:
        return {}
    aliases = {alias for alias, _ in wanted}
    moments = {moment for _, moment in wanted}
    rows = DataPoint.objects.filter(
        device=device, alias__in=aliases, created_at__in=moments
    ).values_list("alias", "created_at", "value")
    return {(alias, at): value for alias, at, value in rows}


def _insert(device: Device, points, reason: str, ip, now) -> None:
    connection = connections[device._state.db or "default"]
    kind = Event.WRITE
    event = event_row(connection, device.connector_id, device.identity, kind, reason, ip, now)
    with connection.cursor() as cursor:
        if points:
            adapt = connection.ops.adapt_datetimefield_value
            values = [
                item
                for alias, moment, value in points
                for item in (device.pk, alias, value, adapt(moment))
            ]
            cursor.execute(sql.insert_data_points(len(points)), values)
        cursor.execute(sql.INSERT_EVENT, event)
