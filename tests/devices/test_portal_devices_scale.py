"""The Devices tab at scale: every sort pages through ties without skipping or repeating,
status chips count, bulk actions change only the connector's own devices."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from devices import counting, services
from devices.models import Device

pytestmark = pytest.mark.django_db


def identities(response) -> list[str]:
    return re.findall(
        r'<td class="identity"><a href="[^"]+">([^<]+)</a>', response.content.decode()
    )


def link(response, rel: str) -> str | None:
    found = re.search(rf'href="\?([^"]+)" rel="{rel}"', response.content.decode())
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.fixture
def fleet(connector):
    """60 devices whose status and last seen tie in groups, some never seen."""
    moment = timezone.now() - timedelta(hours=1)
    for number in range(60):
        device = services.whitelist_device(connector, f"{(number * 7) % 60:08d}")
        Device.objects.filter(pk=device.pk).update(
            status=[Device.WHITELISTED, Device.REVOKED, Device.EXPIRED][number % 3],
            last_seen_at=None if number % 4 == 0 else moment + timedelta(minutes=number % 5),
        )
    return connector


@pytest.mark.parametrize("sort", ["created", "identity", "status", "last_seen"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_every_sort_pages_through_ties_without_skipping_or_repeating(
    owner_client, fleet, sort, direction
):
    url = f"/connectors/{fleet.pk}/devices/"
    response = owner_client.get(url, {"sort": sort, "dir": direction, "size": 25})
    seen = identities(response)
    while (following := link(response, "next")) is not None:
        response = owner_client.get(f"{url}?{following}")
        assert response.status_code == 200
        seen += identities(response)
    assert len(seen) == 60
    assert len(set(seen)) == 60
    back = identities(response)
    response = owner_client.get(f"{url}?{link(response, 'prev')}")
    assert identities(response) == seen[-len(back) - 25 : -len(back)]
    last = owner_client.get(url, {"sort": sort, "dir": direction, "size": 25, "at": "last"})
    assert identities(last) == seen[-len(identities(last)) :]


def test_status_chips_count_and_filter(owner_client, fleet):
    response = owner_client.get(f"/connectors/{fleet.pk}/devices/")
    body = response.content.decode()
    assert re.search(r'data-status="revoked".*?<b class="chip-count"[^>]*>20</b>', body, re.S)
    assert re.search(r'data-status="all".*?<b class="chip-count"[^>]*>60</b>', body, re.S)
    filtered = owner_client.get(f"/connectors/{fleet.pk}/devices/", {"status": "revoked"})
    assert len(identities(filtered)) == 20


def test_chips_under_a_tag_or_a_prefix_count_only_the_matching_devices(
    owner_client, fleet, make_connector
):
    """Counted in one pass over the matching rows; another connector's tagged devices
    and the connector's untagged ones are not counted."""
    tagged = list(Device.objects.filter(connector=fleet).order_by("id")[:30])
    Device.objects.filter(pk__in=[d.pk for d in tagged]).update(
        tags=[{"name": "site", "value": "b7"}]
    )
    other = make_connector(identity_type="base10", identity_length=8)
    services.whitelist_device(other, "00000001", tags=[{"name": "site", "value": "b7"}])
    expected = {status: 0 for status, _ in Device.STATUSES}
    for device in tagged:
        expected[device.status] += 1
    url = f"/connectors/{fleet.pk}/devices/"
    for query, counts in [
        ({"tag": "site=b7"}, expected),
        ({"q": "0000001"}, None),
    ]:
        if counts is None:
            matching = Device.objects.filter(connector=fleet, identity__startswith="0000001")
            counts = {
                status: matching.filter(status=status).count() for status, _ in Device.STATUSES
            }
        body = owner_client.get(url, query).content.decode()
        for status, number in counts.items():
            chip = rf'data-status="{status}".*?<b class="chip-count"[^>]*>{number}</b>'
            assert re.search(chip, body, re.S), (query, status, number)
        total = sum(counts.values())
        assert re.search(rf'data-status="all".*?<b class="chip-count"[^>]*>{total}</b>', body, re.S)


