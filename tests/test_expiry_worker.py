"""Expiry with real processes: a Celery worker and Celery beat expire a stale entry on their own.

The processes get the test database, a one-second sweep and a broker of their
own: the filesystem broker in a temporary folder, or Redis when REDIS_URL is set.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from devices import services
from devices.models import Device, Event

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 30


def url_of_test_database() -> str:
    """A DATABASE_URL naming the database this test run created."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{db['HOST']}{port}/{db['NAME']}"


class CeleryProcesses:
    """A worker and a beat scheduler started for one test, with their logs."""

    def __init__(self, folder):
        self.folder = folder
        self.env = {
            **os.environ,
            "DATABASE_URL": url_of_test_database(),
            # Their own var/: broker folders, beat schedule, cache and key.
            "GATEHOUSE_VAR_DIR": str(folder / "var"),
            "CELERY_BROKER_URL": settings.REDIS_URL or "filesystem://",
            "EXPIRY_SWEEP_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.running = []

    def start(self, name: str, *args: str) -> None:
        log = open(self.folder / f"{name}.log", "w")  # closed in stop()
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append((name, process, log))

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.folder / f'{name}.log').read_text()[-3000:]}"
            for name, _, _ in self.running
        )

    def stop(self) -> None:
        for _, process, _ in self.running:
            if process.poll() is None:
                process.terminate()
        for _, process, log in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()


@pytest.fixture
def celery_processes(transactional_db, tmp_path):
    processes = CeleryProcesses(tmp_path)
    try:
        processes.start(
            "worker", "worker", "--pool", "solo", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--hostname", f"expiry-test-{os.getpid()}@%h",
        )  # fmt: skip
        processes.start("beat", "beat", "--loglevel", "INFO")
        yield processes
    finally:
        # Stopped before the test database is flushed or dropped.
        processes.stop()


def test_worker_and_beat_expire_an_entry_once_its_window_passes(connector, celery_processes):
    services.whitelist_device(connector, "00000001")
    services.whitelist_device(connector, "00000002")
    deadline = timezone.now() + timedelta(seconds=2)
    Device.objects.filter(identity="00000001").update(activation_expires_at=deadline)

    device = Device.objects.get(identity="00000001")
    give_up = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < give_up:
        device.refresh_from_db()
        if device.status == Device.EXPIRED and Event.objects.filter(kind=Event.EXPIRE).exists():
            break
        for name, process, _ in celery_processes.running:
            assert process.poll() is None, f"{name} exited\n{celery_processes.logs()}"
        time.sleep(0.2)
    else:
        pytest.fail(f"not expired within {WAIT_SECONDS} s\n{celery_processes.logs()}")

    event = Event.objects.get(kind=Event.EXPIRE)
    assert event.identity == "00000001"
    assert event.created_at >= deadline
    assert Device.objects.get(identity="00000002").status == Device.WHITELISTED
