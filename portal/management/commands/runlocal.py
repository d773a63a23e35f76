"""Run a whole Gatehouse on one machine until Ctrl-C: web server, Celery worker, Celery beat
(and the ingest, with DEVICE_WRITE_QUEUE).

`make run` migrates, collects static files and creates the first administrator,
then calls this. Each child runs in its own session so that Ctrl-C reaches only
this command, which then stops the children in order and waits for them.

A child that exits is started again, after a pause that doubles while it keeps
exiting soon after its start; one that exits RESTARTS_AT_START times in a row
within QUICK_EXIT_SECONDS of starting stops the whole run with an error (it
cannot start; a person must look).
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from certificates import devproxy
from portal import setup_local

STOP_GRACE_SECONDS = 15
# A child that exits sooner than this after its start counts as failing to start.
QUICK_EXIT_SECONDS = 30.0
RESTARTS_AT_START = 5
RESTART_FIRST_DELAY_SECONDS = 1.0
RESTART_MAX_DELAY_SECONDS = 30.0


@dataclass
class Child:
    """One long-running process of the local deployment and its output prefix."""

    name: str
    argv: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)
    started_at: float = 0.0
    quick_exits: int = 0  # in a row, each sooner than QUICK_EXIT_SECONDS after its start
    restart_at: float | None = None


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and Celery beat together; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address the web server binds")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=3, help="gunicorn processes")
        parser.add_argument("--threads", type=int, default=8, help="threads per web process")
        parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery processes")
        parser.add_argument(
            "--asgi-port", type=int, default=8001, help="WebSocket (ASGI) server port; 0: none"
        )
        parser.add_argument(
            "--https-port", type=int, default=8443, help="nginx with client certificates; 0: off"
        )

    def children(self, options) -> list[Child]:
        python = sys.executable
        children = [
            Child(
                "web",
                [
                    python, "-m", "gunicorn", "portal.wsgi:application",
                    "--bind", f"{options['host']}:{options['port']}",
                    "--worker-class", "gthread",
                    "--workers", str(options["web_workers"]),
                    "--threads", str(options["threads"]),
                    "--graceful-timeout", "10",
                    "--access-logfile", "-",
                    "--no-control-socket",
                ],
            ),
            Child(
                "worker",
                [
                    python, "-m", "celery", "-A", "portal", "worker",
                    "--loglevel", "INFO",
                    "--concurrency", str(options["worker_concurrency"]),
                ],
            ),
            # Exactly one scheduler per deployment, however many workers there are.
            Child("beat", [python, "-m", "celery", "-A", "portal", "beat", "--loglevel", "INFO"]),
        ]  # fmt: skip
        if settings.DEVICE_WRITE_QUEUE:
            # Stores the device writes the web processes queue in Redis.
            children.append(Child("ingest", [python, "manage.py", "ingest"]))
        if options["asgi_port"]:
            # WebSockets (/v1.1/websocket) need ASGI. The client address stays the
            # proxy's, so portal.net believes the proxy's certificate header as for HTTP.
            asgi = [
                python, "-m", "uvicorn", "portal.asgi:application",
                "--host", options["host"], "--port", str(options["asgi_port"]),
                "--ws", "wsproto", "--lifespan", "off", "--no-proxy-headers",
            ]  # fmt: skip
            children.append(Child("asgi", asgi))
        # The HTTPS front end: nginx with client certificates on a second port, when installed.
        self.proxy = None
        if options["https_port"]:
            self.proxy = devproxy.local_front_end(
                settings.VAR_DIR,
                port=options["https_port"],
                upstream=f"{options['host']}:{options['port']}",
                device_domain=settings.DEVICE_DOMAIN,
                # PROXY_SHARED_SECRET, else the one portal.setup_local made in var/.
                proxy_secret=setup_local.read_key(
                    setup_local.read_env(), settings.VAR_DIR, "PROXY_SHARED_SECRET"
                ),
                websocket_upstream=(
                    f"{options['host']}:{options['asgi_port']}" if options["asgi_port"] else None
                ),
            )
        if self.proxy is not None:
            # The web processes believe the certificate header only with nginx's secret.
            os.environ["PROXY_SHARED_SECRET"] = self.proxy.proxy_secret
            children.append(Child("https", self.proxy.argv))
        return children

    def handle(self, *args, **options):
        self.output_lock = threading.Lock()
        # make run prepared them; a runner started by hand on a fresh var/ needs them too.
        setup_local.create_folders()
        children = self.children(options)
        stop = threading.Event()
        interrupts = []

        def on_signal(signum, frame):
            interrupts.append(signum)
            if len(interrupts) > 1:
                self.say("run", "second interrupt: killing everything now")
                self.kill_all(children, signal.SIGKILL)
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        failed = None
        try:
            for child in children:
                self.start(child)
            if self.wait_for_port(options["host"], options["port"], children, stop):
                self.banner(options)
            while not stop.wait(0.5) and not failed:
                failed = self.supervise(children)
        finally:
            self.stop_all(children)
        if failed:
            raise CommandError(
                f"{failed.name} exited {failed.quick_exits} times within {QUICK_EXIT_SECONDS:g} s "
                f"of starting (last status {failed.process.returncode}); stopped the others"
            )

    def supervise(self, children: list[Child]) -> Child | None:
        """Restart children that exited, when their pause is over. Returns a child
        that keeps failing at start (the run then stops), else None."""
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restart_at = None
                    self.start(child)
                    self.say("run", f"{child.name} restarted (pid {child.process.pid})")
                continue
            status = child.process.poll()
            if status is None:
                continue
            # What the child left behind (a Celery pool, gunicorn workers) goes with it.
            self.kill_group(child)
            ran = now - child.started_at
            # A child that ran a while starts over with the shortest pause.
            child.quick_exits = child.quick_exits + 1 if ran < QUICK_EXIT_SECONDS else 0
            if child.quick_exits >= RESTARTS_AT_START:
                self.say("run", f"{child.name} exited with status {status} again; giving up")
                return child
            delay = min(
                RESTART_MAX_DELAY_SECONDS, RESTART_FIRST_DELAY_SECONDS * 2**child.quick_exits
            )
            self.say(
                "run",
                f"{child.name} exited with status {status} after {ran:.0f} s; "
                f"restarting it in {delay:g} s",
            )
            child.restart_at = now + delay
        return None

    @staticmethod
    def kill_group(child: Child) -> None:
        try:
            os.killpg(child.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def start(self, child: Child) -> None:
        child.started_at = time.monotonic()
        child.process = subprocess.Popen(
            child.argv,
            cwd=settings.BASE_DIR,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        # The process, not the child: a restart replaces child.process.
        threading.Thread(target=self.relay, args=(child.name, child.process), daemon=True).start()

    def relay(self, name: str, process: subprocess.Popen) -> None:
        with process.stdout:
            for line in process.stdout:
                self.say(name, line.rstrip("\n"))

    def say(self, name: str, line: str) -> None:
        with self.output_lock:
            try:
                self.stdout.write(f"{name:>6} | {line}")
            except OSError:
                # The terminal went away (a closed pipe): keep running, and above
                # all keep stop_all() able to stop the children.
                pass

    def wait_for_port(self, host, port, children, stop, timeout=30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stop.is_set():
            if any(c.process.poll() is not None for c in children):
                return False
            try:
                with socket.create_connection((host, port), timeout=1):
                    return True
            except OSError:
                stop.wait(0.2)
        return False

    def asgi_lines(self, options) -> list[str]:
        if not options["asgi_port"]:
            return []
        return [
            f"  WebSockets:      ws://localhost:{options['asgi_port']}/v1.1/websocket"
            "   (secure devices, behind the HTTPS front end)"
        ]

    def banner(self, options) -> None:
        port = options["port"]
        base = f"http://localhost:{port}"
        lines = [
            "",
            "Gatehouse is running.",
            f"  Portal:          {base}/   (sign in as admin with the password printed on the",
            "                   first run; reset it with: python manage.py changepassword admin)",
            f"  Admin console:   {base}/admin/",
            f"  Management API:  {base}/api/v1/   (docs at {base}/api/docs/)",
            f"  Device API:      http://<connector-id>.{settings.DEVICE_DOMAIN}:{port}/"
            f"   or {base}/c/<connector-id>/",
            *self.asgi_lines(options),
            *devproxy.banner_lines(self.proxy, settings.DEVICE_DOMAIN),
            "Press Ctrl-C to stop.",
            "",
        ]
        with self.output_lock:
            for line in lines:
                self.stdout.write(line)

    def stop_all(self, children: list[Child]) -> None:
        running = [c for c in children if c.process and c.process.poll() is None]
        if not running:
            return
        self.say("run", "stopping " + ", ".join(c.name for c in running))
        # The leaders stop their own workers gracefully (gunicorn, Celery warm shutdown).
        self.kill_all(running, signal.SIGTERM, group=False)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("run", f"{child.name} did not stop in time; killing it")
                self.kill_all([child], signal.SIGKILL)
                child.process.wait()
        self.say("run", "stopped")

    def kill_all(self, children: list[Child], signum: int, group: bool = True) -> None:
        for child in children:
            if child.process is None or child.process.poll() is not None:
                continue
            try:
                if group:
                    os.killpg(child.process.pid, signum)
                else:
                    child.process.send_signal(signum)
            except ProcessLookupError:
                pass
