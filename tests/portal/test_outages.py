"""Redis or PostgreSQL away: 503 with Retry-After in each caller's form, then recovery
with nobody's help, and every write a device was told was accepted stored.

Real processes: gunicorn and `manage.py ingest` on the test database, a
redis-server of their own that the test stops and starts, and for PostgreSQL a
forwarder in front of the test database that the test cuts and restores.
"""

import http.client
import json
import os
import signal
import sys
import time

import pytest
from django.db import connection
from django.test import override_settings

from accounts.models import ApiToken
from core import redis_scripts
from devices import services
from devices.models import DataPoint, Device
from registrations.models import Registration
from tests.support.backends import RedisServer, TcpForwarder
from tests.support.processes import Processes, free_port, url_of_test_database
from tests.support.secure_devices import REGISTRATIONS

WAIT_SECONDS = 60
TEXT = "service temporarily unavailable, retry later\n"


def call(port: int, method: str, path: str, body: str = "", headers: dict | None = None):
    """(status, headers, body text) of one request; any status, never an exception."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_SECONDS)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        conn.request(method, path, body=body.encode() or None, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def wait_until(condition, processes: Processes, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while not (result := condition()):
        processes.assert_alive()
        assert time.monotonic() < deadline, f"{what}\n{processes.logs()}"
        time.sleep(0.2)
    return result


def start_web(processes: Processes) -> int:
    port = free_port()
    processes.start(
        "web",
        [
            sys.executable, "-m", "gunicorn", "portal.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--workers", "1", "--threads", "4", "--graceful-timeout", "5",
        ],
    )  # fmt: skip
    wait_until(
        lambda: _answers(port, "/healthz") == 200, processes, "gunicorn did not become healthy"
    )
    return port


def _answers(port: int, path: str) -> int | None:
    try:
        return call(port, "GET", path)[0]
    except OSError:
        return None


def assert_device_503(answer) -> None:
    status, headers, body = answer
    assert status == 503, answer
    assert headers["Retry-After"] == "5"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == TEXT


@pytest.mark.django_db(transaction=True)
def test_a_redis_outage_answers_503_and_every_acknowledged_write_is_stored(connector, tmp_path):
    redis = RedisServer(tmp_path)
    redis.start()
    processes = Processes(
        tmp_path, REDIS_URL=redis.url, DEVICE_WRITE_QUEUE="true", INGEST_INTERVAL_MS="50"
    )
    services.whitelist_device(connector, "00000001")
    services.whitelist_device(connector, "00000002")
    device_path = f"/c/{connector.pk}"
    try:
        port = start_web(processes)
        processes.start("ingest", [sys.executable, "manage.py", "ingest"])
        status, _, token = call(port, "POST", f"{device_path}/provision/activate", "id=00000001")
        assert status == 200, token
        token_header = {"Authorization": f"Token {token.strip()}"}
        acknowledged, values = [], iter(range(1, 1_000_000))

        def write(host: str | None = None):
            value = next(values)
            headers = {**token_header, **({"Host": host} if host else {})}
            path = "/api:v1/stack/alias" if host else f"{device_path}/api:v1/stack/alias"
            answer = call(port, "POST", path, f"myalias={value}", headers)
            if answer[0] == 204:
                acknowledged.append(str(value))
            return answer

        for _ in range(20):
            assert write()[0] == 204
        redis.stop()

        for _ in range(5):
            assert_device_503(write())
        assert_device_503(write(host=f"{connector.device_host}:{port}"))
        assert_device_503(call(port, "POST", f"{device_path}/provision/activate", "id=00000002"))
        status, headers, body = call(port, "GET", "/healthz")
        assert status == 503 and json.loads(body)["checks"]["cache"] == "unavailable"
        # The ingest notices (once redis-py's own retries are spent) and waits, alive.
        wait_until(
            lambda: "Redis unavailable" in processes.log("ingest"),
            processes,
            "the ingest did not notice the outage",
        )
        redis.start()
        wait_until(lambda: write()[0] == 204, processes, "writes did not recover")
        for _ in range(20):
            assert write()[0] == 204
        assert call(port, "POST", f"{device_path}/provision/activate", "id=00000002")[0] == 200
        device = Device.objects.get(identity="00000001")

        def stored():
            return sorted(
                DataPoint.objects.filter(device=device).values_list("value", flat=True), key=int
            )

        wait_until(
            lambda: stored() == acknowledged, processes, "acknowledged writes were not stored"
        )
        # The line is logged once the first batch after the outage is stored.
        wait_until(
            lambda: "ingest: reconnected after" in processes.log("ingest"),
            processes,
            "the ingest did not say it reconnected",
        )
        wait_until(lambda: _answers(port, "/healthz") == 200, processes, "health did not recover")
        processes.assert_alive()
    finally:
        processes.stop()
        redis.stop()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_postgresql_outage_answers_503_to_every_caller_and_recovers(connector, owner, tmp_path):
    settings_dict = connection.settings_dict
    forwarder = TcpForwarder((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"])))
    forwarder.start()
    database_url = url_of_test_database().replace(
        f"@{settings_dict['HOST']}:{settings_dict['PORT']}/", f"@127.0.0.1:{forwarder.port}/"
    )
    processes = Processes(tmp_path, DATABASE_URL=database_url, DB_CONN_MAX_AGE="600")
    services.whitelist_device(connector, "00000001")
    services.whitelist_device(connector, "00000002")
    _, api_token = ApiToken.issue(owner, "outage test")
    device_path = f"/c/{connector.pk}"
    api = ("/api/v1/connectors/", "", {"Authorization": f"Bearer {api_token}"})
    # A session cookie makes the portal look the session up in the database.
    portal = ("/", "", {"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"})
    try:
        port = start_web(processes)
        status, _, token = call(port, "POST", f"{device_path}/provision/activate", "id=00000001")
        assert status == 200, token
        write = (
            f"{device_path}/api:v1/stack/alias",
            "myalias=7",
            {"Authorization": f"Token {token.strip()}"},
        )
        assert call(port, "POST", *write)[0] == 204
        assert call(port, "GET", *api)[0] == 200
        forwarder.stop()

        assert_device_503(call(port, "POST", *write))
        assert_device_503(call(port, "POST", f"{device_path}/provision/activate", "id=00000002"))
        status, headers, body = call(port, "GET", *api)
        assert (status, headers["Retry-After"]) == (503, "5")
        assert json.loads(body) == {"detail": "service temporarily unavailable, retry later"}
        status, headers, body = call(port, "GET", *portal)
        assert (status, headers["Retry-After"]) == (503, "5")
        assert "Gatehouse is temporarily unavailable" in body
        status, _, body = call(port, "GET", "/healthz")
        assert status == 503 and json.loads(body)["checks"]["database"] == "unavailable"

        forwarder.start()
        wait_until(
            lambda: call(port, "POST", *write)[0] == 204, processes, "writes did not recover"
        )
        assert call(port, "GET", *api)[0] == 200
        assert call(port, "POST", f"{device_path}/provision/activate", "id=00000002")[0] == 200
        assert call(port, "GET", *portal)[0] == 302  # to the sign-in page
        assert call(port, "GET", "/healthz")[0] == 200
        processes.assert_alive()
    finally:
        processes.stop()
        forwarder.stop()


def test_v1_1_routes_answer_their_json_envelope_while_redis_refuses_connections(
    secure_connector, secure_client
):
    # A real client against a port nothing listens on: redis-py's own ConnectionError.
    closed = {
        "default": {
            "BACKEND": "portal.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    body = {"deviceTypeId": secure_connector.pk, "vendorDeviceId": "a1b2c3d4"}
    with override_settings(CACHES=closed):
        # Lua scripts run on a connection of each thread's own, opened on first use.
        redis_scripts.close_connection()
        for host in ("localhost", secure_connector.device_host):
            response = secure_client.send_json("POST", REGISTRATIONS, body, HTTP_HOST=host)
            assert response.status_code == 503
            assert response["Retry-After"] == "5"
            assert response.json() == {"error": {"code": 503, "message": TEXT.strip()}}
        redis_scripts.close_connection()
    assert not Registration.objects.exists()
    assert secure_client.initiate(secure_connector, "a1b2c3d4").status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_ingest_waits_out_a_postgresql_outage_and_stores_what_was_queued(connector, tmp_path):
    settings_dict = connection.settings_dict
    forwarder = TcpForwarder((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"])))
    forwarder.start()
    redis = RedisServer(tmp_path)
    redis.start()
    processes = Processes(
        tmp_path,
        DATABASE_URL=url_of_test_database().replace(
            f"@{settings_dict['HOST']}:{settings_dict['PORT']}/", f"@127.0.0.1:{forwarder.port}/"
        ),
        REDIS_URL=redis.url,
        DEVICE_WRITE_QUEUE="true",
        INGEST_INTERVAL_MS="50",
    )
    services.whitelist_device(connector, "00000001")
    device_path = f"/c/{connector.pk}"
    try:
        port = start_web(processes)
        processes.start("ingest", [sys.executable, "manage.py", "ingest"])
        status, _, token = call(port, "POST", f"{device_path}/provision/activate", "id=00000001")
        assert status == 200, token
        acknowledged = []
        for value in range(1, 41):
            answer = call(
                port,
                "POST",
                f"{device_path}/api:v1/stack/alias",
                f"myalias={value}",
                {"Authorization": f"Token {token.strip()}"},
            )
            # Queued writes need only Redis: the outage below does not refuse them.
            assert answer[0] == 204, answer
            acknowledged.append(str(value))
            if value == 10:
                forwarder.stop()
        wait_until(
            lambda: "the database unavailable" in processes.log("ingest"),
            processes,
            "the ingest did not notice the outage",
        )
        forwarder.start()
        device = Device.objects.get(identity="00000001")
        wait_until(
            lambda: (
                sorted(
                    DataPoint.objects.filter(device=device).values_list("value", flat=True), key=int
                )
                == acknowledged
            ),
            processes,
            "acknowledged writes were not stored",
        )
        # The line is logged once the first batch after the outage is stored.
        wait_until(
            lambda: "ingest: reconnected after" in processes.log("ingest"),
            processes,
            "the ingest did not say it reconnected",
        )
        processes.assert_alive()
    finally:
        processes.stop()
        redis.stop()
        forwarder.stop()


@pytest.mark.django_db(transaction=True)
def test_an_ingest_killed_while_writes_flow_loses_and_repeats_none(connector, tmp_path):
    redis = RedisServer(tmp_path)
    redis.start()
    processes = Processes(
        tmp_path,
        REDIS_URL=redis.url,
        DEVICE_WRITE_QUEUE="true",
        INGEST_INTERVAL_MS="0",
        INGEST_BATCH_SIZE="5",
        INGEST_CLAIM_SECONDS="1",
    )
    services.whitelist_device(connector, "00000001")
    device_path = f"/c/{connector.pk}"
    try:
        port = start_web(processes)
        first = processes.start("ingest", [sys.executable, "manage.py", "ingest"])
        status, _, token = call(port, "POST", f"{device_path}/provision/activate", "id=00000001")
        assert status == 200, token
        headers = {"Authorization": f"Token {token.strip()}"}
        device = Device.objects.get(identity="00000001")
        acknowledged = []
        for value in range(1, 201):
            answer = call(port, "POST", f"{device_path}/api:v1/stack/alias", f"myalias={value}",
                          headers)  # fmt: skip
            assert answer[0] == 204, answer
            acknowledged.append(str(value))
            if value == 100:
                # Killed in the middle of its work: a batch half stored, or stored
                # and not yet acknowledged, or taken and not yet stored.
                wait_until(
                    lambda: DataPoint.objects.filter(device=device).exists(),
                    processes,
                    "the ingest stored nothing",
                )
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
                for entry in [entry for entry in processes.running if entry[1] is first]:
                    processes.running.remove(entry)
                    entry[2].close()
        # A second ingest claims what the first left pending.
        processes.start("ingest-2", [sys.executable, "manage.py", "ingest"])
        wait_until(
            lambda: (
                sorted(
                    DataPoint.objects.filter(device=device).values_list("value", flat=True), key=int
                )
                == acknowledged
            ),
            processes,
            "acknowledged writes were not stored exactly once",
        )
        processes.assert_alive()
    finally:
        processes.stop()
        redis.stop()
