"""The connector overview: devices by status, activity over time, failures, last events, live."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import Event
from devices import counting, overview, ticks
from devices.models import Device
from devices.templatetags.console import ago

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_connector(connector, device_client, whitelist):
    """Three devices activated and writing, one refused activation, one more whitelisted."""
    for number in range(1, 4):
        identity = f"0000000{number}"
        whitelist(connector, identity)
        token = device_client.activate(identity).content.decode()
        for value in range(2):
            assert device_client.write(f"myalias={value}", f"Token {token}").status_code == 204
    device_client.activate("99999999")
    whitelist(connector, "00000009")
    return connector


def test_a_connector_opens_on_its_overview(owner_browser, connector):
    response = owner_browser.get(f"/connectors/{connector.pk}/")
    assert response.status_code == 302
    assert response["Location"] == f"/connectors/{connector.pk}/overview/"


def test_overview_shows_devices_by_status_and_the_activity(owner_browser, busy_connector):
    response = owner_browser.get(f"/connectors/{busy_connector.pk}/overview/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="count-total" data-exact="true">4<' in body
    assert 'id="count-provisioned" data-exact="true">3<' in body
    assert 'id="count-whitelisted" data-exact="true">1<' in body
    assert ">Overview</a>" in body and 'aria-current="page">Overview' in body
    assert "99999999" in body  # the refused activation is among the last events
    assert "just now" in body
    data = response.context["data"]
    charts = {chart["title"]: chart for chart in data["activity"]["charts"]}
    activations = {s["name"]: sum(s["values"]) for s in charts["Activations"]["series"]}
    assert activations == {"activations": 3, "refused": 1}
    assert sum(charts["Writes"]["series"][0]["values"]) == 6
    assert charts["Writes"]["unit"] == "per hour"
    assert len(data["activity"]["labels"]) == 24
    reasons = data["failures"]["reasons"]
    assert [(row["kind"], row["count"]) for row in reasons] == [("provision_failed", "1")]


def test_the_live_feed_answers_the_same_numbers_as_json(owner_browser, busy_connector):
    response = owner_browser.get(f"/connectors/{busy_connector.pk}/overview/live?range=1h")
    assert response.status_code == 200
    data = response.json()
    assert data["total"] == {"value": 4, "exact": True, "text": "4"}
    assert data["activity"]["range"] == "1h"
    assert data["activity"]["charts"][0]["unit"] == "per 5 minutes"
    assert len(data["activity"]["labels"]) == 12
    assert data["events"][0]["kind"] == Event.WHITELIST


@pytest.mark.parametrize("range_key", ["1h", "24h", "7d", "30d"])
def test_every_range_counts_events_inside_it_only(owner_browser, busy_connector, range_key):
    old = timezone.now() - overview.RANGES[range_key].span - timedelta(days=1)
    Event.objects.filter(connector=busy_connector, kind=Event.WRITE).update(created_at=old)
    data = owner_browser.get(
        f"/connectors/{busy_connector.pk}/overview/live?range={range_key}"
    ).json()
    writes = data["activity"]["charts"][1]["series"][0]["values"]
    assert sum(writes) == 0
    assert len(writes) == len(data["activity"]["spans"])


def test_a_range_the_page_does_not_offer_is_a_400_on_the_feed(owner_browser, connector):
    base = f"/connectors/{connector.pk}/overview/"
    assert owner_browser.get(f"{base}live?range=2y").status_code == 400
    assert owner_browser.get(f"{base}live?range=1h%00").status_code == 400
    page = owner_browser.get(f"{base}?range=2y")
    assert page.status_code == 200
    assert "Showing the last 24 hours" in page.content.decode()


@pytest.mark.parametrize("path", ["overview/", "overview/live"])
def test_only_the_connectors_makers_see_its_overview(
    path, connector, other_browser, end_user_browser, client
):
    url = f"/connectors/{connector.pk}/{path}"
    assert other_browser.get(url).status_code == 404
    assert end_user_browser.get(url).status_code == 403
    assert client.get(url).status_code == 302  # to the sign-in page


def test_the_overview_refuses_writes(owner_browser, connector):
    assert owner_browser.post(f"/connectors/{connector.pk}/overview/").status_code == 405


def test_counts_beyond_the_cap_are_estimates_marked_about(connector):
    Device.objects.bulk_create(
        Device(connector=connector, identity=f"{number:08d}") for number in range(30)
    )
    devices = Device.objects.filter(connector=connector)
    assert counting.count(devices, cap=100) == counting.Count(30, True)
    estimated = counting.count(devices, cap=10)
    assert not estimated.exact and estimated.value >= 11
    assert str(estimated).startswith("about ")
    assert str(counting.Count(52018, True)) == "52,018"


def test_axes_tick_at_round_numbers_with_short_labels():
    assert ticks.nice_ticks(0) == [0, 1]
    assert ticks.nice_ticks(3) == [0, 1, 2, 3]
    assert ticks.nice_ticks(17) == [0, 5, 10, 15, 20]
    assert ticks.nice_ticks(30.05) == [0, 10, 20, 30, 40]
    assert ticks.nice_ticks(52018) == [0, 20000, 40000, 60000]
    assert [ticks.short_number(v) for v in (0, 1234, 12500, 3_400_000)] == [
        "0",
        "1,234",
        "12.5k",
        "3.4M",
    ]


def test_times_read_as_people_say_them():
    now = timezone.now()
    assert ago(now, now) == "just now"
    assert ago(now - timedelta(seconds=59), now) == "just now"
    assert ago(now - timedelta(minutes=1), now) == "1 minute ago"
    assert ago(now - timedelta(hours=3, minutes=5), now) == "3 hours ago"
    assert ago(now + timedelta(days=2, hours=1), now) == "in 2 days"
    assert ago(None, now) == "never"


def _log(connector_id: str, count: int, identity: str = "00000001") -> None:
    """`count` events of one connector, ids in insertion order."""
    Event.objects.bulk_create(
        Event(connector_id=connector_id, identity=identity, kind=Event.WRITE) for _ in range(count)
    )


def _log_many(connector_id: str, count: int) -> None:
    """PostgreSQL: `count` events of one connector in one INSERT … SELECT."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Event._meta.db_table}"  # noqa: S608
            " (connector_id, identity, kind, reason, actor_name, created_at)"
            " SELECT %s, '00000001', %s, '', '', now() FROM generate_series(1, %s)",
            [connector_id, Event.WRITE, count],
        )


