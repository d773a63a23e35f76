"""Simultaneous activations of one identity ("never a second credential") on PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from audit.models import Event
from devices import services
from devices.models import Credential, Device
from tests.support.clients import DeviceClient

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CALLERS = 8
PASSWORD = "correct-horse-battery-staple"


def activate_all_at_once(connector, identity, password=None) -> list[tuple[int, str]]:
    """CALLERS threads, each with its own client and connection, released together."""
    barrier = threading.Barrier(CALLERS)

    def activate():
        client = DeviceClient(connector)
        try:
            barrier.wait(timeout=60)
            response = client.activate(identity, password)
            return response.status_code, response.content.decode()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        futures = [pool.submit(activate) for _ in range(CALLERS)]
        return [future.result(timeout=60) for future in futures]


def test_simultaneous_token_activations_issue_exactly_one_token(connector):
    services.whitelist_device(connector, "00000001")

    results = activate_all_at_once(connector, "00000001")

    assert sorted(status for status, _ in results) == [200] + [409] * (CALLERS - 1)
    token = next(body for status, body in results if status == 200)
    assert len(token) == 40
    credential = Credential.objects.get()
    assert credential.token_hash == services.hash_token(token)
    assert Device.objects.get().status == Device.PROVISIONED
    assert Event.objects.filter(kind=Event.PROVISION).count() == 1
    assert Event.objects.filter(kind=Event.PROVISION_FAILED).count() == CALLERS - 1


def test_simultaneous_password_activations_store_exactly_one_password(make_connector):
    connector = make_connector(auth_mode="password")
    services.whitelist_device(connector, "dev-1")

    results = activate_all_at_once(connector, "dev-1", PASSWORD)

    assert sorted(status for status, _ in results) == [204] + [409] * (CALLERS - 1)
    assert Credential.objects.count() == 1
    assert Event.objects.filter(kind=Event.PROVISION).count() == 1
