"""A worker process killed in the middle of an import: the broker hands the task out again.

A real prefork worker runs the import, whose upload is at first a named pipe:
its pool process blocks reading it, and is then killed with SIGKILL. The task
was acknowledged late, so the worker's main process hands it back to the broker
and the next pool process takes the import over and finishes it, once.
"""

import errno
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from audit.models import Event
from devices import tasks
from devices.models import Device, WhitelistImport
from tests.support.processes import CeleryWorker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 60
CSV = "ID,TLS Client Certificate,Tags\n" + "".join(f"{n:08d},,\n" for n in range(1, 6))


@pytest.fixture
def prefork_worker(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    worker = CeleryWorker(tmp_path)
    try:
        # One pool process under a main process that sees it die.
        worker._publish_to_private_broker()
        worker.processes.start(
            "worker",
            [
                sys.executable, "-m", "celery", "-A", "portal", "worker",
                "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--hostname", f"test-import-worker-{os.getpid()}@%h",
            ],
        )  # fmt: skip
        worker.wait_until_ready()
        yield worker
    finally:
        worker.stop()


def pool_processes(pid: int) -> list[int]:
    """The pids whose parent is `pid`."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def wait_for_a_reader(pipe: Path, worker) -> int:
    """Open the pipe's writing end once the import opened it to read; the reader then waits."""
    give_up = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            return os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: nobody reads it yet
                raise
        worker.assert_alive()
        assert time.monotonic() < give_up, f"the import never read its upload\n{worker.logs()}"
        time.sleep(0.05)


def test_an_import_whose_pool_process_is_killed_is_run_again_and_ends_once(
    connector, prefork_worker
):
    record = WhitelistImport(connector=connector)
    record.file.name = f"imports/{connector.pk}-pipe.csv"
    upload = Path(settings.MEDIA_ROOT) / record.file.name
    upload.parent.mkdir(parents=True)
    os.mkfifo(upload)
    record.save()

    tasks.run_whitelist_import.delay(record.pk)
    writer = wait_for_a_reader(upload, prefork_worker)
    try:
        # The pool process is inside the import, reading. The next run will
        # find the real file; the one reading keeps the pipe it opened.
        record.refresh_from_db()
        assert (record.status, record.attempts) == ("running", 1)
        replacement = upload.with_suffix(".tmp")
        replacement.write_text(CSV)
        os.replace(replacement, upload)
        (main,) = [process for name, process, _ in prefork_worker.processes.running]
        (pool,) = pool_processes(main.pid)
        os.kill(pool, signal.SIGKILL)
    finally:
        os.close(writer)

    give_up = time.monotonic() + WAIT_SECONDS
    while record.status == WhitelistImport.RUNNING or record.status == WhitelistImport.PENDING:
        prefork_worker.assert_alive()
        assert time.monotonic() < give_up, f"the import did not end\n{prefork_worker.logs()}"
        time.sleep(0.1)
        record.refresh_from_db()
    assert (record.status, record.attempts, record.created) == ("done", 2, 5)
    assert Device.objects.filter(connector=connector).count() == 5
    assert Event.objects.filter(kind=Event.IMPORT).count() == 1
    assert not upload.exists()
