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
import base64
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import harness, load  # noqa: E402  (needs BASE_DIR on the path)

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


# --- environment ----------------------------------------------------------------


def bench_environment(args) -> dict[str, str]:
    server = args.postgres.rstrip("/")
    return {
        "DATABASE_URL": f"{server}/{args.database}",
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
    from django.db import connections

    from connectors.models import Connector, Resource
    from devices import services

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

    whitelist_pool(token_connector, pool_size)
    connections.close_all()
    return Fixture(
        token_connector=token_connector.pk,
        password_connector=password_connector.pk,
        token_authorizations=token_authorizations,
        basic_authorizations=basic_authorizations,
    )


def whitelist_pool(connector, size: int) -> None:
    """Whitelist identities 1..size for activations, without an event each."""
    from django.db import connection
    from django.utils import timezone

    from devices.models import Device

    if connection.vendor != "postgresql":
        # The laptop's SQLite (bench/laptop.py): tens of thousands, in batches.
        expires = timezone.now() + timezone.timedelta(days=1)
        Device.objects.bulk_create(
            (
                Device(
                    connector=connector,
                    identity=f"{n:0{IDENTITY_DIGITS}d}",
                    status=Device.WHITELISTED,
                    activation_expires_at=expires,
                )
                for n in range(1, size + 1)
            ),
            batch_size=5000,
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return
    # Hundreds of thousands of rows: one INSERT … SELECT.
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
            [connector.pk, IDENTITY_DIGITS, Device.WHITELISTED, size],
        )
        # Fresh statistics, so the planner does not change its mind mid-run, and no
        # autovacuum of the rows just loaded (GIN pending lists included) during the runs.
        cursor.execute("VACUUM ANALYZE")


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


def start_gunicorn(args, env: dict[str, str], port: int, log_path: Path):
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
    server = harness.start(command, env, log_path)
    harness.wait_until_answers(server, port, log_path, BARE_HOST)
    return server


def wait_for_ingest(seconds: float = 120) -> None:
    """Until the ingest has stored every queued write, so check_stored sees them."""
    from devices.services import write_queue

    deadline = time.monotonic() + seconds
    while write_queue.queued() and time.monotonic() < deadline:
        time.sleep(0.2)


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
    parser.add_argument(
        "--database", default=DATABASE_NAME, help="PostgreSQL database, dropped and recreated"
    )
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
    wrk = None if args.python_client else load.find_wrk()
    if wrk is None:
        print("load from the Python client (slower than wrk: numbers are lower bounds)")
    # An activation takes one identity; no run comes near 2,000 per second per thread.
    per_thread = int(2000 * max(args.duration, args.warmup)) + 1000
    load_threads = args.wrk_threads if wrk else 1
    pool_size = 2 * args.runs * load_threads * per_thread if "activation" in wanted else 0

    env = bench_environment(args)
    os.environ.update(env)
    print(f"database {args.database}, Redis {args.redis}: recreating", flush=True)
    harness.recreate_database(args.postgres, args.database, args.synchronous_commit)
    harness.flush_redis(args.redis)
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
    pool = load.IdentityPool(size=pool_size, per_thread=per_thread, digits=IDENTITY_DIGITS)
    scenarios = [
        load.Scenario("bare view", BARE_HOST, "/bench/bare", 204, body="myalias=42"),
        load.Scenario(
            "token write",
            token_host,
            write_path,
            204,
            body="myalias=42",
            authorizations=fixture.token_authorizations,
        ),
        load.Scenario(
            "basic write",
            password_host,
            write_path,
            204,
            body="myalias=42",
            authorizations=fixture.basic_authorizations,
        ),
        load.Scenario("activation", token_host, "/provision/activate", 200, activation_pool=pool),
    ]
    keys = ["bare", "token", "basic", "activation"]
    scenarios = [s for s, key in zip(scenarios, keys, strict=True) if key in wanted]

    port = harness.free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    server = start_gunicorn(args, env, port, workdir / "gunicorn.log")
    ingest = None
    if args.write_queue == "on":
        # Stores the writes gunicorn queues (DEVICE_WRITE_QUEUE).
        ingest = harness.start([sys.executable, "manage.py", "ingest"], env, workdir / "ingest.log")
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
    redis_pid = harness.redis_server_pid(args.redis)
    meter = harness.CpuMeter(
        {
            "gunicorn": lambda: harness.tree(server.pid),
            "ingest": lambda: [ingest.pid] if ingest is not None else [],
            "PostgreSQL": harness.PostgresBackends(args.postgres, args.database),
            # The Redis server's CPU counts too; other clients of it add a little noise.
            "Redis": lambda: [redis_pid] if redis_pid else [],
        }
    )
    try:
        # A device's first Basic write pays the slow password hash; later ones hit the
        # verified-credential cache. Pay it here so the timed runs see the steady state.
        for authorization in fixture.basic_authorizations if "basic" in wanted else []:
            status, _ = harness.request(
                "127.0.0.1", port, "POST", write_path, password_host, "myalias=1", authorization
            )
            if status != 204:
                raise SystemExit(f"password warm-up write answered {status}")
            acknowledged_writes += 1
        results, acknowledged = load.run_scenarios(
            load.loader(wrk), scenarios, args.runs, port, args, workdir, meter
        )
        acknowledged_writes += sum(acknowledged[s.name] for s in scenarios if s.path == write_path)
        acknowledged_activations += sum(
            acknowledged[s.name] for s in scenarios if s.activation_pool is not None
        )
    finally:
        meter.close()
        harness.stop(server)
        if ingest is not None:
            wait_for_ingest()
            harness.stop(ingest)
    for name in ("gunicorn", "ingest"):
        log_path = workdir / f"{name}.log"
        log = log_path.read_text().strip() if log_path.exists() else ""
        if log and not (name == "ingest" and log.count("\n") < 2):
            print(f"{name} said:\n{log[-3000:]}")
    shutil.rmtree(workdir, ignore_errors=True)

    valid = harness.print_table(scenarios, results, TARGETS)
    valid = check_stored(acknowledged_writes, acknowledged_activations) and valid
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