def test_the_newest_events_of_a_connector_skip_the_newer_events_of_others(
    connector, make_connector
):
    other = make_connector()
    _log(connector.pk, 30, "00000001")
    _log(other.pk, 200, "00000002")
    _log(connector.pk, 5, "00000003")
    _log(other.pk, 50, "00000002")
    mine = list(Event.objects.filter(connector=connector).order_by("-id"))
    newest = list(Event.objects.newest_of(connector.pk)[:12])
    assert newest == mine[:12]
    assert [event.identity for event in newest[:6]] == ["00000003"] * 5 + ["00000001"]
    shown = overview.last_events(connector)
    assert [row["id"] for row in shown] == [event.pk for event in mine[: overview.LAST_EVENTS]]


@pytest.mark.postgres
def test_the_newest_events_of_a_quiet_connector_are_read_from_its_own_index(
    connector, make_connector
):
    """On PostgreSQL the newest of a connector whose events are older than another's busy
    log come from event_connector_recent, not a walk back through everyone's newest."""
    busy = make_connector()
    _log_many(connector.pk, 2_000)
    _log_many(busy.pk, 50_000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Event._meta.db_table}")
        for queryset in (
            Event.objects.newest_of(connector.pk)[: overview.LAST_EVENTS],
            Event.objects.newest_of(connector.pk).values_list("id", flat=True)[:1],
        ):
            sql, params = queryset.query.sql_with_params()
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            plan = json.dumps(cursor.fetchone()[0])
            assert '"Index Name": "event_connector_recent"' in plan, plan
            assert "Rows Removed by Filter" not in plan, plan
