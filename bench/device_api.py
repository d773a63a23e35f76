"""Device API throughput and latency against a bare Django view (issue 2).

    .venv/bin/python bench/device_api.py [--runs 3] [--duration 10] [--workers 3]

Builds a fresh PostgreSQL database (`bench_gatehouse`, dropped and recreated
every run) and uses Redis db 15 (flushed), sets up a token-mode and a
password-mode connector with provisioned devices and a pool of whitelisted
identities, serves Gatehouse under gunicorn with `bench.settings` (Gatehouse's
settings plus a bare view at /bench/bare), and drives it from wrk. Each
scenario gets a warm-up, then a timed run; with --runs N the scenarios are
measured N times, interleaved, and the table shows the median and the range.

A run in which any response is not the expected status is invalid: the table
says so and the script exits 1. See bench/README.md for how to read it.
"""

import argparse
import asyncio
import base64
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
LUA_SCRIPT = Path(__file__).with_name("device_api.lua")
DATABASE_NAME = "bench_gatehouse"
UNLIMITED = "100000000/60"
IDENTITY_DIGITS = 8
# Writers get identities far above the activation pool, so the two never meet.
FIRST_WRITER_IDENTITY = 90_000_000
BARE_HOST = "localhost"

# Targets from issue 2: (scenario, reference scenario, minimum ratio of requests/s).
TARGETS = [
    ("token write", "bare view", 0.6),
    ("basic write", "token write", 0.8),
    ("activation", "bare view", 0.3),
]


@dataclass
class Scenario:
    """One kind of request, repeated for the whole run."""

    name: str
    host: str
    path: str
    expected_status: int
    body: str = ""
    # Rotated one per request (token or Basic credentials of different devices).
    authorizations: list[str] = field(default_factory=list)
    # Activations: each request takes the next identity of this pool.
    activation_pool: "IdentityPool | None" = None


@dataclass
class IdentityPool:
    """Whitelisted identities 1..size, handed out in disjoint slices, one per load run."""

    size: int
    per_thread: int
    next_identity: int = 1

    def take(self, threads: int) -> int:
        first = self.next_identity
        self.next_identity += threads * self.per_thread
        if self.next_identity - 1 > self.size:
            raise SystemExit("activation pool exhausted: raise --pool-size")
        return first


@dataclass
class Result:
    """What one timed run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    socket_errors: int
    # CPU seconds the server side spent during the run: gunicorn, the ingest (when
    # writes are queued), their PostgreSQL backends.
    app_cpu: float = 0.0
    database_cpu: float = 0.0
    ingest_cpu: float = 0.0
    redis_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """Server CPU (gunicorn + ingest + PostgreSQL + Redis) per request, in milliseconds."""
        total = self.app_cpu + self.ingest_cpu + self.database_cpu + self.redis_cpu
        return total / self.requests * 1000 if self.requests else 0.0

    def unexpected(self, expected: int) -> int:
        wrong = sum(count for status, count in self.statuses.items() if status != expected)
        return wrong + self.socket_errors


# --- environment ----------------------------------------------------------------


def bench_environment(args) -> dict[str, str]:
    server = args.postgres.rstrip("/")
    return {
        "DATABASE_URL": f"{server}/{DATABASE_NAME}",
        "REDIS_URL": args.redis,
        "CELERY_BROKER_URL": args.redis,
        "DEBUG": "0",
        # Fresh per run, so nothing of the bench outlives it.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CA_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "RATE_LIMIT_WRITE": UNLIMITED,
        "RATE_LIMIT_ACTIVATE": UNLIMITED,
        "RATE_LIMIT_ACTIVATE_IP": UNLIMITED,
        "LOG_LEVEL": "WARNING",
        # Connections kept for the whole bench, so CpuMeter sees every backend's CPU.
        "DB_CONN_MAX_AGE": "3600",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_CONN_HEALTH_CHECKS": args.conn_health_checks,
        "DEVICE_WRITE_QUEUE": "1" if args.write_queue == "on" else "0",
    }


def recreate_database(postgres_url: str, synchronous_commit: str = "on") -> None:
    import psycopg

    with psycopg.connect(f"{postgres_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE_NAME}")
        if synchronous_commit != "on":
            conn.execute(
                f"ALTER DATABASE {DATABASE_NAME} SET synchronous_commit = {synchronous_commit}"
            )


def flush_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


def find_wrk() -> str | None:
    """wrk from PATH; installs Debian's package when running as root."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("wrk not found; installing the Debian package …", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet)
    return shutil.which("wrk")


