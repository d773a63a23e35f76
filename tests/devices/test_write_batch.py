"""devices.services.WriteBatch: many devices' writes stored in a few statements, as
write_data stores each (the MQTT ingest's path)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import Event
from devices import services
from devices.models import DataPoint, Device

pytestmark = pytest.mark.django_db


def provisioned(connector, identity: str) -> Device:
    services.whitelist_device(connector, identity)
    services.activate_device(connector, identity, None, "127.0.0.1")
    return Device.objects.select_related("connector").get(connector=connector, identity=identity)


def test_a_batch_stores_what_write_data_would_in_a_few_statements(connector):
    first, second = provisioned(connector, "00000001"), provisioned(connector, "00000002")
    writes = services.WriteBatch()
    for n in range(3):
        writes.add(first, [("myalias", str(n))], None)
    writes.add(second, [("myalias", "9"), ("undefined", "x")], None)
    with CaptureQueriesContext(connection) as queries:
        writes.save()
    assert len(queries) == 4  # the points, the events, each device's last seen
    assert list(DataPoint.objects.order_by("id").values_list("device__identity", "value")) == [
        ("00000001", "0"), ("00000001", "1"), ("00000001", "2"), ("00000002", "9"),
    ]  # fmt: skip
    reasons = Event.objects.filter(kind=Event.WRITE).order_by("id").values_list("reason", flat=True)
    assert list(reasons) == [
        "myalias=0", "myalias=1", "myalias=2",
        "myalias=9, undefined=x (not stored, undefined: undefined)",
    ]  # fmt: skip
    first.refresh_from_db()
    assert first.last_seen_at is not None and first.last_ip is None


def test_a_refused_write_adds_nothing_and_its_line_keeps_its_place(connector):
    device = provisioned(connector, "00000001")
    writes = services.WriteBatch()
    writes.add(device, [("myalias", "1")], None)
    with pytest.raises(services.InvalidData):
        writes.add(device, [("myalias", "not a number")], None)
    writes.add_event(connector.pk, "00000001", Event.WRITE_IGNORED, "refused", None)
    writes.add(device, [("myalias", "2")], None)
    writes.save()
    assert list(DataPoint.objects.order_by("id").values_list("value", flat=True)) == ["1", "2"]
    kinds = Event.objects.filter(identity="00000001", kind__in=[Event.WRITE, Event.WRITE_IGNORED])
    assert list(kinds.order_by("id").values_list("kind", "reason")) == [
        (Event.WRITE, "myalias=1"), (Event.WRITE_IGNORED, "refused"), (Event.WRITE, "myalias=2"),
    ]  # fmt: skip


def test_a_write_past_the_rate_is_refused_as_write_data_refuses_it(connector, settings):
    settings.RATE_LIMIT_WRITE = "2/60"
    device = provisioned(connector, "00000001")
    writes = services.WriteBatch()
    writes.add(device, [("myalias", "1")], None)
    writes.add(device, [("myalias", "2")], None)
    with pytest.raises(services.RateLimited):
        writes.add(device, [("myalias", "3")], None)
    writes.save()
    assert DataPoint.objects.count() == 2


def test_a_batch_counted_at_once_refuses_the_writes_past_the_rate_in_order(connector, settings):
    """The ingest counts a batch's writes in one round trip: a device's writes are
    counted in turn, and those past the rate are refused as one by one they would be."""
    settings.RATE_LIMIT_WRITE = "2/60"
    first, second = provisioned(connector, "00000001"), provisioned(connector, "00000002")
    batch = [first, second, first, first, second]
    counted = services.WriteBatch.count(batch)
    assert counted == [1, 1, 2, 3, 2]
    writes, refused = services.WriteBatch(), []
    for device, count in zip(batch, counted, strict=True):
        try:
            writes.add(device, [("myalias", device.identity[-1])], None, counted=count)
        except services.RateLimited as exc:
            refused.append((device.identity, exc.retry_after > 0))
    writes.save()
    assert refused == [("00000001", True)]
    assert DataPoint.objects.count() == 4
    # The writes counted at once count for the next ones too.
    with pytest.raises(services.RateLimited):
        writes.add(second, [("myalias", "3")], None)
    assert services.WriteBatch.count([]) == []


def test_saving_an_empty_batch_writes_nothing(connector):
    with CaptureQueriesContext(connection) as queries:
        services.WriteBatch().save()
    assert not queries.captured_queries
