"""The PostgreSQL backend (portal/db/postgresql): its health check costs no round
trip while the connection is fine and gives a fresh connection once the server
ended the session; statements executed with prepare=True are prepared."""

import time

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from tests.support.clients import DeviceClient

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _server_ends_the_session() -> None:
    backend = connection.connection.info.backend_pid
    settings = connection.get_connection_params()
    with psycopg.connect(
        **{k: v for k, v in settings.items() if k not in ("context", "cursor_factory")},
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])
    time.sleep(0.2)


def test_a_live_connection_is_usable_without_a_query():
    connection.ensure_connection()
    with CaptureQueriesContext(connection) as queries:
        assert connection.is_usable()
    assert len(queries) == 0


def test_a_session_the_server_ended_is_not_usable():
    connection.ensure_connection()
    _server_ends_the_session()
    assert not connection.is_usable()
    connection.close()


def test_requests_after_the_server_ended_the_session_still_succeed(connector, whitelist):
    whitelist(connector, "00000001")
    connection.ensure_connection()
    _server_ends_the_session()
    # What the WSGI handler does at the start of each request (the test client
    # leaves it out).
    close_old_connections()
    response = DeviceClient(connector).activate("00000001")
    assert response.status_code == 200


def test_token_activation_runs_a_statement_prepared_once_per_connection(connector, whitelist):
    # Django turns psycopg's preparation off; the backend lets prepare=True through.
    for identity in ("00000001", "00000002", "00000003"):
        whitelist(connector, identity)
        assert DeviceClient(connector).activate(identity).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            ["%WITH claimed AS%"],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1
    assert rows[0][0] == 3


def test_django_statements_are_not_prepared(connector):
    connection.ensure_connection()
    for _ in range(10):
        list(type(connector).objects.filter(pk=connector.pk))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize("address", ["192.0.2.7", "2001:db8::5"])
def test_token_activation_records_the_source_address(connector, whitelist, address):
    from audit.models import Event
    from devices.models import Device

    whitelist(connector, "00000001")
    response = DeviceClient(connector).activate("00000001", REMOTE_ADDR=address)
    assert response.status_code == 200
    device = Device.objects.get(connector=connector, identity="00000001")
    assert device.status == Device.PROVISIONED and device.last_ip == address
    event = Event.objects.get(connector=connector, identity="00000001", kind=Event.PROVISION)
    assert str(event.source_ip) == address
    assert event.created_at == device.provisioned_at
