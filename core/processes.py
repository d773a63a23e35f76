"""The processes Gatehouse starts for itself: the Procfile's, kept running, and the tests'.

`make run` ends in `manage.py runlocal`, which starts the Procfile's processes
(web, asgi, worker, beat, ingest, https) under a `Supervisor`; the tests and
bench/ start theirs with `start` and `stop`. Every process is started one way:
in a session of its own, so Ctrl-C reaches only the supervisor, which stops the
children in order, and what a child leaves behind is killed with its group.

The Procfile is honcho's (the Python Foreman): honcho parses it, its Popen runs
each line in a shell of the process's own session, its Printer prefixes each
line of output with the time and the process's name, and `honcho start web
worker beat` runs the same processes without this module. The shell `exec`s the
line, so the process's pid is the program's and signals reach it directly.

honcho's Manager is not used, for two reasons. It stops every process when one
exits (as Foreman does), where a laptop run should outlive a crashed worker.
And it learns of an exit only when the process's output closes, which the
orphans of a killed leader (a Celery pool, gunicorn's workers) keep open. So
`Supervisor` polls each leader; one that exited has its group killed and is
started again after a pause that doubles while it keeps exiting soon after its
start. One that exits RESTARTS_AT_START times in a row within
QUICK_EXIT_SECONDS of starting stops the whole run: it cannot start, and a
person must look.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.printer import Message, Printer
from honcho.process import Popen

BASE_DIR = Path(__file__).resolve().parent.parent
PROCFILE = BASE_DIR / "Procfile"
STOP_GRACE_SECONDS = 15
# A child that exits sooner than this after its start counts as failing to start.
QUICK_EXIT_SECONDS = 30.0
RESTARTS_AT_START = 5
RESTART_FIRST_DELAY_SECONDS = 1.0
RESTART_MAX_DELAY_SECONDS = 30.0
SUPERVISOR = "run"


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """The Procfile's commands by process name, in the file's order."""
    return dict(parse_procfile(path.read_text()).processes)


def environment(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child, with this interpreter's bin/ first on
    PATH (a Procfile's `python` is the virtualenv's) and output unbuffered."""
    env = {**os.environ, **(overrides or {})}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(command: str | list[str], *, env: dict[str, str] | None = None, output=None):
    """Start a Procfile line (a string, run by a shell that becomes it) or an argv
    list, in a session of its own, from the repository. Its output goes to
    `output` (a file), else to a pipe on `.stdout`."""
    shell = isinstance(command, str)
    return Popen(
        f"exec {command}" if shell else command,
        shell=shell,
        cwd=BASE_DIR,
        env=environment(env),
        stdin=subprocess.DEVNULL,
        stdout=output if output is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def kill_group(process: subprocess.Popen, signum: int = signal.SIGKILL) -> None:
    """Signal the process's whole session (it leads it: start() made it so)."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop(
    processes: list[subprocess.Popen],
    signum: int = signal.SIGTERM,
    grace: float = STOP_GRACE_SECONDS,
    on_timeout: Callable[[subprocess.Popen], None] | None = None,
) -> None:
    """Send `signum` to each leader (gunicorn and Celery stop their own workers
    gracefully), wait up to `grace` seconds for all, then kill each session:
    what a process left behind goes with it."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signum)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if on_timeout is not None:
                on_timeout(process)
        kill_group(process)
        process.wait()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_until_listening(process, host: str, port: int, timeout: float = 10.0) -> None:
    """Return once `host:port` accepts connections; raise if `process` exits first
    or nothing listens within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout} s")


@dataclass
class Child:
    """One supervised process: its Procfile line and its restart bookkeeping."""

    name: str
    command: str
    process: subprocess.Popen | None = field(default=None, repr=False)
    started_at: float = 0.0
    quick_exits: int = 0  # in a row, each sooner than QUICK_EXIT_SECONDS after its start
    restart_at: float | None = None


class Supervisor:
    """Runs named commands until stopped, restarting each that exits (see the module)."""

    def __init__(self, commands: dict[str, str], env: dict[str, str], output=sys.stdout):
        self.children = [Child(name, command) for name, command in commands.items()]
        self.env = env
        width = max(len(name) for name in [SUPERVISOR, *commands])
        self.printer = Printer(output, width=width)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.interrupts = 0
        self.watched: list[tuple[str, str, threading.Event]] = []

    def watch(self, name: str, text: str) -> threading.Event:
        """An event set once a line of child `name`'s output holds `text` (a sign that it
        is ready, for `run`'s `ready`)."""
        seen = threading.Event()
        self.watched.append((name, text, seen))
        return seen

    def say(self, name: str, line: str) -> None:
        for watched_name, text, seen in self.watched:
            if watched_name == name and text in line:
                seen.set()
        message = Message("line", line, datetime.now(), name, None)
        with self.lock:
            try:
                self.printer.write(message)
            except (OSError, ValueError):
                # The terminal went away (a closed pipe): keep running, and above
                # all keep stop_all() able to stop the children.
                pass

    def print_lines(self, lines: list[str]) -> None:
        """Lines without a prefix, between the children's."""
        with self.lock:
            for line in lines:
                print(line, file=self.printer.output, flush=True)

    def start(self, child: Child) -> None:
        child.started_at = time.monotonic()
        child.process = start(child.command, env=self.env)
        # The process, not the child: a restart replaces child.process.
        threading.Thread(target=self.relay, args=(child.name, child.process), daemon=True).start()

    def relay(self, name: str, process: subprocess.Popen) -> None:
        with process.stdout:
            for line in process.stdout:
                self.say(name, line.decode("utf-8", "replace").rstrip("\n"))

    def interrupt(self, signum, frame) -> None:
        """SIGINT/SIGTERM: stop everything; a second one kills everything now."""
        self.interrupts += 1
        if self.interrupts > 1:
            self.say(SUPERVISOR, "second interrupt: killing everything now")
            for child in self.children:
                if child.process is not None:
                    kill_group(child.process)
        self.stopping.set()

    def run(
        self,
        ready: Callable[[], bool] = lambda: False,
        banner: Callable[[], list[str]] = list,
        handle_signals: bool = True,
    ) -> Child | None:
        """Start every child, print `banner()` once `ready()` holds, supervise until
        SIGINT/SIGTERM (or `stopping` is set), then stop them all. Returns the child
        that kept failing at its start (the run then stopped early), else None."""
        if handle_signals:
            signal.signal(signal.SIGINT, self.interrupt)
            signal.signal(signal.SIGTERM, self.interrupt)
        failed, announced = None, False
        try:
            for child in self.children:
                self.start(child)
            while not failed and not self.stopping.wait(0.2):
                if not announced and ready():
                    announced = True
                    self.print_lines(banner())
                failed = self.supervise()
        finally:
            self.stop_all()
        return failed

    def supervise(self) -> Child | None:
        """Restart children that exited, when their pause is over. Returns a child
        that keeps failing at its start, else None."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restart_at = None
                    self.start(child)
                    self.say(SUPERVISOR, f"{child.name} restarted (pid {child.process.pid})")
                continue
            status = child.process.poll()
            if status is None:
                continue
            kill_group(child.process)  # what it left behind (a Celery pool, gunicorn workers)
            ran = now - child.started_at
            # A child that ran a while starts over with the shortest pause.
            child.quick_exits = child.quick_exits + 1 if ran < QUICK_EXIT_SECONDS else 0
            if child.quick_exits >= RESTARTS_AT_START:
                self.say(SUPERVISOR, f"{child.name} exited with status {status} again; giving up")
                return child
            delay = min(
                RESTART_MAX_DELAY_SECONDS, RESTART_FIRST_DELAY_SECONDS * 2**child.quick_exits
            )
            self.say(
                SUPERVISOR,
                f"{child.name} exited with status {status} after {ran:.0f} s; "
                f"restarting it in {delay:g} s",
            )
            child.restart_at = now + delay
        return None

    def stop_all(self) -> None:
        running = [c for c in self.children if c.process and c.process.poll() is None]
        if running:
            self.say(SUPERVISOR, "stopping " + ", ".join(c.name for c in running))
        names = {id(c.process): c.name for c in running}
        stop(
            [c.process for c in self.children if c.process is not None],
            on_timeout=lambda p: self.say(SUPERVISOR, f"{names[id(p)]} did not stop in time"),
        )
        self.say(SUPERVISOR, "stopped")
