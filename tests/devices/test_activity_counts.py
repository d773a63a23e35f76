"""The overview's activity per hour and per day: columns that are over are counted once
and kept (audit.counts), and every answer equals counting the log itself."""

import zoneinfo
from collections import Counter
from datetime import datetime, timedelta

import pytest
from django.db.models import Count
from django.db.models.functions import Trunc
from django.utils import timezone

from audit import counts
from audit.models import Event, EventCount
from devices import overview
from devices.services import purge_old_records

pytestmark = pytest.mark.django_db
KINDS = [Event.PROVISION, Event.PROVISION_FAILED, Event.WRITE]


def log_at(connector_id: str, kind: str, moments: list[datetime]) -> None:
    """Events of `kind` logged at `moments` (the log takes the time itself; set it after)."""
    made = Event.objects.bulk_create(
        Event(connector_id=connector_id, identity="00000001", kind=kind) for _ in moments
    )
    for event, moment in zip(made, moments, strict=True):
        event.created_at = moment
    Event.objects.bulk_update(made, ["created_at"], batch_size=500)


def from_the_log(connector_id: str, unit: str, since: datetime) -> Counter:
    rows = (
        Event.objects.filter(connector_id=connector_id, kind__in=KINDS, created_at__gte=since)
        .annotate(at=Trunc("created_at", unit))
        .values("kind", "at")
        .annotate(rows=Count("*"))
        .order_by()
    )
    return Counter({(row["kind"], row["at"]): row["rows"] for row in rows})


def as_counter(rows) -> Counter:
    return Counter({(kind, at): events for kind, at, events in rows})


