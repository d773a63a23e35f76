"""Server time of the console on a connector of a million devices: the Devices tab and
the overview.

    .venv/bin/python bench/console.py [--devices 1000000] [--events 500000] [--runs 7]

Recreates a PostgreSQL database (`bench_console`, dropped and recreated; --database to
change it) and flushes a Redis db (15 by default, --redis), runs the migrations, and
fills them the way a large fleet looks: one connector with --devices devices in every
status (60 % provisioned, 20 % whitelisted, 10 % expired, 10 % revoked), with names,
last-seen times spread over a month and two or three tags: a site every 50th device
shares (spread over the whole table, the worst case for reading the rows a tag
matches), an import batch of 20,000 consecutive devices, and a rare firmware tag; and
--events log lines over the last 30 days (activations, writes, refusals with their
reasons); a second connector holds --other-devices devices and --other-events log lines
more, so every query has to keep to its connector. Each table is filled by one
INSERT … SELECT over generate_series, its columns read from the models.

Then it asks each page of the scenarios below (and the Logs tab) through Django's test
client, in this process (the full middleware stack, no HTTP server): a warm-up round
(its times printed as "first look": the overview counts the hours and days that are
over then, and keeps the counts), then --runs rounds, interleaved. Server time is the
wall time of the request; SQL time and the statement count come from a database
execute wrapper. The table shows the median and
the range, and each target as met or MISSED on the median. The database is dropped at
the end unless --keep.
"""

import argparse
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402  (needs BASE_DIR on the path)

IDENTITY_DIGITS = 8
DEVICES_TAB_MS = 200
OVERVIEW_MS = 300


@dataclass(frozen=True)
class Scenario:
    name: str
    page: str  # "devices" or "overview"
    query: str
    target_ms: int


SCENARIOS = [
    Scenario("devices: first page, counts", "devices", "", DEVICES_TAB_MS),
    Scenario("devices: 500 a page", "devices", "size=500", DEVICES_TAB_MS),
    Scenario("devices: last page", "devices", "at=last", DEVICES_TAB_MS),
    Scenario("devices: sort identity desc", "devices", "sort=identity&dir=desc", DEVICES_TAB_MS),
    Scenario("devices: sort status", "devices", "sort=status", DEVICES_TAB_MS),
    Scenario("devices: sort last seen", "devices", "sort=last_seen&dir=desc", DEVICES_TAB_MS),
    Scenario("devices: status revoked", "devices", "status=revoked", DEVICES_TAB_MS),
    Scenario(
        "devices: revoked by last seen",
        "devices",
        "status=revoked&sort=last_seen&dir=desc",
        DEVICES_TAB_MS,
    ),
    Scenario("devices: search 00042", "devices", "q=00042", DEVICES_TAB_MS),
    Scenario("devices: search, no match", "devices", "q=99999", DEVICES_TAB_MS),
    Scenario("devices: tag site=building-7", "devices", "tag=site%3Dbuilding-7", DEVICES_TAB_MS),
    Scenario("devices: tag batch=b7", "devices", "tag=batch%3Db7", DEVICES_TAB_MS),
    Scenario("devices: rare tag", "devices", "tag=firmware%3D2.4.1-rc3", DEVICES_TAB_MS),
    Scenario("overview: 24 hours", "overview", "", OVERVIEW_MS),
    Scenario("overview: 7 days", "overview", "range=7d", OVERVIEW_MS),
    Scenario("overview: 30 days", "overview", "range=30d", OVERVIEW_MS),
    # No target of its own: held to the Devices tab's.
    Scenario("logs: newest", "logs", "", DEVICES_TAB_MS),
    Scenario("logs: writes only", "logs", "kind=write", DEVICES_TAB_MS),
]


# --- environment ----------------------------------------------------------------------


def bench_environment(args) -> dict[str, str]:
    return {
        "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
        "REDIS_URL": args.redis,
        "CELERY_BROKER_URL": args.redis,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CA_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }


# --- data -----------------------------------------------------------------------------


