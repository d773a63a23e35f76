"""The broker's outbox, filled by the receivers of mqtt.sync without a broker running."""

import pytest

from devices.models import Device
from devices.signals import CredentialChange
from mqtt import sync, vault
from mqtt.models import BrokerChange, PendingSecret

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def outbox(settings):
    settings.MQTT_BROKER_URL = "mqtts://127.0.0.1:8883"
    settings.MQTT_ADMIN_PASSWORD = "outbox-test"  # noqa: S105


def test_an_activation_queues_its_change_and_its_sealed_secret(
    connector, whitelist, device_client, outbox
):
    whitelist(connector, "00000001")
    token = device_client.activate("00000001").content.decode()
    device = Device.objects.get(connector=connector, identity="00000001")
    [change] = BrokerChange.objects.all()
    assert (change.reason, change.connector_id, change.device_id, change.identity) == (
        "provisioned",
        connector.pk,
        device.pk,
        "00000001",
    )
    assert change.created_at is not None
    [pending] = PendingSecret.objects.all()
    assert (pending.device_id, pending.credential_version) == (device.pk, 1)
    assert vault.unseal(pending.sealed, device.pk, device.credential_version) == token
    assert pending.created_at is not None


def test_a_change_of_several_devices_queues_one_row_each(connector, outbox):
    sync.credentials_changed(
        sender=CredentialChange,
        changes=[
            CredentialChange("reset", connector.pk, 41, "00000041"),
            CredentialChange("trust_changed", connector.pk),
        ],
    )
    rows = BrokerChange.objects.order_by("pk").values_list(
        "reason", "connector_id", "device_id", "identity"
    )
    assert list(rows) == [
        ("reset", connector.pk, 41, "00000041"),
        ("trust_changed", connector.pk, None, ""),
    ]


def test_a_secret_of_an_unknown_device_queues_nothing(connector, outbox):
    sync.secret_issued(sender=Device, connector_id=connector.pk, identity="0000999", secret="x")
    assert not PendingSecret.objects.exists()
