"""Real processes for tests: subprocesses on the test database, and a Celery worker fixture.

`Processes` starts commands through core.processes, as `make run` starts its
own, that see the test database (the SQLite test database is a file, see
settings) and the uploaded files, each with a var/ folder of its own, so
their filesystem broker, cache and beat schedule are private to the test.
`celery_worker` is a running worker whose broker this test process also
publishes to, so the tasks a test (or its live server) sends reach that
worker and no other process on the machine.
"""

import os
import signal
import sys
import time
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from core import processes
from core.processes import free_port  # noqa: F401  (the tests' one way to a free port)
from portal.celery import app

# Generous: they only end a test whose processes are broken, not one on a busy machine.
STOP_SECONDS = 60
READY_SECONDS = 120


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


class Processes:
    """Subprocesses started for one test, each with its log file under `folder`."""

    def __init__(self, folder, **environment):
        self.folder = folder
        self.var = folder / "var"
        self.env = {
            **os.environ,
            "DATABASE_URL": url_of_test_database(),
            # Their own var/: filesystem broker folders, beat schedule and cache.
            "GATEHOUSE_VAR_DIR": str(self.var),
            # The test process's keys: what it signs or seals, they can read.
            "SECRET_KEY": settings.SECRET_KEY,
            "CA_KEY_ENCRYPTION_KEY": settings.CA_KEY_ENCRYPTION_KEY,
            # Uploaded files (CSV imports) are shared with the test process.
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CELERY_BROKER_URL": "filesystem://",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **environment,
        }
        self.running: list[tuple[str, object, object]] = []
        # What portal.setup_local makes in a laptop's var/ (kombu makes only "control").
        for folder in ("static", "broker/queue", "broker/processed"):
            (self.var / folder).mkdir(parents=True, exist_ok=True)

    def start(self, name: str, command: list[str] | str):
        """Start an argv list, or a line of the Procfile (`processes.procfile()[name]`)."""
        log = open(self.folder / f"{name}.log", "w")  # closed in stop()
        process = processes.start(command, env=self.env, output=log)
        self.running.append((name, process, log))
        return process

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name)[-3000:]}" for name, _, _ in self.running)

    def assert_alive(self) -> None:
        for name, process, _ in self.running:
            assert process.poll() is None, f"{name} exited\n{self.logs()}"

    def stop(self, signum: int = signal.SIGTERM) -> None:
        processes.stop([process for _, process, _ in self.running], signum, STOP_SECONDS)
        for _, _, log in self.running:
            log.close()


class CeleryWorker:
    """A `celery worker` subprocess, with this process publishing to its private broker."""

    def __init__(self, folder, **environment):
        self.processes = Processes(folder, **environment)
        broker = self.processes.var / "broker"
        self.queue = broker / "queue"
        self.processed = broker / "processed"
        self._saved = None

    def start(self) -> None:
        for path in (self.queue, self.processed):
            path.mkdir(parents=True, exist_ok=True)
        self._publish_to_private_broker()
        self.processes.start(
            "worker",
            [
                sys.executable, "-m", "celery", "-A", "portal", "worker",
                "--pool", "solo", "--loglevel", "INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--hostname", f"test-worker-{os.getpid()}@%h",
            ],
        )  # fmt: skip

    def wait_until_ready(self, timeout: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.processes.log("worker"):
            self.processes.assert_alive()
            assert time.monotonic() < deadline, f"worker not ready\n{self.processes.logs()}"
            time.sleep(0.1)

    def assert_alive(self) -> None:
        self.processes.assert_alive()

    def logs(self) -> str:
        return self.processes.logs()

    def stop(self) -> None:
        self.processes.stop()
        if self._saved is not None:
            app.conf.broker_url, app.conf.broker_transport_options = self._saved
            self._close_producer_pool()

    def _publish_to_private_broker(self) -> None:
        self._saved = (app.conf.broker_url, app.conf.broker_transport_options)
        app.conf.broker_url = "filesystem://"
        app.conf.broker_transport_options = {
            "data_folder_in": str(self.queue),
            "data_folder_out": str(self.queue),
            "processed_folder": str(self.processed),
            # Broadcast exchanges; kombu's default is ./control in the working directory.
            "control_folder": str(self.processed.parent / "control"),
            "store_processed": False,
        }
        self._close_producer_pool()

    @staticmethod
    def _close_producer_pool() -> None:
        # Connections opened for the previous broker would keep publishing there.
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None
        # Celery's producer pool wraps the connection pool just closed.
        app.amqp._producer_pool = None


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A running Celery worker on the test database; stopped before the database is flushed."""
    worker = CeleryWorker(tmp_path)
    try:
        worker.start()
        worker.wait_until_ready()
        yield worker
    finally:
        worker.stop()
