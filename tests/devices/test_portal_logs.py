"""Portal Logs tab: newest first, filters, older pages and the live feed."""

import pytest

from audit.models import Event
from devices import services
from tests.support.clients import DeviceClient

pytestmark = pytest.mark.django_db


def test_logs_tab_shows_events_newest_first(owner_client, connector):
    services.whitelist_device(connector, "00000001")
    DeviceClient(connector).activate("00000001")
    DeviceClient(connector).activate("12ab")
    body = owner_client.get(f"/connectors/{connector.pk}/logs/").content.decode()
    failed = body.index("kind-provision_failed")
    provisioned = body.index('class="kind kind-provision"')
    whitelisted = body.index("kind-whitelist")
    assert failed < provisioned < whitelisted
    assert "exactly 8 decimal digits" in body
    last_id = Event.objects.order_by("-id").first().pk
    assert f'data-last-id="{last_id}"' in body


def test_logs_filter_by_kind_and_identity(owner_client, connector):
    services.whitelist_device(connector, "00000001")
    services.whitelist_device(connector, "00000002")
    DeviceClient(connector).activate("00000002")
    url = f"/connectors/{connector.pk}/logs/"
    body = owner_client.get(url, {"kind": "provision"}).content.decode()
    assert body.count("<tr data-id=") == 1
    body = owner_client.get(url, {"identity": "00000002"}).content.decode()
    assert body.count("<tr data-id=") == 2


def test_older_events_are_a_keyset_page(owner_client, connector):
    for number in range(1, 106):
        services.whitelist_device(connector, f"{number:08d}")
    url = f"/connectors/{connector.pk}/logs/"
    first = owner_client.get(url).content.decode()
    assert first.count("<tr data-id=") == 100
    oldest_shown = Event.objects.order_by("-id")[99].pk
    assert f"?before={oldest_shown}" in first
    older = owner_client.get(url, {"before": oldest_shown}).content.decode()
    assert older.count("<tr data-id=") == 5
    assert "data-feed-url" not in older  # an older page does not follow new events


def test_live_feed_returns_only_events_after_the_cursor_oldest_first(owner_client, connector):
    services.whitelist_device(connector, "00000001")
    cursor = Event.objects.get().pk
    DeviceClient(connector).activate("00000001")
    DeviceClient(connector).activate("00000001")
    answer = owner_client.get(f"/connectors/{connector.pk}/logs/feed", {"after": cursor}).json()
    assert [event["kind"] for event in answer["events"]] == ["provision", "provision_failed"]
    assert answer["events"][1]["reason"] == "device is already provisioned"
    assert answer["last_id"] == answer["events"][-1]["id"]
    again = owner_client.get(
        f"/connectors/{connector.pk}/logs/feed", {"after": answer["last_id"]}
    ).json()
    assert again == {"events": [], "last_id": answer["last_id"]}


def test_live_feed_with_a_filter_still_moves_its_cursor(owner_client, connector):
    services.whitelist_device(connector, "00000001")
    answer = owner_client.get(
        f"/connectors/{connector.pk}/logs/feed", {"after": 0, "kind": "revoke"}
    ).json()
    assert answer == {"events": [], "last_id": Event.objects.get().pk}


@pytest.mark.parametrize(
    "query", ["after=abc", "after=-1", "after=x1", "kind=bogus", "after=1e9999"]
)
def test_live_feed_answers_bad_queries_with_400(owner_client, connector, query):
    response = owner_client.get(f"/connectors/{connector.pk}/logs/feed?{query}")
    assert response.status_code == 400


@pytest.mark.parametrize("query", ["before=abc", "kind=bogus", "identity=" + "x" * 500])
def test_logs_page_explains_bad_filters(owner_client, connector, query):
    response = owner_client.get(f"/connectors/{connector.pk}/logs/?{query}")
    assert response.status_code == 200
    assert b'class="form-errors"' in response.content


def test_logs_of_another_connector_do_not_leak(owner_client, connector, make_connector, other_user):
    theirs = make_connector(owner=other_user)
    services.whitelist_device(theirs, "secret-device")
    services.whitelist_device(connector, "00000001")
    body = owner_client.get(f"/connectors/{connector.pk}/logs/").content.decode()
    assert "secret-device" not in body
    feed = owner_client.get(f"/connectors/{connector.pk}/logs/feed?after=0").json()
    assert [event["identity"] for event in feed["events"]] == ["00000001"]
    assert owner_client.get(f"/connectors/{theirs.pk}/logs/feed?after=0").status_code == 404