def test_counting_each_status_in_one_pass_is_exact_or_falls_back_to_the_cap(fleet):
    devices = Device.objects.filter(connector=fleet)
    statuses = [status for status, _ in Device.STATUSES]
    # 60 rows, fewer than 4 × 100 + 1: one pass reads them all, every count exact.
    assert counting.count_each(devices, "status", statuses, cap=100) == {
        Device.WHITELISTED: counting.Count(20, True),
        Device.PROVISIONED: counting.Count(0, True),
        Device.EXPIRED: counting.Count(20, True),
        Device.REVOKED: counting.Count(20, True),
    }
    # More rows than 4 × 5 + 1: each status is counted on its own, exact up to the cap.
    capped = counting.count_each(devices, "status", statuses, cap=5)
    assert capped[Device.PROVISIONED] == counting.Count(0, True)
    for status in (Device.WHITELISTED, Device.EXPIRED, Device.REVOKED):
        assert not capped[status].exact and capped[status].value >= 6
    # Just under the pass's limit (4 × 15 + 1 = 61 > 60) is still one exact pass.
    assert counting.count_each(devices, "status", statuses, cap=15)[Device.REVOKED] == (
        counting.Count(20, True)
    )


@pytest.mark.parametrize("query", ["q=ab%00c", "tag=a%00", "after=1%00", "sort=id%00"])
def test_nul_in_the_query_is_a_400(owner_client, fleet, query):
    assert owner_client.get(f"/connectors/{fleet.pk}/devices/?{query}").status_code == 400


def test_bulk_revoke_of_picked_devices_confirms_then_logs_each(owner_client, connector):
    devices = [services.whitelist_device(connector, f"{n:08d}") for n in range(1, 4)]
    url = f"/connectors/{connector.pk}/devices/bulk/"
    picked = {"action": "revoke", "scope": "selected", "ids": [d.pk for d in devices[:2]]}
    confirm = owner_client.post(url, picked)
    assert b"2</span> devices will change" in confirm.content
    assert Device.objects.filter(status=Device.REVOKED).count() == 0
    done = owner_client.post(url, {**picked, "confirmed": "on"})
    assert done.status_code == 302
    assert Device.objects.filter(status=Device.REVOKED).count() == 2
    assert Event.objects.filter(kind=Event.REVOKE, actor_name__isnull=False).count() == 2


def test_a_forged_id_of_another_connector_changes_nothing(owner_client, connector, make_connector):
    other = make_connector()
    theirs = services.whitelist_device(other, "00000009")
    url = f"/connectors/{connector.pk}/devices/bulk/"
    owner_client.post(
        url, {"action": "delete", "scope": "selected", "ids": [theirs.pk], "confirmed": "on"}
    )
    assert Device.objects.filter(pk=theirs.pk).exists()


def test_bulk_tag_on_all_matching_runs_inline_when_small(owner_client, connector):
    for n in range(1, 6):
        services.whitelist_device(connector, f"{n:08d}")
    url = f"/connectors/{connector.pk}/devices/bulk/"
    owner_client.post(
        url, {"action": "tag", "scope": "all", "change_tag": "group=g1", "confirmed": "on"}
    )
    assert all(d.tags == [{"name": "group", "value": "g1"}] for d in Device.objects.all())


def test_all_matching_beyond_the_inline_limit_runs_as_a_task_with_progress(
    owner_client, connector, settings, django_capture_on_commit_callbacks
):
    from devices import tasks
    from devices.models import BulkAction

    settings.DEVICE_BULK_INLINE_MAX = 2
    for n in range(1, 8):
        services.whitelist_device(connector, f"{n:08d}")
    url = f"/connectors/{connector.pk}/devices/bulk/"
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = owner_client.post(
            url, {"action": "revoke", "scope": "all", "status": "whitelisted", "confirmed": "on"}
        )
    job = BulkAction.objects.get(connector=connector)
    assert response.status_code == 302
    assert response["Location"] == f"/connectors/{connector.pk}/devices/bulk/{job.pk}/"
    assert len(sent) == 1
    assert Device.objects.filter(status=Device.REVOKED).count() == 0
    tasks.run_bulk_action(job.pk)  # the task's body, as the worker runs it
    progress = owner_client.get(f"{url}{job.pk}/progress").json()
    assert progress["finished"] and progress["changed"] == 7
    assert Device.objects.filter(status=Device.REVOKED).count() == 7
    assert b"7 devices revoked" in owner_client.get(f"{url}{job.pk}/").content
