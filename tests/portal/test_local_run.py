"""`make run`: the first administrator, and the local runner that starts and stops everything."""

import queue
import re
import signal
import ssl
import sys
import time
from io import StringIO
from pathlib import Path
from urllib.error import URLError
from urllib.request import Request, urlopen

import paho.mqtt.client as paho
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from devices import services
from devices.models import Device
from mqtt import topics
from mqtt.management.commands import mqtt_ingest
from tests.support.processes import Processes, free_port

# Generous limits: they only end a test that is broken, never one on a busy machine
# (a first request may wait out SQLite's lock timeout while the worker migrates its tables).
START_SECONDS = 180
REQUEST_SECONDS = 120


def run_ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_ensure_admin_creates_a_superuser_once_and_prints_its_password_once():
    first = run_ensure_admin()
    password = re.search(r"with password: (\S+)", first).group(1)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(password)
    assert password not in admin.password

    second = run_ensure_admin()
    assert password not in second
    assert "manage.py changepassword admin" in second
    assert get_user_model().objects.count() == 1


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def publish_over_mqtt(processes, port, username, password, topic, value, give_up):
    """Connect over TLS as a device until the broker accepts it, then publish one value
    (QoS 1, acknowledged); the broker's answer to that connection."""
    server_ca = processes.var / "mqtt" / "tls" / "server-ca.pem"
    while True:
        answers = queue.Queue()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="local-run-device")
        client.username_pw_set(username, password)
        client.on_connect = lambda client, userdata, flags, reason, properties: answers.put(reason)
        reason = None
        try:
            client.tls_set(ca_certs=str(server_ca), cert_reqs=ssl.CERT_REQUIRED)
            client.connect("localhost", port)
        except OSError:
            pass  # not listening yet, or its certificate not written yet
        else:
            client.loop_start()
            try:
                reason = answers.get(timeout=REQUEST_SECONDS)
                if not reason.is_failure:
                    client.publish(topic, value, qos=1).wait_for_publish(REQUEST_SECONDS)
                    return reason
            finally:
                client.disconnect()
                client.loop_stop()
        # Refused until the sync has sent the device's broker client.
        processes.assert_alive()
        assert time.monotonic() < give_up, (reason, processes.logs())
        time.sleep(0.5)


def post_form(url: str, body: str, host: str | None = None):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if host:
        headers["Host"] = host
    return urlopen(Request(url, data=body.encode(), headers=headers), timeout=REQUEST_SECONDS)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_local_run_serves_devices_and_ctrl_c_stops_every_process(connector, tmp_path):
    services.whitelist_device(connector, "00000001")
    services.whitelist_device(connector, "00000002")
    port, asgi_port, mqtt_port = free_port(), free_port(), free_port()
    processes = Processes(tmp_path)
    runner = processes.start(
        "runlocal",
        [
            sys.executable, "manage.py", "runlocal", "--port", str(port),
            "--web-workers", "1", "--threads", "2", "--worker-concurrency", "1",
            "--asgi-port", str(asgi_port), "--https-port", "0",
            "--mqtt-port", str(mqtt_port), "--mqtt-cert-port", "0",
        ],
    )  # fmt: skip
    try:
        give_up = time.monotonic() + START_SECONDS
        while "Gatehouse is running." not in processes.log("runlocal"):
            processes.assert_alive()
            assert time.monotonic() < give_up, processes.logs()
            time.sleep(0.2)
        # The banner waited for the ingest: what the device publishes below is stored.
        assert mqtt_ingest.SUBSCRIBED in processes.log("runlocal")
        give_up = time.monotonic() + START_SECONDS
        # Both ways of naming the connector reach the same device API.
        by_path = post_form(
            f"http://127.0.0.1:{port}/c/{connector.pk}/provision/activate", "id=00000001"
        )
        by_host = post_form(
            f"http://127.0.0.1:{port}/provision/activate",
            "id=00000002",
            host=f"{connector.device_host}:{port}",
        )
        assert by_path.status == by_host.status == 200
        token = by_path.read().decode()
        assert len(token) == len(by_host.read()) == 40
        assert Device.objects.filter(status=Device.PROVISIONED).count() == 2
        # The broker: the device logs in with its token once the sync has sent it, and
        # what it publishes is stored by the ingest and read back over HTTP.
        published = publish_over_mqtt(
            processes, mqtt_port, topics.username(connector.pk, "00000001"), token,
            f"{topics.namespace(connector.pk, '00000001')}/resource/myalias", "42", give_up,
        )  # fmt: skip
        assert not published.is_failure
        while True:
            read = urlopen(
                Request(
                    f"http://127.0.0.1:{port}/c/{connector.pk}/onep:v1/stack/alias?myalias",
                    headers={"X-Exosite-CIK": token},
                ),
                timeout=REQUEST_SECONDS,
            )
            if read.read() == b"myalias=42":
                break
            processes.assert_alive()
            assert time.monotonic() < give_up, processes.logs()
            time.sleep(0.2)
        # The ASGI server (WebSockets) serves plain HTTP too; it may still be starting.
        while True:
            try:
                asgi = urlopen(f"http://127.0.0.1:{asgi_port}/timestamp", timeout=REQUEST_SECONDS)
                break
            except URLError:
                processes.assert_alive()
                assert time.monotonic() < give_up, processes.logs()
                time.sleep(0.2)
        assert asgi.status == 200
        children = descendants(runner.pid)
        # gunicorn, the Celery worker and beat, the broker, its sync and ingest, and the
        # processes they started.
        assert len(children) >= 6, processes.logs()
    finally:
        processes.stop(signal.SIGINT)

    assert runner.returncode == 0, processes.logs()
    assert [pid for pid in children if is_alive(pid)] == []
    assert re.search(r"run +\| stopped$", processes.log("runlocal").rstrip())
