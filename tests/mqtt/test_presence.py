"""Which devices are connected over MQTT, read from the broker's own log (mqtt.presence)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import Event
from devices import services
from devices.models import Device
from mqtt import presence, sync, topics
from mqtt.models import Session
from tests.mqtt.conftest import eventually

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def follower(mosquitto):
    """Follows the suite's broker log from where it ends now."""
    following = presence.Follower(mosquitto.log_path)
    while following.step():
        pass
    return following


@pytest.fixture
def provisioned(connector, whitelist, device_client, dynsec_client):
    whitelist(connector, "00000051")
    token = device_client.activate("00000051").content.decode()
    sync.flush(dynsec_client)
    return topics.username(connector.pk, "00000051"), token


def kinds(connector) -> list[str]:
    return list(
        Event.objects.filter(connector=connector, kind__startswith="mqtt_")
        .order_by("id")
        .values_list("kind", flat=True)
    )


def session_of(username) -> Session | None:
    return Session.objects.filter(username=username).first()


def test_a_connected_device_has_a_session_and_its_page_says_so(
    provisioned, follower, mqtt_device, connector, owner_client
):
    username, token = provisioned
    device = connector.devices.get(identity="00000051")
    page = reverse("devices:detail", args=[connector.pk, device.pk])
    assert "not connected" in owner_client.get(page).content.decode()

    live = mqtt_device(username, token)
    assert live.accepted()
    session = eventually(lambda: follower.step() is not None and session_of(username), "no session")
    assert (session.device_id, session.identity, session.address) == (
        device.pk,
        "00000051",
        "127.0.0.1",
    )
    client_id = live.client._client_id.decode()
    assert session.client_id == client_id
    event = Event.objects.get(connector=connector, kind=Event.MQTT_CONNECT)
    assert event.identity == "00000051" and client_id in event.reason
    html = owner_client.get(page).content.decode()
    assert "connected</span> since" in html and client_id in html and username in html

    live.close()
    eventually(lambda: follower.step() is not None and not session_of(username), "session kept")
    assert kinds(connector) == [Event.MQTT_CONNECT, Event.MQTT_DISCONNECT]
    assert "not connected" in owner_client.get(page).content.decode()
    logs = owner_client.get(reverse("devices:logs", args=[connector.pk])).content.decode()
    assert "Connected over MQTT" in logs and "Disconnected from MQTT" in logs


def test_a_revoked_devices_session_ends_as_kicked(
    provisioned, follower, mqtt_device, connector, dynsec_client
):
    username, token = provisioned
    live = mqtt_device(username, token)
    assert live.accepted()
    eventually(lambda: follower.step() is not None and session_of(username), "no session")
    services.revoke_device(connector.devices.get(identity="00000051"))
    sync.flush(dynsec_client)
    assert live.gone.wait(30)
    eventually(lambda: follower.step() is not None and not session_of(username), "session kept")
    assert kinds(connector) == [Event.MQTT_CONNECT, Event.MQTT_KICKED]
    # The refused reconnection is not attributed: the broker's log names no one.
    assert not mqtt_device(username, token).accepted()
    follower.step()
    assert kinds(connector) == [Event.MQTT_CONNECT, Event.MQTT_KICKED]


def test_a_device_given_a_secret_at_registration_connects_with_it_and_is_seen(
    connector, whitelist, dynsec_client, follower, mqtt_device
):
    device = whitelist(connector, "00000052")
    secret, _ = services.issue_secret(device)
    sync.flush(dynsec_client)
    Device.objects.filter(pk=device.pk).update(connect_by=timezone.now() - timedelta(seconds=1))
    live = mqtt_device(topics.username(connector.pk, "00000052"), secret, tls_port=True)
    assert live.accepted()
    eventually(lambda: follower.step() is not None and Session.objects.exists(), "no session")
    device.refresh_from_db()
    assert device.last_seen_at is not None and device.first_seen_at is not None
    assert services.end_unconnected() == 0


def test_service_clients_and_unknown_usernames_leave_no_session(follower, mosquitto, mqtt_device):
    assert not mqtt_device("dt" + "0" * 32 + "/nobody", "wrong").accepted()
    follower.step()
    assert not Session.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize(
    "line, address, client, username",
    [
        (
            "2026-12-02T05:34:14: New client connected from 10.0.0.7:51234 as s-1 "
            "(p2, c1, k60, u'dtab/00000001').",
            "10.0.0.7:51234", "s-1", "dtab/00000001",
        ),
        (
            "1764653654: New client connected from ::1:40001 as a (b) c (p5, c0, k30, u'x').",
            "::1:40001", "a (b) c", "x",
        ),
        (
            "2026-12-02T05:34:14: New client connected from 10.0.0.7:51234 as anon (p2, c1, k60).",
            "10.0.0.7:51234", "anon", None,
        ),
    ],
)  # fmt: skip
def test_connect_lines_are_read_with_their_address_client_id_and_username(
    line, address, client, username
):
    at, message = presence.split_line(line)
    match = presence.CONNECTED.search(message)
    assert (match["address"], match["client"], match["username"]) == (address, client, username)
    assert at.tzinfo is not None


def test_line_times_are_read_in_both_of_the_brokers_formats():
    at, message = presence.split_line("1764653654: Client x disconnected.")
    assert at == datetime.fromtimestamp(1764653654, tz=UTC) and message == "Client x disconnected."
    at, _ = presence.split_line("2026-12-02T05:34:14: Client x disconnected.")
    assert at.astimezone(UTC).replace(tzinfo=None) == datetime(2026, 12, 2, 5, 34, 14) - (
        at.utcoffset()
    )


def test_a_rotated_or_truncated_log_is_read_again_from_its_start(tmp_path, db):
    log = tmp_path / "mosquitto.log"
    log.write_text("1: mosquitto version 2.0.11 running\n2: half a li")
    follower = presence.Follower(log)
    assert follower.step() == 1
    assert follower.step() == 0  # an incomplete line waits for its end
    log.write_text("3: x\n")  # shorter than what was read: truncated
    assert follower.step() == 1
    log.unlink()
    assert follower.step() == 0
    log.write_text("4: mosquitto version 2.0.11 running\n5: x\n")  # a new file
    assert follower.step() == 2


@pytest.mark.parametrize(
    "address, ip",
    [
        ("10.0.0.7:51234", "10.0.0.7"),
        ("::1:40001", "::1"),
        ("[fe80::1]:5", "fe80::1"),
        ("x:1", None),
    ],
)
def test_the_peer_address_is_read_without_its_port(address, ip):
    assert presence.peer_ip(address) == ip
