"""Where a device request's time goes: SQL, cache commands, layers and Python profile.

    .venv/bin/python bench/device_profile.py [--requests 300] [--top 25] [--laptop]

Same database and Redis db as bench/device_api.py (recreated), same settings,
a handful of devices; with --laptop, the laptop default of bench/laptop.py
instead (SQLite in WAL and the disk cache in a temporary var/, no Redis, the
MQTT outbox filled as under `manage.py runlocal` with a broker). For each
scenario it sends one request to Gatehouse's WSGI application, as a WSGI
server would (the full middleware stack, no HTTP server and none of the test
client's bookkeeping), and lists every SQL statement and every Redis command
it caused; then it times --requests more in-process, --requests more with
their wall time split by layer (bench/layers.py), and --requests more under
cProfile, and prints the functions that cost the most.
"""

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import device_api, harness, layers  # noqa: E402  (needs BASE_DIR on the path)


class WsgiClient:
    """Calls the WSGI application the way a WSGI server does."""

    def __init__(self):
        from django.core.wsgi import get_wsgi_application

        self.application = get_wsgi_application()

    def post(self, path: str, body: str, host: str, authorization: str | None = None):
        data = body.encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(data)),
            "HTTP_HOST": host,
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if authorization:
            environ["HTTP_AUTHORIZATION"] = authorization
        status = []
        response = self.application(environ, lambda s, headers, exc=None: status.append(s))
        try:
            content = b"".join(response)
        finally:
            response.close()
        return SimpleNamespace(status_code=int(status[0].split()[0]), content=content)


class RedisCommands:
    """The commands Redis saw on the bench's db while the block ran (MONITOR)."""

    def __init__(self, redis_url: str):
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.commands: list[str] = []
        # Connect (and SELECT the db) now, so that is not counted as the request's.
        self.client.ping()

    def __enter__(self):
        self.monitor = self.client.monitor().__enter__()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()
        return self

    def _listen(self):
        for entry in self.monitor.listen():
            if entry["command"] == "ECHO bench-end":
                self.done.set()
                return
            if entry.get("db") == self.db:
                self.commands.append(entry["command"][:120])

    def __exit__(self, *exc):
        # MONITOR delivers asynchronously: a marker tells the listener it has seen everything.
        deadline = time.monotonic() + 5
        while not self.done.is_set() and time.monotonic() < deadline:
            self.client.echo("bench-end")
            self.done.wait(0.2)
        self.monitor.__exit__(*exc)
        self.client.close()


class StatementCounter:
    """A database execute wrapper counting the statements Django's cursors send."""

    count = 0

    def __call__(self, execute, *call):
        self.count += 1
        return execute(*call)


def backend_pid(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="profiled requests per scenario")
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile")
    parser.add_argument(
        "--sort", default="cumulative", help="order of the profile: cumulative, tottime, …"
    )
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default=device_api.DATABASE_NAME)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--write-queue", choices=["on", "off"], default="on")
    parser.add_argument(
        "--laptop",
        action="store_true",
        help="SQLite and the disk cache in a temporary var/, as bench/laptop.py (no PostgreSQL)",
    )
    args = parser.parse_args()
    setup_args = SimpleNamespace(
        token_devices=4,
        password_devices=2,
        postgres=args.postgres,
        database=args.database,
        redis=args.redis,
        conn_health_checks="on",
        write_queue=args.write_queue,
    )
    workdir = None
    if args.laptop:
        workdir = Path(tempfile.mkdtemp(prefix="bench-profile-laptop-"))
        os.environ.update(laptop_environment(workdir / "var"))
        subprocess.run([sys.executable, "-m", "portal.setup_local"], cwd=BASE_DIR, check=True)
    else:
        os.environ.update(device_api.bench_environment(setup_args))
        harness.recreate_database(args.postgres, args.database)
        harness.flush_redis(args.redis)
    # Activations: one warm-up, one listed, then the timed, the layered and the profiled batches.
    fixture = device_api.prepare_data(setup_args, 3 * args.requests + 10)
    try:
        return profile_scenarios(args, fixture)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def laptop_environment(var: Path) -> dict[str, str]:
    """bench/laptop.py's environment, plus the MQTT settings runlocal gives the web
    processes when Mosquitto is installed: activations then fill the broker's outbox.
    Nothing connects to a broker during a request."""
    from bench import laptop

    env = laptop.laptop_environment(var)
    env["MQTT_BROKER_URL"] = "mqtts://127.0.0.1:8883"
    env["MQTT_ADMIN_PASSWORD"] = "profile-only"  # noqa: S105  (no broker is reached)
    return env