def spread(connector_id: str, now: datetime) -> None:
    """Events over the last 31 days, some in the open hour, several per column."""
    for step, kind in enumerate(KINDS):
        moments = [now - timedelta(minutes=37 * n + step) for n in range(0, 31 * 24 * 60 // 37, 5)]
        log_at(connector_id, kind, moments)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
@pytest.mark.parametrize("range_key", ["1h", "24h", "7d", "30d"])
def test_the_counts_are_the_logs_in_every_zone_and_range(connector, zone, range_key):
    # A moment after a clock change in New York (2026-11-01), so 30 days span it.
    now = datetime(2026, 11, 20, 15, 47, tzinfo=zoneinfo.ZoneInfo("UTC"))
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        spread(connector.pk, now)
        time_range = overview.RANGES[range_key]
        since = overview.bucket_starts(time_range, now)[0]
        expected = from_the_log(connector.pk, time_range.trunc, since)
        first = as_counter(counts.per_column(connector.pk, KINDS, time_range.trunc, since, now))
        again = as_counter(counts.per_column(connector.pk, KINDS, time_range.trunc, since, now))
    assert first == again == expected
    assert sum(expected.values()) > 0


def test_a_column_that_is_over_is_read_from_the_kept_counts(connector):
    now = timezone.now()
    log_at(connector.pk, Event.WRITE, [now - timedelta(days=2), now - timedelta(days=2, hours=1)])
    log_at(connector.pk, Event.WRITE, [now - timedelta(seconds=5)])
    time_range = overview.RANGES["7d"]
    since = overview.bucket_starts(time_range, now)[0]
    assert sum(e for _, _, e in counts.per_column(connector.pk, KINDS, "hour", since, now)) == 3
    # Every column that is over is kept, the quiet ones as zeros: 7 days of hours, 3 kinds.
    kept = EventCount.objects.filter(connector=connector, unit="hour")
    hours_over = (counts._start_of(now - counts.LATE, "hour") - since) // timedelta(hours=1)
    assert kept.count() == 3 * hours_over
    assert sum(kept.values_list("rows", flat=True)) == 2
    # Moved out of the range, the old lines still count where they were kept; a new line in
    # the open hour is counted from the log.
    Event.objects.filter(created_at__lt=now - timedelta(days=1)).update(
        created_at=now - timedelta(days=60)
    )
    log_at(connector.pk, Event.PROVISION, [timezone.now()])
    rows = counts.per_column(connector.pk, KINDS, "hour", since, timezone.now())
    assert Counter(kind for kind, _, events in rows for _ in range(events)) == {
        Event.WRITE: 3,
        Event.PROVISION: 1,
    }


def test_a_line_logged_late_in_the_last_hour_is_still_counted(connector):
    """An hour is kept only LATE after its end: a line that commits late is not lost."""
    now = timezone.now().replace(minute=3)
    log_at(connector.pk, Event.WRITE, [now - timedelta(minutes=5)])  # the hour before
    since = now - timedelta(hours=2)
    since = timezone.localtime(since).replace(minute=0, second=0, microsecond=0)
    counts.per_column(connector.pk, KINDS, "hour", since, now)
    log_at(connector.pk, Event.WRITE, [now - timedelta(minutes=4)])  # committed a moment later
    rows = counts.per_column(connector.pk, KINDS, "hour", since, now)
    assert sum(events for _, _, events in rows) == 2


def test_counts_keep_to_their_connector_and_kinds(connector, make_connector):
    other = make_connector()
    now = timezone.now()
    log_at(connector.pk, Event.WRITE, [now - timedelta(days=3)])
    log_at(other.pk, Event.WRITE, [now - timedelta(days=3)] * 4)
    log_at(connector.pk, Event.RESET, [now - timedelta(days=3)])
    since = now - timedelta(days=5)
    since = timezone.localtime(since).replace(hour=0, minute=0, second=0, microsecond=0)
    assert [e for _, _, e in counts.per_column(connector.pk, KINDS, "day", since, now)] == [1]
    assert [e for _, _, e in counts.per_column(other.pk, KINDS, "day", since, now)] == [4]


def test_kept_counts_of_some_kinds_are_completed_without_a_conflict(connector):
    now = timezone.now()
    log_at(connector.pk, Event.WRITE, [now - timedelta(days=2)])
    day = timezone.localtime(now - timedelta(days=2)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    # Another look kept this day's writes a moment ago, before it counted the other kinds.
    EventCount.objects.create(connector=connector, kind=Event.WRITE, unit="day", start=day, rows=1)
    rows = counts.per_column(connector.pk, KINDS, "day", day, now)
    assert sum(events for _, _, events in rows) == 1
    assert EventCount.objects.filter(connector=connector, start=day).count() == len(KINDS)


def test_retention_forgets_counts_older_than_any_chart(connector, settings):
    settings.EVENT_RETENTION_DAYS = 0  # keeps the log; the counts go on their own clock
    now = timezone.now()
    for days in (1, 40):
        start = now - timedelta(days=days)
        EventCount.objects.create(
            connector=connector, kind=Event.WRITE, unit="day", start=start, rows=1
        )
    assert purge_old_records()["eventcount"] == 1
    assert EventCount.objects.get().start > now - counts.KEPT


def test_the_overview_shows_kept_and_live_counts_alike(owner_browser, connector):
    now = timezone.now()
    log_at(connector.pk, Event.WRITE, [now - timedelta(days=3)] * 2 + [now])
    for _ in range(2):
        response = owner_browser.get(f"/connectors/{connector.pk}/overview/live?range=30d")
        assert response.status_code == 200
        charts = {chart["title"]: chart for chart in response.json()["activity"]["charts"]}
        assert sum(charts["Writes"]["series"][0]["values"]) == 3


def test_failures_by_reason_are_read_from_the_newest_of_each_kind(
    connector, make_connector, monkeypatch
):
    """The sample is the newest refusals of every kind together, the same as one ordered
    read of the log gives, and keeps to its connector, kinds and range."""
    monkeypatch.setattr(overview, "FAILURE_SAMPLE", 7)
    now = timezone.now()
    kinds = [Event.PROVISION_FAILED, Event.AUTH_FAILED, Event.AUTH_FAILED, Event.RATE_LIMITED]
    for minute in range(12):
        made = Event.objects.create(
            connector=connector, identity="1", kind=kinds[minute % 4], reason=f"reason {minute}"
        )
        Event.objects.filter(pk=made.pk).update(created_at=now - timedelta(minutes=minute))
    log_at(make_connector().pk, Event.AUTH_FAILED, [now] * 3)  # another connector's
    log_at(connector.pk, Event.WRITE, [now] * 3)  # not a refusal
    log_at(connector.pk, Event.AUTH_FAILED, [now - timedelta(days=2)] * 3)  # out of range
    sample = overview.newest_failures(connector, now - timedelta(days=1))
    assert sample == [(kinds[minute % 4], f"reason {minute}") for minute in range(7)]
