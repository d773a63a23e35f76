"""A million-row CSV whitelist import against a plain COPY (issue 3).

    .venv/bin/python bench/imports.py [--rows 1000000] [--postgres postgres://postgres@127.0.0.1:5432]

Drops and recreates the PostgreSQL database `bench_imports`, migrates it and
writes a CSV file in the import format (`ID,TLS Client Certificate,Tags`, no
certificates, two tags on every row). Then, each in a fresh Python process so
that its peak memory (ru_maxrss) is its own:

1. baseline: the same rows loaded into the devices table by one plain `COPY`
   from a file prepared beforehand (no parsing, no checks), then truncated;
2. import: the upload stored as `start_import` stores it, then the engine
   (`devices.imports.run_import`) in-process, as a worker runs it;
3. queries over the imported million: the first page of the device list
   (keyset, both directions), the page after it, and identity searches.

Prints the numbers, the targets and whether each was met. See bench/README.md.
"""

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402  (needs BASE_DIR on the path)

DATABASE_NAME = "bench_imports"
HEADER = "ID,TLS Client Certificate,Tags\n"
TARGET_IMPORT_SECONDS = 60.0
TARGET_COPY_RATIO = 10.0
TARGET_PEAK_MB = 300.0
TARGET_QUERY_MS = 200.0


def tags_of(n: int) -> str:
    return json.dumps(
        [{"name": "group", "value": f"g{n % 100}"}, {"name": "claim_code", "value": f"c{n:08d}"}]
    )


# --- the parent: prepare, run each measurement in its own process, report -------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, Path(args.work))
        return

    work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-imports-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": f"{args.postgres.rstrip('/')}/{DATABASE_NAME}",
        "MEDIA_ROOT": str(work / "media"),
        # Fresh per run, so the bench needs no generated var/ keys.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CA_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    try:
        print(f"preparing {DATABASE_NAME} and {args.rows:,} rows in {work} …", flush=True)
        harness.recreate_database(args.postgres, DATABASE_NAME)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True
        )
        ids = child("setup", work, env)
        started = time.perf_counter()
        csv_size, copy_size = write_files(work, args.rows, ids["copy_connector"])
        print(
            f"files written in {time.perf_counter() - started:.1f} s: CSV {csv_size / 1e6:.0f} MB,"
            f" COPY {copy_size / 1e6:.0f} MB",
            flush=True,
        )
        load_before = os.getloadavg()[0]
        baseline = child("copy", work, env)
        imported = child("import", work, env)
        queries = child("queries", work, env)
        load = (load_before, os.getloadavg()[0])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(args.rows, baseline, imported, queries, load)


def child(kind: str, work: Path, env: dict) -> dict:
    """Run one measurement in a fresh interpreter; it prints one JSON line last."""
    return harness.run_child([__file__, "--measure", kind, "--work", str(work)], env)


def write_files(work: Path, rows: int, copy_connector: str) -> tuple[int, int]:
    """The CSV to import and, for the baseline, the same rows in COPY's text format."""
    now = datetime.now(UTC)
    deadline = (now + timedelta(days=1)).isoformat()
    stamp = now.isoformat()
    csv_path, copy_path = work / "identities.csv", work / "devices.copy"
    with open(csv_path, "w", newline="") as csv_file, open(copy_path, "w") as copy_file:
        csv_file.write(HEADER)
        for n in range(1, rows + 1):
            identity, tags = f"{n:08d}", tags_of(n)
            quoted = tags.replace('"', '""')
            csv_file.write(f'{identity},,"{quoted}"\n')
            copy_file.write(
                f"{copy_connector}\t{identity}\twhitelisted\t{tags}\t\t\t{deadline}\t0\t{stamp}\n"
            )
    return csv_path.stat().st_size, copy_path.stat().st_size


def report(rows: int, baseline: dict, imported: dict, queries: dict, load: tuple) -> None:
    whole = imported["store_s"] + imported["import_s"]
    ratio = imported["import_s"] / baseline["copy_s"]
    lines = [
        ("plain COPY into the devices table", f"{baseline['copy_s']:.1f} s", ""),
        ("", f"{rows / baseline['copy_s']:,.0f} rows/s", ""),
        ("", f"peak RSS {baseline['peak_mb']:.0f} MB", ""),
        ("import: store the upload", f"{imported['store_s']:.1f} s", ""),
        ("import: engine (count, check, stage, write)", f"{imported['import_s']:.1f} s", ""),
        ("", f"{rows / imported['import_s']:,.0f} rows/s", ""),
        (
            "import: whole",
            f"{whole:.1f} s",
            harness.verdict(whole <= TARGET_IMPORT_SECONDS, "≤ 60 s"),
        ),
        ("engine / COPY", f"{ratio:.1f}×", harness.verdict(ratio <= TARGET_COPY_RATIO, "≤ 10×")),
        (
            "import: peak RSS of the process",
            f"{imported['peak_mb']:.0f} MB",
            harness.verdict(imported["peak_mb"] < TARGET_PEAK_MB, "< 300 MB"),
        ),
        ("import: result", f"{imported['status']}, {imported['created']:,} created", ""),
    ]
    for name, timings in queries["queries"].items():
        worst = max(timings["first_ms"], timings["median_ms"])
        lines.append(
            (
                name,
                f"{timings['median_ms']:.1f} ms (first {timings['first_ms']:.1f} ms)",
                harness.verdict(worst < TARGET_QUERY_MS, "< 200 ms"),
            )
        )
    width = max(len(name) for name, _, _ in lines)
    print(
        f"\n{rows:,} rows, PostgreSQL {queries['server_version']}, {os.cpu_count()} CPUs,"
        f" load average {load[0]:.1f} before and {load[1]:.1f} after (other work competes)\n"
    )
    for name, value, target in lines:
        print(f"{name:<{width}}  {value:<28} {target}")
    for name, plan in queries["plans"].items():
        print(f"\nplan of {name}:\n  " + "\n  ".join(plan))