def print_layers(timer: layers.LayerTimer, requests: int, wall_ms: float, cpu_ms: float) -> None:
    rows = timer.rows(requests)
    wall, cpu = sum(row[1] for row in rows), sum(row[2] for row in rows)
    print(
        f"layers of {requests} more, per request: {wall:.0f} µs wall, {cpu:.0f} µs CPU with "
        f"the timers ({wall_ms * 1000:.0f} and {cpu_ms * 1000:.0f} µs without)"
    )
    print(f"  {'layer':<64} {'wall µs':>8} {'CPU µs':>7} {'share':>6} {'calls':>6}")
    for name, micros, cpu_micros, share, calls in rows:
        if micros >= 0.5:
            print(f"  {name:<64} {micros:>8.1f} {cpu_micros:>7.1f} {share:>6.1%} {calls:>6.2f}")


def profile_scenarios(args, fixture) -> int:

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token_host = f"{fixture.token_connector}.devices.localhost"
    password_host = f"{fixture.password_connector}.devices.localhost"
    identities = iter(range(1, 3 * args.requests + 10))

    def bare(client):
        return client.post("/bench/bare", "myalias=42", device_api.BARE_HOST)

    def token_write(client):
        authorization = fixture.token_authorizations[0]
        return client.post("/api:v1/stack/alias", "myalias=42", token_host, authorization)

    def basic_write(client):
        authorization = fixture.basic_authorizations[0]
        return client.post("/api:v1/stack/alias", "myalias=42", password_host, authorization)

    def activation(client):
        body = f"id={next(identities):0{device_api.IDENTITY_DIGITS}d}"
        return client.post("/provision/activate", body, token_host)

    scenarios = [
        ("bare view", bare, 204),
        ("token write", token_write, 204),
        ("basic write", basic_write, 204),
        ("activation", activation, 200),
    ]
    client = WsgiClient()
    # First requests pay one-off costs (imports, URL resolver, the slow password
    # hash before the verified-credential cache holds it), so the listing shows
    # the steady state.
    for _, send, _ in scenarios:
        send(client)

    postgres = connection.vendor == "postgresql"
    for name, send, expected in scenarios:
        print(f"\n=== {name}: one request")
        with contextlib.ExitStack() as stack:
            if not args.laptop:
                redis_commands = stack.enter_context(RedisCommands(args.redis))
            queries = stack.enter_context(CaptureQueriesContext(connection))
            response = send(client)
        if response.status_code != expected:
            print(f"expected {expected}, got {response.status_code}: {response.content[:200]}")
            return 1
        # The connection health check (portal/db/postgresql) sends nothing while
        # the connection is fine.
        print(f"SQL: {len(queries.captured_queries)} statements")
        for query in queries.captured_queries:
            print(f"  {query['time']:>6} s  {query['sql'][:160]}")
        if not args.laptop:
            print(f"Redis: {len(redis_commands.commands)} commands")
            for command in redis_commands.commands:
                print(f"  {command}")

        database_pid = backend_pid(connection) if postgres else None
        wall, cpu = time.perf_counter(), time.process_time()
        database_cpu = harness.process_cpu(database_pid) if postgres else 0.0
        # Counted by a wrapper: CaptureQueriesContext keeps only the last 9,000.
        sent = StatementCounter()
        with connection.execute_wrapper(sent):
            for _ in range(args.requests):
                send(client)
        wall = (time.perf_counter() - wall) / args.requests * 1000
        cpu = (time.process_time() - cpu) / args.requests * 1000
        statements = sent.count / args.requests
        if postgres:
            database_cpu = (harness.process_cpu(database_pid) - database_cpu) / args.requests * 1000
            if backend_pid(connection) != database_pid:
                print("(the database connection was replaced: its CPU figure is wrong)")
        print(
            f"{args.requests} requests in-process, per request: {wall:.2f} ms wall, "
            f"{cpu:.2f} ms CPU in Django"
            + (f", {database_cpu:.2f} ms CPU in its PostgreSQL backend" if postgres else "")
            + f", {statements:.2f} SQL statements through Django's cursor"
        )

        timer = layers.LayerTimer()
        layers.instrument(timer)
        timer.wrap(WsgiClient, "post", "WSGI call, response close (request_finished)")
        # The middleware chain holds the handler's methods as they were when it was built.
        client.application.load_middleware()
        try:
            for _ in range(args.requests):
                send(client)
        finally:
            timer.restore()
            client.application.load_middleware()
        print_layers(timer, args.requests, wall, cpu)

        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for _ in range(args.requests):
            send(client)
        profile.disable()
        print(f"cProfile (CPU time) of {args.requests} more; it inflates pure-Python time:")
        stats = pstats.Stats(profile)
        stats.sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