# --- data -------------------------------------------------------------------------


@dataclass
class Fixture:
    """What the setup made: connectors, credentials and the activation pool."""

    token_connector: str
    password_connector: str
    token_authorizations: list[str]
    basic_authorizations: list[str]


def prepare_data(args, pool_size: int) -> Fixture:
    """Migrate, then set everything up through Gatehouse's own services."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections

    from connectors.models import Connector, Resource
    from devices import services
    from devices.models import Device

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench")

    def connector(name: str, auth_mode: str) -> Connector:
        made = Connector.objects.create(
            name=name,
            owner=owner,
            identity_type="base10",
            identity_length=IDENTITY_DIGITS,
            auth_mode=auth_mode,
        )
        Resource.objects.create(connector=made, alias="myalias", format=Resource.NUMBER)
        return made

    token_connector = connector("Bench token", Connector.TOKEN)
    password_connector = connector("Bench password", Connector.PASSWORD)

    token_authorizations = []
    for index in range(args.token_devices):
        identity = f"{FIRST_WRITER_IDENTITY + index:0{IDENTITY_DIGITS}d}"
        services.whitelist_device(token_connector, identity)
        token = services.activate_device(token_connector, identity, None, "127.0.0.1")
        token_authorizations.append(f"Token {token}")

    basic_authorizations = []
    for index in range(args.password_devices):
        identity = f"{FIRST_WRITER_IDENTITY + index:0{IDENTITY_DIGITS}d}"
        password = secrets.token_urlsafe(24)
        services.whitelist_device(password_connector, identity)
        services.activate_device(password_connector, identity, password, "127.0.0.1")
        encoded = base64.b64encode(f"{identity}:{password}".encode()).decode()
        basic_authorizations.append(f"Basic {encoded}")

    # The activation pool is hundreds of thousands of rows: one INSERT … SELECT
    # instead of whitelist_device() per row (which would also log an event each).
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Device._meta.db_table}
                (connector_id, identity, status, tags, name, auth_mode,
                 activation_expires_at, credential_version, created_at)
            SELECT %s, lpad(n::text, %s, '0'), %s, '[]'::jsonb, '', '',
                   now() + interval '1 day', 0, now()
            FROM generate_series(1, %s) AS n
            """,
            [token_connector.pk, IDENTITY_DIGITS, Device.WHITELISTED, pool_size],
        )
    # Fresh statistics, so the planner does not change its mind mid-run, and no
    # autovacuum of the rows just loaded (GIN pending lists included) during the runs.
    with connections["default"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connections.close_all()
    return Fixture(
        token_connector=token_connector.pk,
        password_connector=password_connector.pk,
        token_authorizations=token_authorizations,
        basic_authorizations=basic_authorizations,
    )


def stored_counts() -> tuple[int, int]:
    """(data points stored, devices provisioned), to check against what was acknowledged."""
    from django.db import connections

    from devices.models import DataPoint, Device

    counts = DataPoint.objects.count(), Device.objects.filter(status=Device.PROVISIONED).count()
    connections.close_all()
    return counts


def check_stored(acknowledged_writes: int, acknowledged_activations: int) -> bool:
    """Everything acknowledged is in the database (requests still in flight when
    the load generator stopped may add a few more)."""
    data_points, provisioned = stored_counts()
    valid = True
    if data_points < acknowledged_writes:
        print(f"INVALID: {acknowledged_writes} writes acknowledged, only {data_points} stored")
        valid = False
    if provisioned < acknowledged_activations:
        print(
            f"INVALID: {acknowledged_activations} activations acknowledged, "
            f"only {provisioned} devices provisioned"
        )
        valid = False
    return valid


# --- server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(args, env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "portal.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--log-level",
        "warning",
        "--chdir",
        str(BASE_DIR),
    ]
    log = log_path.open("w")
    server = subprocess.Popen(
        command, cwd=BASE_DIR, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log_path.read_text()}")
        try:
            if request("127.0.0.1", port, "GET", "/timestamp", BARE_HOST)[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise SystemExit(f"gunicorn did not answer within 30 s:\n{log_path.read_text()}")


def start_ingest(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """`manage.py ingest`, which stores the writes gunicorn queues (DEVICE_WRITE_QUEUE)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "ingest"],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_for_ingest(seconds: float = 120) -> None:
    """Until the ingest has stored every queued write, so check_stored sees them."""
    from devices.ingest import PROCESSING
    from devices.services import write_queue

    client = write_queue.redis_client()
    names = [write_queue.key(write_queue.QUEUE), write_queue.key(PROCESSING)]
    deadline = time.monotonic() + seconds
    while any(client.llen(name) for name in names) and time.monotonic() < deadline:
        time.sleep(0.2)


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def redis_server_pid(redis_url: str) -> int | None:
    """The pid of the Redis server at `redis_url`, when it runs on this machine."""
    import redis

    try:
        info = redis.Redis.from_url(redis_url).info("server")
    except redis.RedisError:
        return None
    pid = info.get("process_id")
    return pid if pid and Path(f"/proc/{pid}").exists() else None


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by the server side: gunicorn's processes and the bench database's backends.

    Throughput on a busy machine swings with everyone else's load; CPU per
    request barely does, so it is the steadier way to compare scenarios.
    """

    def __init__(self, server: subprocess.Popen, postgres_url: str, ingest=None, redis_pid=None):
        import psycopg

        self.server = server
        self.ingest = ingest
        # The Redis server's CPU counts too; other clients of it add a little noise.
        self.redis = [redis_pid] if redis_pid else []
        self.conn = psycopg.connect(f"{postgres_url.rstrip('/')}/{DATABASE_NAME}", autocommit=True)

    def _pids(self) -> tuple[list[int], list[int]]:
        children = Path(f"/proc/{self.server.pid}/task/{self.server.pid}/children")
        app = [self.server.pid, *(int(pid) for pid in children.read_text().split())]
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [DATABASE_NAME],
        ).fetchall()
        return app, [pid for (pid,) in rows]

    def snapshot(self) -> tuple[dict[int, float], ...]:
        app, database = self._pids()
        ingest = [self.ingest.pid] if self.ingest is not None else []
        return tuple(
            {pid: process_cpu(pid) for pid in pids} for pids in (app, database, ingest, self.redis)
        )

    def since(self, before) -> tuple[float, ...]:
        """(app, database, ingest, Redis) CPU seconds since `before`; processes born since
        count whole."""
        after = self.snapshot()
        return tuple(
            sum(cpu - then.get(pid, 0.0) for pid, cpu in now.items())
            for now, then in zip(after, before, strict=True)
        )

    def close(self):
        self.conn.close()


def request(address, port, method, path, host, body="", authorization=None) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection(address, port, timeout=30)
    headers = {"Host": host, "Content-Type": "application/x-www-form-urlencoded"}
    if authorization:
        headers["Authorization"] = authorization
    try:
        conn.request(method, path, body=body.encode(), headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --- load: wrk ------------------------------------------------------------------------


def run_wrk(wrk, scenario: Scenario, port, seconds, args, workdir: Path) -> Result:
    command = [
        wrk,
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        f"http://127.0.0.1:{port}",
        "--",
    ]
    if scenario.activation_pool is not None:
        first = scenario.activation_pool.take(args.wrk_threads)
        per_thread = scenario.activation_pool.per_thread
        command += ["activate", scenario.host, scenario.path]
        command += [str(first), str(per_thread), str(IDENTITY_DIGITS)]
    elif scenario.authorizations:
        credentials = workdir / f"{scenario.name.replace(' ', '-')}.txt"
        credentials.write_text("\n".join(scenario.authorizations) + "\n")
        command += ["auth", scenario.host, scenario.path, scenario.body, str(credentials)]
    else:
        command += ["static", scenario.host, scenario.path, scenario.body]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            data = json.loads(line.removeprefix("BENCH_RESULT "))
            return Result(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                statuses={int(status): count for status, count in data["statuses"].items()},
                socket_errors=data["socket_errors"] + data["timeouts"],
            )
    raise SystemExit(f"wrk failed:\n{completed.stdout}\n{completed.stderr}")


# --- load: Python fallback ------------------------------------------------------------


def run_python(scenario: Scenario, port, seconds, args, workdir: Path) -> Result:
    """A keep-alive asyncio client: slower than wrk, used only when wrk is missing."""
    return asyncio.run(_python_load(scenario, port, seconds, args.connections))


async def _python_load(scenario: Scenario, port: int, seconds: float, connections: int):
    rotation = iter(range(10**12))
    pool_first = None
    if scenario.activation_pool is not None:
        pool_first = scenario.activation_pool.take(1)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    socket_errors = 0
    start = time.monotonic()
    deadline = start + seconds

    def next_request() -> bytes:
        number = next(rotation)
        headers = [
            f"POST {scenario.path} HTTP/1.1",
            f"Host: {scenario.host}",
            "Content-Type: application/x-www-form-urlencoded",
        ]
        body = scenario.body
        if scenario.authorizations:
            authorization = scenario.authorizations[number % len(scenario.authorizations)]
            headers.append(f"Authorization: {authorization}")
        if pool_first is not None:
            if number >= scenario.activation_pool.per_thread:
                number = -pool_first  # past the slice: identity 0, never whitelisted
            body = urllib.parse.urlencode({"id": f"{pool_first + number:0{IDENTITY_DIGITS}d}"})
        headers.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()

    async def connection_loop():
        nonlocal socket_errors
        reader = writer = None
        while time.monotonic() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                sent_at = time.monotonic()
                writer.write(next_request())
                await writer.drain()
                status_line = await reader.readline()
                status = int(status_line.split()[1])
                length, closing = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and value.strip().lower() == "close":
                        closing = True
                await reader.readexactly(length)
                latencies.append(time.monotonic() - sent_at)
                statuses[status] = statuses.get(status, 0) + 1
                if closing:
                    writer.close()
                    reader = writer = None
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                socket_errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection_loop() for _ in range(connections)))
    elapsed = time.monotonic() - start
    latencies.sort()

    def percentile(fraction: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000

    return Result(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=percentile(0.50),
        p99_ms=percentile(0.99),
        statuses=statuses,
        socket_errors=socket_errors,
    )


# --- report ------------------------------------------------------------------------------


def spread(values: list[float], digits: int) -> str:
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:.{digits}f}"
    return f"{middle:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def print_table(scenarios: list[Scenario], results: dict[str, list[Result]]) -> bool:
    """Print the table and the targets; return whether every response was as expected."""
    runs = len(results["bare view"])
    bare = [result.rate for result in results["bare view"]]
    bare_cpu = [result.cpu_ms for result in results["bare view"]]
    rows = []
    valid = True
    for scenario in scenarios:
        measured = results[scenario.name]
        wrong = sum(result.unexpected(scenario.expected_status) for result in measured)
        valid = valid and wrong == 0
        rows.append(
            [
                scenario.name,
                spread([result.rate for result in measured], 0),
                spread([result.p50_ms for result in measured], 1),
                spread([result.p99_ms for result in measured], 1),
                spread([r.rate / b for r, b in zip(measured, bare, strict=True)], 2),
                spread([result.cpu_ms for result in measured], 2),
                spread([c / r.cpu_ms for r, c in zip(measured, bare_cpu, strict=True)], 2),
                str(wrong) if not wrong else f"{wrong} !!",
            ]
        )
    header = [
        "scenario",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "× bare",
        "CPU ms/req",
        "CPU × bare",
        "unexpected",
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    print(f"median of {runs} run(s), range in brackets" if runs > 1 else "one run")
    for row in [header, ["-" * width for width in widths], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()
    print("targets: measured ratio of requests/s, then the ratio CPU per request predicts")
    for name, reference, minimum in TARGETS:
        if name not in results or reference not in results:
            continue
        pairs = list(zip(results[name], results[reference], strict=True))
        ratios = [mine.rate / theirs.rate for mine, theirs in pairs]
        predicted = [theirs.cpu_ms / mine.cpu_ms for mine, theirs in pairs if mine.cpu_ms]
        verdict = "met" if statistics.median(ratios) >= minimum else "MISSED"
        print(
            f"  {name} ≥ {minimum} × {reference}: {spread(ratios, 2)}  {verdict}"
            f"   (by CPU: {spread(predicted, 2)})"
        )
    for scenario in scenarios:
        for number, result in enumerate(results[scenario.name], 1):
            if result.unexpected(scenario.expected_status):
                statuses = ", ".join(f"{s}: {c}" for s, c in sorted(result.statuses.items()))
                print(
                    f"  !! {scenario.name} run {number}: expected only "
                    f"{scenario.expected_status}; got {statuses}; "
                    f"socket errors/timeouts {result.socket_errors}"
                )
    if not valid:
        print("INVALID: some responses were not the expected status (see above)")
    return valid


# --- main -----------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="timed runs per scenario")
    parser.add_argument("--duration", type=int, default=10, help="seconds per timed run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--connections", type=int, default=48, help="keep-alive connections")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--token-devices", type=int, default=256)
    parser.add_argument(
        "--password-devices",
        type=int,
        default=16,
        help="each costs one slow password hash in setup and one on its first write",
    )
    parser.add_argument(
        "--scenarios",
        default="bare,token,basic,activation",
        help="comma-separated subset of bare,token,basic,activation (bare is always run)",
    )
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument(
        "--python-client", action="store_true", help="use the Python client even if wrk exists"
    )
    # Experiments: what a settings change would buy, without touching Gatehouse's settings.
    parser.add_argument(
        "--synchronous-commit",
        choices=["on", "off"],
        default="on",
        help="PostgreSQL synchronous_commit for the bench database (experiment)",
    )
    parser.add_argument(
        "--conn-health-checks",
        choices=["on", "off"],
        default="on",
        help="Django CONN_HEALTH_CHECKS, a SELECT 1 per request while on (experiment)",
    )
    parser.add_argument(
        "--write-queue",
        choices=["on", "off"],
        default="on",
        help="DEVICE_WRITE_QUEUE: writes queued in Redis and stored by `manage.py ingest` "
        "(on, the production setting) or stored by the request itself (off)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    wanted = {"bare", *args.scenarios.split(",")}
    wrk = None if args.python_client else find_wrk()
    if wrk is None:
        print("load from the Python client (slower than wrk: numbers are lower bounds)")
    # An activation takes one identity; no run comes near 2,000 per second per thread.
    per_thread = int(2000 * max(args.duration, args.warmup)) + 1000
    load_threads = args.wrk_threads if wrk else 1
    pool_size = 2 * args.runs * load_threads * per_thread if "activation" in wanted else 0

    env = bench_environment(args)
    os.environ.update(env)
    sys.path.insert(0, str(BASE_DIR))
    print(f"database {DATABASE_NAME}, Redis {args.redis}: recreating", flush=True)
    recreate_database(args.postgres, args.synchronous_commit)
    flush_redis(args.redis)
    started = time.monotonic()
    fixture = prepare_data(args, pool_size)
    print(
        f"setup: {args.token_devices} token devices, {args.password_devices} password devices, "
        f"{pool_size} whitelisted for activation ({time.monotonic() - started:.0f} s)",
        flush=True,
    )

    token_host = f"{fixture.token_connector}.devices.localhost"
    password_host = f"{fixture.password_connector}.devices.localhost"
    write_path = "/api:v1/stack/alias"
    pool = IdentityPool(size=pool_size, per_thread=per_thread)
    scenarios = [
        Scenario("bare view", BARE_HOST, "/bench/bare", 204, body="myalias=42"),
        Scenario(
            "token write",
            token_host,
            write_path,
            204,
            body="myalias=42",
            authorizations=fixture.token_authorizations,
        ),
        Scenario(
            "basic write",
            password_host,
            write_path,
            204,
            body="myalias=42",
            authorizations=fixture.basic_authorizations,
        ),
        Scenario("activation", token_host, "/provision/activate", 200, activation_pool=pool),
    ]
    keys = ["bare", "token", "basic", "activation"]
    scenarios = [s for s, key in zip(scenarios, keys, strict=True) if key in wanted]

    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    server = start_gunicorn(args, env, port, workdir / "gunicorn.log")
    ingest = start_ingest(env, workdir / "ingest.log") if args.write_queue == "on" else None
    print(
        (
            "writes queued, stored by one `manage.py ingest` (its CPU is counted)\n"
            if ingest
            else "writes stored by the request (--write-queue off)\n"
        )
        + f"gunicorn: {args.workers} × {args.worker_class} worker(s)"
        + (f", {args.threads} threads each" if args.worker_class == "gthread" else "")
        + f", 127.0.0.1:{port}; load: "
        + (f"wrk, {args.wrk_threads} thread(s)" if wrk else "Python client")
        + f", {args.connections} connections",
        flush=True,
    )
    acknowledged_writes = 0
    acknowledged_activations = args.token_devices + args.password_devices
    results: dict[str, list[Result]] = {scenario.name: [] for scenario in scenarios}
    meter = CpuMeter(server, args.postgres, ingest, redis_server_pid(args.redis))
    try:
        # A device's first Basic write pays the slow password hash; later ones hit the
        # verified-credential cache. Pay it here so the timed runs see the steady state.
        for authorization in fixture.basic_authorizations if "basic" in wanted else []:
            status, _ = request(
                "127.0.0.1", port, "POST", write_path, password_host, "myalias=1", authorization
            )
            if status != 204:
                raise SystemExit(f"password warm-up write answered {status}")
            acknowledged_writes += 1
        load = functools.partial(run_wrk, wrk) if wrk else run_python
        for number in range(1, args.runs + 1):
            for scenario in scenarios:
                warm = load(scenario, port, args.warmup, args, workdir)
                before = meter.snapshot()
                result = load(scenario, port, args.duration, args, workdir)
                (
                    result.app_cpu,
                    result.database_cpu,
                    result.ingest_cpu,
                    result.redis_cpu,
                ) = meter.since(before)
                results[scenario.name].append(result)
                if scenario.path == write_path:
                    acknowledged_writes += warm.statuses.get(204, 0)
                    acknowledged_writes += result.statuses.get(204, 0)
                elif scenario.activation_pool is not None:
                    acknowledged_activations += warm.statuses.get(200, 0)
                    acknowledged_activations += result.statuses.get(200, 0)
                print(
                    f"run {number}  {scenario.name:<12} {result.rate:8.0f} req/s  "
                    f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
                    f"CPU {result.cpu_ms:5.2f} ms/req "
                    f"({result.app_cpu / max(result.requests, 1) * 1000:.2f} gunicorn + "
                    f"{result.ingest_cpu / max(result.requests, 1) * 1000:.2f} ingest + "
                    f"{result.database_cpu / max(result.requests, 1) * 1000:.2f} PostgreSQL + "
                    f"{result.redis_cpu / max(result.requests, 1) * 1000:.2f} Redis)  "
                    f"(warm-up {warm.rate:.0f} req/s)",
                    flush=True,
                )
    finally:
        meter.close()
        stop(server)
        if ingest is not None:
            wait_for_ingest()
            stop(ingest)
    for name in ("gunicorn", "ingest"):
        log_path = workdir / f"{name}.log"
        log = log_path.read_text().strip() if log_path.exists() else ""
        if log and not (name == "ingest" and log.count("\n") < 2):
            print(f"{name} said:\n{log[-3000:]}")
    shutil.rmtree(workdir, ignore_errors=True)

    valid = print_table(scenarios, results)
    valid = check_stored(acknowledged_writes, acknowledged_activations) and valid
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
