"""Commands: a maker's write to a device's alias reaches that device over MQTT, no other."""

import pytest

from audit.models import Event
from devices import services
from devices.models import Device
from mqtt import broker, sync, topics

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def online(connector, whitelist, device_client, dynsec_client, mqtt_device):
    """Two token devices connected over MQTT, each subscribed to its own command topics."""

    def connect(identity):
        whitelist(connector, identity)
        token = device_client.activate(identity).content.decode()
        sync.flush(dynsec_client)
        session = mqtt_device(topics.username(connector.pk, identity), token)
        assert session.accepted()
        assert session.subscribe(topics.namespace(connector.pk, identity) + "/command/#")
        session.token = token
        return session

    return {identity: connect(identity) for identity in ("00000041", "00000042")}


def command(api_client, connector, identity, alias, value):
    return api_client.post(
        f"/api/v1/connectors/{connector.pk}/devices/{identity}/data/",
        {"alias": alias, "value": value},
        format="json",
    )


def test_a_command_reaches_its_device_and_no_other(online, api_client, connector):
    first, second = online["00000041"], online["00000042"]
    response = command(api_client, connector, "00000041", "myalias", "5")
    assert response.status_code == 201, response.content
    assert response.json()["value"] == "5"
    topic = topics.command_topic(connector.pk, "00000041", "myalias")
    assert first.wait_for_message() == [(topic, b"5")]
    # Published in order through one connection: once the second device has its own
    # command, it would have had the first one too.
    assert command(api_client, connector, "00000042", "myalias", "6").status_code == 201
    assert second.wait_for_message() == [
        (topics.command_topic(connector.pk, "00000042", "myalias"), b"6")
    ]


def test_the_command_is_logged_with_its_actor_and_readable_over_http(
    online, api_client, connector, owner, device_client
):
    assert command(api_client, connector, "00000041", "myalias", "7").status_code == 201
    event = Event.objects.get(connector=connector, kind=Event.COMMAND)
    assert event.identity == "00000041"
    assert event.actor == owner
    assert "myalias=7" in event.reason
    token = online["00000041"].token
    assert device_client.read("myalias", f"Token {token}").content.decode() == "myalias=7"


def test_a_device_cannot_listen_to_another_devices_commands_nor_command_itself(
    online, api_client, connector
):
    first, second = online["00000041"], online["00000042"]
    assert not second.subscribe(topics.namespace(connector.pk, "00000041") + "/command/#")
    assert not second.subscribe(f"{connector.pk}/+/command/#")
    # A device publishing to its own command topic reaches no one, not even itself.
    first.publish(topics.command_topic(connector.pk, "00000041", "myalias"), "99")
    assert command(api_client, connector, "00000041", "myalias", "8").status_code == 201
    assert first.wait_for_message() == [
        (topics.command_topic(connector.pk, "00000041", "myalias"), b"8")
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"alias": "nosuch", "value": "1"},
        {"alias": "myalias", "value": "not a number"},
        {"alias": "myalias", "value": "1\x00"},
        {"alias": "myalias", "value": 1},
        {"alias": "my/alias", "value": "1"},
        {"alias": "myalias"},
        {},
    ],
)
def test_a_bad_command_is_refused_and_sends_nothing(online, api_client, connector, body):
    response = api_client.post(
        f"/api/v1/connectors/{connector.pk}/devices/00000041/data/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert not Event.objects.filter(kind=Event.COMMAND).exists()


def test_only_the_devices_maker_may_command_it(online, other_api_client, connector):
    assert command(other_api_client, connector, "00000041", "myalias", "1").status_code == 404
    assert not Event.objects.filter(kind=Event.COMMAND).exists()


def test_a_revoked_device_gets_no_commands(online, api_client, connector):
    services.revoke_device(Device.objects.get(connector=connector, identity="00000041"))
    assert command(api_client, connector, "00000041", "myalias", "1").status_code == 409
    assert not Event.objects.filter(kind=Event.COMMAND).exists()


def test_without_the_broker_the_command_is_stored_and_the_log_says_it_was_not_published(
    online, api_client, connector, settings
):
    settings.MQTT_BROKER_URL = f"mqtt://127.0.0.1:{broker.free_port()}"
    assert command(api_client, connector, "00000041", "myalias", "3").status_code == 201
    reasons = list(
        Event.objects.filter(connector=connector, kind=Event.COMMAND).values_list(
            "reason", flat=True
        )
    )
    assert any("not published" in reason for reason in reasons)
