"""Token and password devices on a real Mosquitto: credentials, ACLs, revocation."""

import threading

import pytest
from django.db import connections

from connectors.models import Connector
from devices import services
from mqtt import sync, topics
from mqtt.models import BrokerChange, PendingSecret

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token_device(connector, whitelist, device_client, dynsec_client):
    """A token device provisioned over HTTP and synced to the broker: (username, token)."""
    whitelist(connector, "00000001")
    response = device_client.activate("00000001")
    assert response.status_code == 200
    sync.flush(dynsec_client)
    return topics.username(connector.pk, "00000001"), response.content.decode()


def test_a_token_device_connects_with_its_identity_and_token(token_device, mqtt_device):
    username, token = token_device
    assert mqtt_device(username, token).accepted()
    assert mqtt_device(username, token, tls_port=True).accepted()


def test_a_wrong_token_or_another_connectors_username_is_refused(token_device, mqtt_device):
    username, token = token_device
    assert not mqtt_device(username, token[:-1] + ("A" if token[-1] != "A" else "B")).accepted()
    other = "dt" + "0" * 32 + "/00000001"
    assert not mqtt_device(other, token).accepted()


def test_a_password_device_connects_with_its_password(
    make_connector, whitelist, dynsec_client, mqtt_device
):
    from tests.support.clients import DeviceClient

    connector = make_connector(auth_mode=Connector.PASSWORD)
    whitelist(connector, "pw-device")
    password = "a password of twenty bytes or more"
    assert DeviceClient(connector).activate("pw-device", password).status_code == 204
    sync.flush(dynsec_client)
    username = topics.username(connector.pk, "pw-device")
    assert mqtt_device(username, password).accepted()
    assert not mqtt_device(username, password + "x").accepted()


def test_the_clear_secret_waits_sealed_and_is_gone_once_the_broker_has_it(
    connector, whitelist, device_client, broker_settings, dynsec_client
):
    whitelist(connector, "00000002")
    token = device_client.activate("00000002").content.decode()
    [pending] = PendingSecret.objects.all()
    assert token.encode() not in bytes(pending.sealed)
    sync.flush(dynsec_client)
    assert not PendingSecret.objects.exists()
    assert not BrokerChange.objects.exists()


def test_nothing_is_queued_without_a_broker(connector, whitelist, device_client, settings):
    settings.MQTT_BROKER_URL = ""
    whitelist(connector, "00000003")
    assert device_client.activate("00000003").status_code == 200
    assert not PendingSecret.objects.exists()
    assert not BrokerChange.objects.exists()


def test_a_device_can_neither_read_nor_write_another_devices_topics(
    connector, whitelist, device_client, dynsec_client, mqtt_device
):
    devices = {}
    for identity in ("00000011", "00000012"):
        whitelist(connector, identity)
        devices[identity] = device_client.activate(identity).content.decode()
    sync.flush(dynsec_client)
    a = mqtt_device(topics.username(connector.pk, "00000011"), devices["00000011"])
    b = mqtt_device(topics.username(connector.pk, "00000012"), devices["00000012"])
    assert a.accepted() and b.accepted()
    own_a = topics.namespace(connector.pk, "00000011")
    own_b = topics.namespace(connector.pk, "00000012")
    assert a.subscribe(f"{own_a}/#")
    assert not a.subscribe(f"{own_b}/#")
    assert not a.subscribe("#")
    assert not a.subscribe(f"{connector.pk}/+/resource/+")
    assert b.subscribe(f"{own_b}/#")
    # A's publish into B's namespace is dropped by the broker; B's own marker comes first.
    a.publish(f"{own_b}/command/myalias", "from A")
    a.publish(f"{own_b}/resource/myalias", "forged")
    b.publish(f"{own_b}/marker", "mine")
    assert b.wait_for_message() == [(f"{own_b}/marker", b"mine")]


@pytest.mark.parametrize("action", ["revoke", "reset", "delete"])
def test_revoking_resetting_or_deleting_disconnects_the_session_and_refuses_the_token(
    action, token_device, connector, dynsec_client, mqtt_device
):
    username, token = token_device
    session = mqtt_device(username, token)
    assert session.accepted()
    device = connector.devices.get(identity="00000001")
    {
        "revoke": services.revoke_device,
        "reset": services.reset_device,
        "delete": services.delete_device,
    }[action](device)
    sync.flush(dynsec_client)
    assert session.gone.wait(30), "the broker kept the session"
    assert not mqtt_device(username, token).accepted()


def test_deleting_the_connector_disconnects_its_devices(token_device, connector, mqtt_device):
    from connectors import services as connector_services

    username, token = token_device
    session = mqtt_device(username, token)
    assert session.accepted()
    connector_services.delete_connector(connector, actor=None)
    with sync.connect() as client:
        sync.flush(client)
    assert session.gone.wait(30), "the broker kept the session"
    assert not mqtt_device(username, token).accepted()


def test_the_sync_worker_sends_a_revocation_on_its_own(
    token_device, connector, broker_settings, mqtt_device
):
    username, token = token_device
    session = mqtt_device(username, token)
    assert session.accepted()
    worker = sync.Worker(interval=1.0)
    thread = threading.Thread(target=lambda: (worker.run(), connections.close_all()))
    thread.start()
    try:
        services.revoke_device(connector.devices.get(identity="00000001"))
        assert session.gone.wait(30), "the worker did not disconnect the device"
    finally:
        worker.stopping = True
        thread.join(30)
    assert not BrokerChange.objects.exists()
    assert not mqtt_device(username, token).accepted()


@pytest.mark.parametrize(
    "limit, took, expected",
    [
        (sync.BATCH, None, sync.BATCH // 4),  # not answered in time: a quarter
        (3, None, 1),
        (1, None, 1),  # never below one row
        (100, 0.1, 200),  # answered quickly: twice as many
        (sync.BATCH, 0.1, sync.BATCH),  # never above BATCH
        (100, 0.8, 100),  # within the budget: as many again
        (100, 4.0, 25),  # over the budget: as many as fit in it
        (100, 30.0, 3),
        (2, 30.0, 1),  # never below one row
    ],
)
def test_the_sync_sizes_its_messages_to_what_the_broker_answers_in_time(limit, took, expected):
    assert sync.MESSAGE_SECONDS == 1.0
    assert sync.next_limit(limit, took, timeout=60.0) == expected


@pytest.mark.parametrize(
    "interval, took, expected",
    [
        (0.25, 0.0, 0.25),  # a quick broker hears of the next change within the interval
        (0.25, 0.05, 0.25),
        (0.25, 1.0, 2.0),  # one busy for a second gets a second to serve its clients
        (1.0, 0.3, 1.0),
    ],
)
def test_the_sync_leaves_the_broker_as_long_to_serve_clients_as_it_kept_it_busy(
    settings, interval, took, expected
):
    worker = sync.Worker(interval=interval)
    worker.last_sent, worker.last_took = 100.0, took
    assert worker.next_send_at() == pytest.approx(100.0 + expected)
