"""The numbers of a connector's overview: devices by status, activity over time,
failures by reason and the latest events.

Everything is bounded on a connector of a million devices: status counts are
exact up to a cap and estimated beyond (`devices.counting`), activity and
the activity of hours and days that are over is counted once and kept
(`audit.counts`), failures read only events inside the chosen time range through
the (connector, kind, created_at) index, and the latest events are an index range.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone
from django.utils.formats import number_format

from audit import counts
from audit.models import Event
from connectors.models import Connector
from devices import counting, ticks
from devices.models import Device
from devices.templatetags.console import ago

FAILURE_KINDS = [Event.PROVISION_FAILED, Event.AUTH_FAILED, Event.RATE_LIMITED, Event.PAIR_FAILED]
# Failures grouped by reason are read from at most this many of the newest.
FAILURE_SAMPLE = 5_000
FAILURE_REASONS_SHOWN = 8
LAST_EVENTS = 10


@dataclass(frozen=True)
class TimeRange:
    """A range the charts can show: how far back, how wide a column, how it is labelled."""

    key: str
    label: str
    span: timedelta
    bucket: timedelta
    # The unit the database truncates to; buckets wider than it are folded in Python.
    trunc: str
    per: str
    tick_format: str
    hover_format: str


RANGES = {
    r.key: r
    for r in [
        TimeRange("1h", "1 hour", timedelta(hours=1), timedelta(minutes=5), "minute",
                  "5 minutes", "%H:%M", "%a %d %b %H:%M"),
        TimeRange("24h", "24 hours", timedelta(hours=24), timedelta(hours=1), "hour",
                  "hour", "%H:%M", "%a %d %b %H:%M"),
        TimeRange("7d", "7 days", timedelta(days=7), timedelta(hours=6), "hour",
                  "6 hours", "%a %d", "%a %d %b %H:%M"),
        TimeRange("30d", "30 days", timedelta(days=30), timedelta(days=1), "day",
                  "day", "%d %b", "%a %d %b"),
    ]
}  # fmt: skip
DEFAULT_RANGE = "24h"


def status_counts(connector: Connector) -> list[dict]:
    """Each status with its count, in the order of Device.STATUSES."""
    devices = Device.objects.filter(connector=connector)
    return [
        {"status": status, "label": label, "count": counting.count(devices.filter(status=status))}
        for status, label in Device.STATUSES
    ]


def bucket_starts(time_range: TimeRange, now: datetime) -> list[datetime]:
    """The start of every column, oldest first; the last one holds `now`."""
    local = timezone.localtime(now)
    width = time_range.bucket
    if width >= timedelta(days=1):
        last = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        last = midnight + ((local - midnight) // width) * width
    count = round(time_range.span / width)
    return [last - width * step for step in reversed(range(count))]


def activity(connector: Connector, time_range: TimeRange, now: datetime) -> dict:
    """Activations, refused activations and writes per column of `time_range`."""
    starts = bucket_starts(time_range, now)
    kinds = {
        Event.PROVISION: "activations",
        Event.PROVISION_FAILED: "refused",
        Event.WRITE: "writes",
    }
    series = {name: [0] * len(starts) for name in kinds.values()}
    rows = counts.per_column(connector.pk, kinds, time_range.trunc, starts[0], now)
    for kind, at, events in rows:
        index = int((timezone.localtime(at) - starts[0]) // time_range.bucket)
        if 0 <= index < len(starts):
            series[kinds[kind]][index] += events
    end = [start + time_range.bucket for start in starts]
    return {
        "range": time_range.key,
        "per": time_range.per,
        "labels": [start.strftime(time_range.tick_format) for start in starts],
        "spans": [
            f"{start.strftime(time_range.hover_format)} – {finish.strftime('%H:%M')}"
            if time_range.bucket < timedelta(days=1)
            else start.strftime(time_range.hover_format)
            for start, finish in zip(starts, end, strict=True)
        ],
        "charts": [
            chart("Activations", series, ["activations", "refused"], time_range),
            chart("Writes", series, ["writes"], time_range),
        ],
    }


def chart(title: str, series: dict, names: list[str], time_range: TimeRange) -> dict:
    """One column chart: stacked series, a nice y-scale and totals for the legend."""
    stacked = [sum(values) for values in zip(*(series[name] for name in names), strict=True)]
    scale = ticks.nice_ticks(max(stacked, default=0))
    return {
        "title": title,
        "unit": f"per {time_range.per}",
        "series": [
            {
                "name": name,
                "values": series[name],
                "total": number_format(sum(series[name]), force_grouping=True),
            }
            for name in names
        ],
        "ticks": scale,
        "tick_labels": [ticks.short_number(tick) for tick in scale],
    }


def newest_failures(connector: Connector, since: datetime) -> list[tuple[str, str]]:
    """(kind, reason) of the newest FAILURE_SAMPLE refusals since `since`.

    One kind IN (…) ordered by time would read every refusal of the range and sort
    them: 125,000 of a busy month, half a second. Each kind on its own is a range of
    the (connector, kind, created_at) index read backwards and cut at the sample, and
    the database merges the newest of them, reading at most the sample per kind.
    SQLite cannot order the parts of a UNION; a laptop's log is small enough for one.
    """
    events = Event.objects.filter(connector=connector, created_at__gte=since)
    if not connection.features.supports_slicing_ordering_in_compound:
        newest = events.filter(kind__in=FAILURE_KINDS).order_by("-created_at")
        return list(newest.values_list("kind", "reason")[:FAILURE_SAMPLE])
    parts = [
        events.filter(kind=kind)
        .order_by("-created_at")
        .values_list("kind", "reason", "created_at")[:FAILURE_SAMPLE]
        for kind in FAILURE_KINDS
    ]
    merged = parts[0].union(*parts[1:], all=True).order_by("-created_at")[:FAILURE_SAMPLE]
    return [(kind, reason) for kind, reason, _ in merged]


def failures(connector: Connector, since: datetime) -> dict:
    """Refusals since `since`, grouped by kind and reason, most frequent first."""
    newest = newest_failures(connector, since)
    labels = dict(Event.KINDS)
    grouped = Counter(newest).most_common(FAILURE_REASONS_SHOWN)
    top = grouped[0][1] if grouped else 0
    return {
        "sampled": len(newest) == FAILURE_SAMPLE,
        "total": number_format(len(newest), force_grouping=True),
        "reasons": [
            {
                "kind": kind,
                "kind_label": labels.get(kind, kind),
                "reason": reason or "(no reason given)",
                "count": number_format(rows, force_grouping=True),
                "share": round(100 * rows / top) if top else 0,
            }
            for (kind, reason), rows in grouped
        ],
    }


def last_events(connector: Connector) -> list[dict]:
    labels = dict(Event.KINDS)
    return [
        {
            "id": event.pk,
            "kind": event.kind,
            "kind_label": labels.get(event.kind, event.kind),
            "identity": event.identity,
            "reason": event.reason,
            "at": event.created_at.isoformat(),
            "ago": ago(event.created_at),
        }
        for event in Event.objects.newest_of(connector.pk)[:LAST_EVENTS]
    ]


def overview(connector: Connector, range_key: str, now: datetime | None = None) -> dict:
    """Everything the overview shows, as plain data (the page and its live feed share it)."""
    now = now or timezone.now()
    time_range = RANGES[range_key]
    statuses = status_counts(connector)
    total = sum((row["count"] for row in statuses), counting.Count(0, True))
    return {
        "total": total.as_json(),
        "statuses": [
            {"status": row["status"], "label": row["label"], **row["count"].as_json()}
            for row in statuses
        ],
        "activity": activity(connector, time_range, now),
        "failures": failures(connector, now - time_range.span),
        "events": last_events(connector),
        "generated_at": now.isoformat(),
    }