def fill_devices(cursor, connector_id: str, count: int, first: int) -> None:
    """`count` devices of one connector in one INSERT … SELECT; identities from `first`."""
    from core.sql import columns
    from devices.models import Device

    fields = (
        "connector",
        "identity",
        "status",
        "tags",
        "name",
        "auth_mode",
        "activation_expires_at",
        "provisioned_at",
        "first_seen_at",
        "last_seen_at",
        "last_ip",
        "credential_version",
        "created_at",
    )
    # n % 20: 0–11 provisioned, 12–15 whitelisted, 16–17 expired, 18–19 revoked.
    status = f"""CASE WHEN n %% 20 < 12 THEN '{Device.PROVISIONED}'
                      WHEN n %% 20 < 16 THEN '{Device.WHITELISTED}'
                      WHEN n %% 20 < 18 THEN '{Device.EXPIRED}'
                      ELSE '{Device.REVOKED}' END"""
    seen = "n %% 20 < 12 OR n %% 20 >= 18"
    cursor.execute(
        f"""
        INSERT INTO {Device._meta.db_table} ({", ".join(columns(Device, *fields))})
        SELECT %(connector)s,
               lpad(n::text, %(digits)s, '0'),
               {status},
               jsonb_build_array(
                   jsonb_build_object('name', 'site', 'value', 'building-' || n %% 50),
                   jsonb_build_object('name', 'batch', 'value', 'b' || n / 20000))
               || CASE WHEN n %% 997 = 0
                       THEN jsonb_build_array(
                           jsonb_build_object('name', 'firmware', 'value', '2.4.1-rc3'))
                       ELSE '[]'::jsonb END,
               CASE WHEN n %% 3 = 0 THEN '' ELSE 'Sensor ' || n END,
               CASE WHEN {seen} THEN 'token' ELSE '' END,
               CASE WHEN n %% 20 BETWEEN 16 AND 17 THEN now() - interval '2 days'
                    ELSE now() + interval '1 day' END,
               CASE WHEN {seen} THEN now() - (n %% 43200) * interval '1 minute' END,
               CASE WHEN {seen} THEN now() - (n %% 43200) * interval '1 minute' END,
               CASE WHEN {seen} THEN now() - (n * 7919 %% 43200) * interval '1 minute' END,
               CASE WHEN {seen} THEN '198.51.100.7'::inet END,
               CASE WHEN {seen} THEN 1 ELSE 0 END,
               now() - (%(last)s - n) * interval '2 seconds'
        FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n
        """,  # noqa: S608  (names from the models, values as parameters)
        {
            "connector": connector_id,
            "digits": IDENTITY_DIGITS,
            "first": first,
            "last": first + count - 1,
        },
    )


def fill_events(cursor, connector_id: str, count: int) -> None:
    """`count` log lines of one connector over the last 30 days, newest last."""
    from audit.models import Event
    from core.sql import columns

    fields = ("connector", "identity", "kind", "reason", "source_ip", "created_at")
    cursor.execute(
        f"""
        INSERT INTO {Event._meta.db_table} ({", ".join(columns(Event, *fields))})
        SELECT %(connector)s,
               lpad((n * 7919 %% 1000000 + 1)::text, %(digits)s, '0'),
               CASE WHEN n %% 20 < 9 THEN '{Event.WRITE}'
                    WHEN n %% 20 < 15 THEN '{Event.PROVISION}'
                    WHEN n %% 20 < 18 THEN '{Event.PROVISION_FAILED}'
                    ELSE '{Event.AUTH_FAILED}' END,
               CASE WHEN n %% 20 = 15 THEN 'identity is not whitelisted'
                    WHEN n %% 20 = 16 THEN 'activation window has passed'
                    WHEN n %% 20 = 17 THEN 'device is revoked'
                    WHEN n %% 20 >= 18 THEN 'unknown token'
                    ELSE '' END,
               ('198.51.100.' || (n %% 200 + 1))::inet,
               now() - (%(count)s - n) * (interval '30 days' / %(count)s)
        FROM generate_series(1, %(count)s::bigint) AS n
        """,  # noqa: S608  (names from the models, values as parameters)
        {"connector": connector_id, "digits": IDENTITY_DIGITS, "count": count},
    )


