"""The whitelist expiry sweep: batches, idempotency, and no double handling."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import Event
from devices import services
from devices.models import Device


def whitelist_past_window(connector, identities, seconds_ago=5):
    """Whitelist identities whose activation window closed `seconds_ago`."""
    for identity in identities:
        services.whitelist_device(connector, identity)
    Device.objects.filter(connector=connector, identity__in=identities).update(
        activation_expires_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def identities(count, start=1):
    return [f"{n:08d}" for n in range(start, start + count)]


def expire_events():
    return Event.objects.filter(kind=Event.EXPIRE)


@pytest.mark.django_db
def test_sweep_expires_every_stale_entry_in_batches_of_the_given_size(connector):
    whitelist_past_window(connector, identities(5))
    with CaptureQueriesContext(connection) as queries:
        assert services.expire_stale_whitelist(batch_size=2) == 5
    status_updates = [
        q["sql"] for q in queries if q["sql"].startswith("UPDATE") and '"status"' in q["sql"]
    ]
    assert len(status_updates) == 3  # 2 + 2 + 1
    assert set(Device.objects.values_list("status", flat=True)) == {Device.EXPIRED}
    assert sorted(expire_events().values_list("identity", flat=True)) == identities(5)
    assert set(expire_events().values_list("reason", flat=True)) == {"activation window passed"}


@pytest.mark.django_db
def test_a_second_sweep_claims_nothing_and_logs_nothing(connector):
    whitelist_past_window(connector, identities(5))
    services.expire_stale_whitelist(batch_size=2)
    assert services.expire_stale_whitelist(batch_size=2) == 0
    assert expire_events().count() == 5


@pytest.mark.django_db
def test_entries_inside_their_window_and_provisioned_devices_are_left_alone(
    connector, device_client
):
    whitelist_past_window(connector, ["00000001"])
    services.whitelist_device(connector, "00000002")
    services.whitelist_device(connector, "00000003")
    assert device_client.activate("00000003").status_code == 200
    # A provisioned device's old deadline means nothing any more.
    Device.objects.filter(identity="00000003").update(
        activation_expires_at=timezone.now() - timedelta(hours=1)
    )

    assert services.expire_stale_whitelist() == 1

    statuses = dict(Device.objects.values_list("identity", "status"))
    assert statuses == {
        "00000001": Device.EXPIRED,
        "00000002": Device.WHITELISTED,
        "00000003": Device.PROVISIONED,
    }
    assert list(expire_events().values_list("identity", flat=True)) == ["00000001"]


@pytest.mark.django_db
def test_an_expired_entry_cannot_be_activated_and_reset_whitelists_it_again(
    connector, device_client
):
    whitelist_past_window(connector, ["00000001"])
    services.expire_stale_whitelist()
    assert device_client.activate("00000001").status_code == 410

    services.reset_device(Device.objects.get(identity="00000001"))
    assert services.expire_stale_whitelist() == 0
    assert device_client.activate("00000001").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_handle_each_entry_exactly_once(connector):
    rows = 120
    whitelist_past_window(connector, identities(rows))
    sweepers = 2
    barrier = threading.Barrier(sweepers)

    def sweep():
        try:
            barrier.wait(timeout=60)
            return services.expire_stale_whitelist(batch_size=7)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=sweepers) as pool:
        futures = [pool.submit(sweep) for _ in range(sweepers)]
        claimed = [future.result(timeout=60) for future in futures]

    assert sum(claimed) == rows
    assert expire_events().count() == rows
    assert expire_events().values("identity").distinct().count() == rows
    assert Device.objects.filter(status=Device.EXPIRED).count() == rows
