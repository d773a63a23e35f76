"""Expiry with real processes: a Celery worker and Celery beat expire a stale entry on their own.

The processes get the test database, a one-second sweep and a private broker:
Redis when REDIS_URL is set, else the filesystem broker in the test's own folder.
"""

import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from audit.models import Event
from devices import services
from devices.models import Device
from tests.support.processes import Processes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 30


@pytest.fixture
def celery_processes(transactional_db, tmp_path):
    # Redis when the run has it, as in production; else the filesystem broker in tmp_path.
    broker = settings.REDIS_URL or "filesystem://"
    processes = Processes(tmp_path, EXPIRY_SWEEP_SECONDS="1", CELERY_BROKER_URL=broker)
    celery = [sys.executable, "-m", "celery", "-A", "portal"]
    try:
        processes.start(
            "worker",
            [
                *celery, "worker", "--pool", "solo", "--loglevel", "INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
        )  # fmt: skip
        processes.start("beat", [*celery, "beat", "--loglevel", "INFO"])
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
        celery_processes.assert_alive()
        time.sleep(0.2)
    else:
        pytest.fail(f"not expired within {WAIT_SECONDS} s\n{celery_processes.logs()}")

    event = Event.objects.get(kind=Event.EXPIRE)
    assert event.identity == "00000001"
    assert event.created_at >= deadline
    assert Device.objects.get(identity="00000002").status == Device.WHITELISTED
