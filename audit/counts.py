"""Events per hour or per day, counted once a column is over: the overview's charts.

A chart of the last 30 days on a busy connector covers hundreds of thousands of log
lines; counting them on every look (and every few seconds while the page is open)
grows with the log. An hour or a day that is over does not change, so its counts are
read from the log once and kept as `EventCount` rows (zeros included, so a quiet
column is not counted again). Only the columns still open, the last hour or today,
are counted from the log on each look.

A column counts as over LATE after its end: an event's time is taken before its
transaction commits, so a line may appear a moment after the hour it belongs to.
Columns follow the current time zone, as Django's Trunc does: days are local days,
hours are local hours (a half-hour zone's hours start at half past, in UTC).
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import Trunc
from django.utils import timezone

from audit.models import Event, EventCount

LATE = timedelta(minutes=10)
KEPT = timedelta(days=32)  # longer than the longest range a chart shows
UNITS = ("hour", "day")  # the columns kept; narrower ones are always counted from the log


def per_column(
    connector_id: str, kinds: Iterable[str], unit: str, since: datetime, now: datetime
) -> list[tuple[str, datetime, int]]:
    """(kind, column start, events) for each column of `unit` from `since` (a column
    start) to `now`, without the columns that have none."""
    kinds = sorted(set(kinds))
    if unit not in UNITS:
        return _from_log(connector_id, kinds, unit, since, None)
    open_from = max(since, _start_of(now - LATE, unit))
    closed = _starts(since, open_from, unit)
    kept = {
        (row.kind, row.start): row.rows
        for row in EventCount.objects.filter(
            connector_id=connector_id, unit=unit, kind__in=kinds, start__in=closed
        )
    }
    missing = [start for start in closed if any((kind, start) not in kept for kind in kinds)]
    if missing:
        counted = {
            (kind, start): rows
            for kind, start, rows in _from_log(
                connector_id, kinds, unit, missing[0], _next(missing[-1], unit)
            )
        }
        fresh = [
            EventCount(
                connector_id=connector_id,
                kind=kind,
                unit=unit,
                start=start,
                rows=counted.get((kind, start), 0),
            )
            for start in missing
            for kind in kinds
            if (kind, start) not in kept
        ]
        # Two looks at once may count the same column: the first row stays.
        EventCount.objects.bulk_create(fresh, ignore_conflicts=True)
        kept.update({(row.kind, row.start): row.rows for row in fresh})
    return [(kind, start, rows) for (kind, start), rows in kept.items() if rows] + _from_log(
        connector_id, kinds, unit, open_from, None
    )


def forget_before(cutoff: datetime) -> int:
    """Delete the counts of columns that start before `cutoff`; how many went."""
    deleted, _ = EventCount.objects.filter(start__lt=cutoff).delete()
    return deleted


def _from_log(
    connector_id: str, kinds: list[str], unit: str, since: datetime, until: datetime | None
) -> list[tuple[str, datetime, int]]:
    events = Event.objects.filter(connector_id=connector_id, kind__in=kinds, created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    rows = (
        events.annotate(at=Trunc("created_at", unit))
        .values("kind", "at")
        .annotate(rows=Count("*"))
        .order_by()
    )
    return [(row["kind"], row["at"], row["rows"]) for row in rows]


def _start_of(moment: datetime, unit: str) -> datetime:
    local = timezone.localtime(moment)
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _next(start: datetime, unit: str) -> datetime:
    if unit == "hour":
        # In absolute time: a local hour is an hour long even across a clock change.
        return timezone.localtime(start.astimezone(UTC) + timedelta(hours=1))
    # The next local midnight, by the wall clock: 23 or 25 hours on a clock change.
    return timezone.localtime(timezone.localtime(start) + timedelta(days=1))


def _starts(since: datetime, until: datetime, unit: str) -> list[datetime]:
    """The column starts from `since` (a start) up to, not including, `until`."""
    starts, start = [], timezone.localtime(since)
    while start < until:
        starts.append(start)
        start = _next(start, unit)
    return starts