def prepare(args):
    """Migrate, make a maker and two connectors, fill the tables; (client, connector id)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts.services import grant_device_maker
    from connectors.models import Connector

    call_command("migrate", verbosity=0)
    maker = get_user_model().objects.create_user("bench")
    grant_device_maker(maker)
    big = Connector.objects.create(
        name="Bench fleet", owner=maker, identity_type="base10", identity_length=IDENTITY_DIGITS
    )
    other = Connector.objects.create(
        name="Bench other", owner=maker, identity_type="base10", identity_length=IDENTITY_DIGITS
    )
    started = time.monotonic()
    with connection.cursor() as cursor:
        fill_devices(cursor, big.pk, args.devices, 1)
        fill_devices(cursor, other.pk, args.other_devices, 1)
        fill_events(cursor, big.pk, args.events)
        fill_events(cursor, other.pk, args.other_events)
        # Fresh statistics, as autovacuum would have them on a database this size.
        cursor.execute("VACUUM ANALYZE")
    print(
        f"filled {args.devices:,} + {args.other_devices:,} devices and {args.events:,} + "
        f"{args.other_events:,} events in {time.monotonic() - started:.0f} s"
    )
    client = Client()
    client.force_login(maker)
    return client, big.pk


# --- measuring ------------------------------------------------------------------------


class SqlClock:
    """Time spent in the database and statements run, while installed."""

    def __init__(self):
        self.seconds = 0.0
        self.statements = 0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.statements += 1


def measure(client, connector_id: str, scenario: Scenario) -> tuple[float, float, int]:
    """(server ms, SQL ms, statements) of one request."""
    from django.db import connection

    path = f"/connectors/{connector_id}/{scenario.page}/"
    if scenario.query:
        path += f"?{scenario.query}"
    clock = SqlClock()
    with connection.execute_wrapper(clock):
        started = time.perf_counter()
        response = client.get(path)
        elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    return elapsed * 1000, clock.seconds * 1000, clock.statements


def run(client, connector_id: str, rounds: int) -> tuple[dict[str, list], dict[str, float]]:
    """The timed rounds of every scenario, and the server ms of each one's first look."""
    results: dict[str, list] = {scenario.name: [] for scenario in SCENARIOS}
    # Warm-up: connections, templates, caches, and the overview's counts of the hours
    # and days that are over (kept from the first look on).
    first = {scenario.name: measure(client, connector_id, scenario)[0] for scenario in SCENARIOS}
    for _ in range(rounds):
        for scenario in SCENARIOS:
            results[scenario.name].append(measure(client, connector_id, scenario))
    return results, first


def report(results: dict, first: dict, runs: int) -> bool:
    rows = []
    met_all = True
    for scenario in SCENARIOS:
        measured = results[scenario.name]
        server = [ms for ms, _, _ in measured]
        sql = [ms for _, ms, _ in measured]
        statements = sorted({count for _, _, count in measured})
        met = statistics.median(server) < scenario.target_ms
        met_all = met_all and met
        rows.append(
            [
                scenario.name,
                harness.spread(server, 1),
                harness.spread(sql, 1),
                "/".join(map(str, statements)),
                f"< {scenario.target_ms}: {'met' if met else 'MISSED'}",
                f"{first[scenario.name]:.1f}",
            ]
        )
    print()
    print(f"server time per request, median of {runs} runs, range in brackets")
    harness.print_rows(
        ["page", "server ms", "SQL ms", "statements", "target ms", "first look ms"], rows
    )
    return met_all


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--other-devices", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--other-events", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=7, help="timed rounds of every page")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="bench_console")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    harness.recreate_database(args.postgres, args.database)
    harness.flush_redis(args.redis)
    os.environ.update(bench_environment(args))
    try:
        client, connector_id = prepare(args)
        results, first = run(client, connector_id, args.runs)
        met = report(results, first, args.runs)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args.postgres, args.database)
    if not met:
        raise SystemExit(1)


def drop_database(postgres_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{postgres_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
