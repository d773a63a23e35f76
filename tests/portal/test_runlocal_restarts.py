"""`make run` keeps running when one of its processes dies: the runner starts it again."""

import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import pytest

from core.processes import RESTARTS_AT_START
from tests.support.processes import Processes, free_port

WAIT_SECONDS = 90


def children_of(pid: int) -> dict[int, str]:
    """Direct children of `pid` and their command lines, from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_text()
        except (OSError, ValueError, IndexError):
            continue
    return found


def celery_worker_of(runner_pid: int) -> int | None:
    return next(
        (
            pid
            for pid, cmdline in children_of(runner_pid).items()
            if "celery" in cmdline and "\0worker\0" in cmdline
        ),
        None,
    )


def wait_for(condition, processes: Processes, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while not (result := condition()):
        processes.assert_alive()
        assert time.monotonic() < deadline, f"{what}\n{processes.logs()}"
        time.sleep(0.2)
    return result


def answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=WAIT_SECONDS) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_is_restarted_and_the_web_keeps_answering(tmp_path):
    port = free_port()
    processes = Processes(tmp_path)
    runner = processes.start(
        "runlocal",
        [
            sys.executable, "manage.py", "runlocal", "--port", str(port),
            "--web-workers", "1", "--threads", "2", "--worker-concurrency", "1",
            "--asgi-port", "0", "--https-port", "0", "--mqtt-port", "0",
        ],
    )  # fmt: skip
    try:
        wait_for(
            lambda: "Gatehouse is running." in processes.log("runlocal"),
            processes,
            "runlocal did not start",
        )
        first = wait_for(lambda: celery_worker_of(runner.pid), processes, "no worker")
        os.kill(first, signal.SIGKILL)  # a crash, as the out-of-memory killer would do it
        second = wait_for(
            lambda: (pid := celery_worker_of(runner.pid)) not in (None, first) and pid,
            processes,
            "the worker was not restarted",
        )
        log = processes.log("runlocal")
        assert "worker exited with status -9" in log
        assert f"worker restarted (pid {second})" in log
        assert answers(f"http://127.0.0.1:{port}/timestamp")
        wait_for(
            lambda: " ready." in processes.log("runlocal").split(f"pid {second}")[-1],
            processes,
            "the new worker did not become ready",
        )
        assert runner.poll() is None
    finally:
        processes.stop(signal.SIGINT)
    assert runner.returncode == 0, processes.logs()
    assert re.search(r"run +\| stopped$", processes.log("runlocal").rstrip())


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_process_that_cannot_start_stops_the_run_after_a_few_tries(tmp_path):
    # The WebSocket server's port is taken, so uvicorn exits at every start.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        processes = Processes(tmp_path)
        runner = processes.start(
            "runlocal",
            [
                sys.executable, "manage.py", "runlocal", "--port", str(free_port()),
                "--web-workers", "1", "--threads", "2", "--worker-concurrency", "1",
                "--asgi-port", str(taken.getsockname()[1]), "--https-port", "0",
            ],
        )  # fmt: skip
        try:
            runner.wait(timeout=WAIT_SECONDS * 2)
        finally:
            processes.stop(signal.SIGINT)
    log = processes.log("runlocal")
    assert runner.returncode != 0, log
    assert log.count("asgi exited with status ") == RESTARTS_AT_START, log
    assert log.count("asgi restarted") == RESTARTS_AT_START - 1
    assert "asgi exited 5 times within 30 s of starting" in log
    assert re.search(r"run +\| stopped$", log, re.MULTILINE)
