"""The device a credential finds is loaded from one written-out query, fields converted
as the ORM would convert them, with its connector's alias-table revision."""

import pytest
from django.utils import timezone

from devices import services
from devices.models import Device
from devices.services import authentication

pytestmark = pytest.mark.django_db


def test_a_token_finds_its_device_with_every_field_as_the_orm_reads_it(connector, whitelist):
    whitelist(connector, "00000001")
    token = services.activate_device(connector, "00000001", None, "192.0.2.7")
    stored = Device.objects.get(connector=connector, identity="00000001")

    found = services.authenticate_token(connector.pk, token, "192.0.2.7")

    for name in authentication._DEVICE_NAMES:
        assert getattr(found, name) == getattr(stored, name), name
    assert timezone.is_aware(found.last_seen_at)
    connector.refresh_from_db()
    assert found.connector.pk == connector.pk
    assert found.connector.resources_revision == connector.resources_revision
    # Fields the lookup does not read load on use, as a deferred field does.
    assert found.provisioned_at == stored.provisioned_at


def test_a_token_of_another_connector_finds_nothing(connector, make_connector, whitelist):
    whitelist(connector, "00000002")
    token = services.activate_device(connector, "00000002", None, "192.0.2.7")
    other = make_connector()
    assert authentication._device_by_token(other.pk, token) is None
