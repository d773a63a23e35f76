from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from devices import services
from devices.models import DataPoint

pytestmark = pytest.mark.django_db


def test_purge_drops_only_records_past_retention(connector, whitelist, settings):
    settings.EVENT_RETENTION_DAYS = 30
    settings.DATA_RETENTION_DAYS = 0
    device = whitelist(connector, "00000001")
    old = timezone.now() - timedelta(days=31)
    for value in range(3):
        DataPoint.objects.create(device=device, alias="myalias", value=str(value))
        services.record_event(connector.pk, "00000001", Event.WRITE, "old")
    Event.objects.filter(reason="old").update(created_at=old)
    DataPoint.objects.update(created_at=old)

    purged = services.purge_old_records(batch_size=2)

    assert purged == {"event": 3, "datapoint": 0, "eventcount": 0}
    assert list(Event.objects.values_list("kind", flat=True)) == ["whitelist"]
    assert DataPoint.objects.count() == 3
