"""`manage.py mqtt_resync` against a real Mosquitto."""

from io import StringIO

import pytest
from django.core.management import call_command

from mqtt import sync, topics

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def synced(connector, whitelist, device_client, dynsec_client):
    tokens = {}
    for identity in ("00000021", "00000022"):
        whitelist(connector, identity)
        tokens[identity] = device_client.activate(identity).content.decode()
    sync.flush(dynsec_client)
    return tokens


def test_resync_removes_the_client_of_a_device_deleted_while_no_sync_ran(
    synced, connector, settings, mqtt_device
):
    username = topics.username(connector.pk, "00000021")
    session = mqtt_device(username, synced["00000021"])
    assert session.accepted()
    url = settings.MQTT_BROKER_URL
    settings.MQTT_BROKER_URL = ""  # the change reaches no outbox
    connector.devices.get(identity="00000021").delete()
    settings.MQTT_BROKER_URL = url
    out = StringIO()
    call_command("mqtt_resync", stdout=out)
    assert f"  removed {username}" in out.getvalue()
    assert session.gone.wait(30)
    assert not mqtt_device(username, synced["00000021"]).accepted()
    kept = topics.username(connector.pk, "00000022")
    assert mqtt_device(kept, synced["00000022"]).accepted()


def test_resync_names_provisioned_devices_the_broker_lost(synced, connector, dynsec_client):
    username = topics.username(connector.pk, "00000022")
    dynsec_client.run([{"command": "deleteClient", "username": username}])
    out = StringIO()
    call_command("mqtt_resync", "--dry-run", stdout=out)
    assert f"  missing {username}" in out.getvalue()
    assert f"removed {topics.username(connector.pk, '00000021')}" not in out.getvalue()


def test_resync_without_a_broker_says_so(settings):
    settings.MQTT_BROKER_URL = ""
    with pytest.raises(Exception, match="MQTT_BROKER_URL is not set"):
        call_command("mqtt_resync")
