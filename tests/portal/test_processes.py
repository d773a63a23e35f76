"""core.processes: the supervisor make run starts the Procfile with, on small stand-in programs."""

import io
import re
import signal
import sys
import threading
import time
from pathlib import Path

from core import processes

WAIT_SECONDS = 60
# A program that starts a child of its own (as gunicorn and Celery do) and sleeps.
PARENT_OF_ONE = (
    f'{sys.executable} -c "import subprocess, sys, time; '
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "print('child', child.pid, flush=True); time.sleep(600)\""
)

# A program that says it is ready a moment after it starts.
SLOW_TO_START = (
    f'{sys.executable} -c "import time; time.sleep(1); '
    "print('slow: ready now', flush=True); time.sleep(600)\""
)


def wait_for(condition, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while not (result := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return result


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def supervise(commands: dict[str, str]):
    output = io.StringIO()
    supervisor = processes.Supervisor(commands, {}, output=output)
    outcome = []
    thread = threading.Thread(
        target=lambda: outcome.append(supervisor.run(handle_signals=False)), daemon=True
    )
    thread.start()
    return supervisor, output, thread, outcome


def test_the_procfile_names_every_process_make_run_starts():
    assert set(processes.procfile()) == {
        *("web", "asgi", "worker", "beat", "ingest", "https"),
        *("mqtt", "mqtt_sync", "mqtt_ingest", "mqtt_presence"),
    }


def test_a_killed_process_is_started_again_and_what_it_left_behind_is_killed():
    supervisor, output, thread, outcome = supervise({"parent": PARENT_OF_ONE, "quiet": "sleep 600"})
    try:
        first = wait_for(lambda: supervisor.children[0].process, "not started")
        orphan = int(wait_for(lambda: re.search(r"child (\d+)", output.getvalue()), "no child")[1])
        first.send_signal(signal.SIGKILL)  # a crash, as the out-of-memory killer would do it
        # The new process is in place a moment before the line that says so is written.
        wait_for(
            lambda: (
                (p := supervisor.children[0].process) is not first
                and f"parent restarted (pid {p.pid})" in output.getvalue()
                and p
            ),
            "not restarted",
        )
        assert "parent exited with status -9" in output.getvalue()
        assert not is_alive(orphan)  # its child went with it, not left holding the output
        assert supervisor.children[1].process.poll() is None  # the others ran on
    finally:
        supervisor.stopping.set()
        thread.join(WAIT_SECONDS)
    assert outcome == [None]
    assert all(child.process.poll() is not None for child in supervisor.children)
    assert re.search(r"run +\| stopped$", output.getvalue().rstrip())


def test_a_process_that_keeps_failing_at_its_start_stops_the_run(monkeypatch):
    monkeypatch.setattr(processes, "RESTART_FIRST_DELAY_SECONDS", 0.01)
    supervisor, output, thread, outcome = supervise({"broken": "false", "quiet": "sleep 600"})
    thread.join(WAIT_SECONDS)
    assert outcome and outcome[0].name == "broken"
    log = output.getvalue()
    assert log.count("broken exited with status 1") == processes.RESTARTS_AT_START
    assert log.count("broken restarted") == processes.RESTARTS_AT_START - 1
    assert supervisor.children[1].process.poll() is not None  # the others were stopped


def test_the_banner_waits_for_a_watched_line():
    output = io.StringIO()
    supervisor = processes.Supervisor(
        {"slow": SLOW_TO_START, "quick": "sleep 600"},
        {},
        output=output,
    )
    ready = supervisor.watch("slow", "ready now")
    unrelated = supervisor.watch("quick", "ready now")
    thread = threading.Thread(
        target=supervisor.run,
        kwargs={"ready": ready.is_set, "banner": lambda: ["BANNER"], "handle_signals": False},
        daemon=True,
    )
    thread.start()
    try:
        wait_for(lambda: "BANNER" in output.getvalue(), "no banner")
        text = output.getvalue()
        assert text.index("slow: ready now") < text.index("BANNER")
        assert not unrelated.is_set()
    finally:
        supervisor.stopping.set()
        thread.join(WAIT_SECONDS)
