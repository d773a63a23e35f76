"""One path per device write: the device is loaded at most once per request, and a
write under a credential this process remembers asks the database nothing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices import services
from devices.models import Device
from devices.services import write_queue
from tests.support.clients import DeviceClient, basic

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _queued(settings):
    settings.DEVICE_WRITE_QUEUE = True
    write_queue.forget_all()
    yield
    write_queue.forget_all()


def device_loads(client, authorization) -> int:
    """Statements reading the devices table while one write is answered."""
    with CaptureQueriesContext(connection) as queries:
        assert client.write("myalias=1", authorization).status_code == 204
    table = Device._meta.db_table
    return sum(
        1
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith("SELECT") and table in query["sql"]
    )


def test_token_writes_load_the_device_once_then_never(connector):
    services.whitelist_device(connector, "00000001")
    client = DeviceClient(connector)
    authorization = "Token " + client.activate("00000001").content.decode()
    assert [device_loads(client, authorization) for _ in range(4)] == [1, 1, 0, 0]


def test_password_writes_load_the_device_once_then_never(make_connector):
    connector = make_connector(
        auth_mode="password", identity_type="base10", identity_length=8,
        _resources={"myalias": "number"},
    )  # fmt: skip
    services.whitelist_device(connector, "00000001")
    client = DeviceClient(connector)
    assert client.activate("00000001", PASSWORD).status_code == 204
    authorization = basic("00000001", PASSWORD)
    loads = [device_loads(client, authorization) for _ in range(4)]
    # The first also looks the identity up for the slow hash.
    assert loads[1:] == [1, 0, 0] and loads[0] <= 2


def test_a_reset_between_the_two_loads_is_not_remembered(connector):
    services.whitelist_device(connector, "00000001")
    client = DeviceClient(connector)
    authorization = "Token " + client.activate("00000001").content.decode()
    assert client.write("myalias=1", authorization).status_code == 204
    services.reset_device(Device.objects.get(identity="00000001"))
    assert client.write("myalias=2", authorization).status_code == 401
    assert not write_queue.remembers(services.token_key(connector.pk, authorization[6:]))