# --- the children: one measurement each, in a fresh process -----------------------------


def measure(kind: str, work: Path) -> None:
    import django

    django.setup()
    result = {"setup": setup, "copy": load_by_copy, "import": run_engine, "queries": run_queries}[
        kind
    ](work)
    # Linux reports ru_maxrss in kilobytes.
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def setup(work: Path) -> dict:
    from django.contrib.auth import get_user_model

    from connectors.models import Connector

    user = get_user_model().objects.create_user("bench", password=None)
    made = {}
    for role in ("copy", "import"):
        connector = Connector.objects.create(
            name=f"bench {role}", owner=user, identity_type="base10", identity_length=8
        )
        made[f"{role}_connector"] = connector.pk
    return made


def load_by_copy(work: Path) -> dict:
    from django.db import connection, transaction

    columns = (
        "connector_id, identity, status, tags, name, auth_mode, activation_expires_at,"
        " credential_version, created_at"
    )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        with (
            open(work / "devices.copy", "rb") as source,
            cursor.copy(f"COPY devices_device ({columns}) FROM STDIN") as copy,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM devices_device")
        loaded = cursor.fetchone()[0]
        # The import then starts from the same empty table.
        cursor.execute("TRUNCATE devices_device CASCADE")
        cursor.execute("VACUUM ANALYZE devices_device")
    return {"copy_s": elapsed, "loaded": loaded}


def run_engine(work: Path) -> dict:
    from django.core.files import File

    from connectors.models import Connector
    from devices import imports
    from devices.models import WhitelistImport

    connector = Connector.objects.get(name="bench import")
    started = time.perf_counter()
    # What start_import does before it hands a large file to a worker.
    record = WhitelistImport(connector=connector, on_error=WhitelistImport.ABORT)
    with open(work / "identities.csv", "rb") as upload:
        record.file.save("bench.csv", File(upload), save=False)
    record.save()
    stored = time.perf_counter()
    record = imports.run_import(record.pk)
    finished = time.perf_counter()
    return {
        "store_s": stored - started,
        "import_s": finished - stored,
        "status": record.status,
        "created": record.created,
        "errors": record.errors[:3],
    }


def run_queries(work: Path) -> dict:
    from django.db import connection

    from connectors.models import Connector
    from devices.models import Device

    connector = Connector.objects.get(name="bench import")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE devices_device")
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone()
    devices = Device.objects.filter(connector=connector)
    middle = devices.count() // 2
    after = devices.order_by("id").values_list("id", flat=True)[middle] if middle else 0
    cases = {
        "device list, first page (id ascending)": devices.order_by("id")[:50],
        "device list, first page (id descending, as the API)": devices.order_by("-id")[:50],
        "device list, a page deep inside (keyset)": devices.filter(id__gt=after).order_by("id")[
            :50
        ],
        # The Devices tab's and the API's search and tag filter (DeviceQuerySet).
        "search, a full identity": devices.search(connector, "00123456").order_by("-id")[:50],
        "search, part of an identity": devices.search(connector, "12345").order_by("-id")[:50],
        "search, no match": devices.search(connector, "x9y9").order_by("-id")[:50],
        "tag filter, group=g7 (1 row in 100)": devices.tagged("group", "g7").order_by("-id")[:50],
        "tag filter, no match": devices.tagged("group", "none").order_by("-id")[:50],
    }
    timings, plans = {}, {}
    for name, queryset in cases.items():
        runs = []
        for _ in range(11):
            started = time.perf_counter()
            list(queryset.all())  # a fresh clone: no result cache between runs
            runs.append((time.perf_counter() - started) * 1000)
        timings[name] = {"first_ms": runs[0], "median_ms": statistics.median(runs[1:])}
        if name.startswith(("search", "tag")):
            plans[name] = queryset.explain().splitlines()
    return {
        "queries": timings,
        "plans": plans,
        "server_version": server_version,
    }


if __name__ == "__main__":
    main()
