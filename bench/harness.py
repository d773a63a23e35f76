"""What every bench/ script shares: its processes, their CPU, fresh databases, the report.

- processes: `start` (a command writing to its own log file, started as `make
  run` starts its own: core.processes), `wait_until_answers`, `stop`,
  `run_child` (a measurement in a fresh interpreter);
- CPU: `process_cpu`, `tree` (a process and its descendants), `CpuMeter` over
  named groups of processes (`PostgresBackends` counts a database's backends);
- databases: `recreate_database` (PostgreSQL, dropped and created), `flush_redis`;
- report: `spread` (median and range), `verdict`, `print_table` (requests/s,
  latency, ratios to the bare view, CPU) and its targets.

Numbers are ratios to a baseline measured in the same run, over several runs:
the machine's other load moves every absolute number.
"""

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from core import processes
from core.processes import free_port  # noqa: F401  (the scripts' one way to a free port)

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_SECONDS = 15


# --- processes -------------------------------------------------------------------------


def start(command: list[str] | str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """`command` (an argv list or a Procfile line) in the repository, its output in
    `log_path`, in a session of its own (so stop() ends what it started, and Ctrl-C
    on the bench reaches only the bench)."""
    with log_path.open("w") as log:
        return processes.start(command, env=env, output=log)


def request(address, port, method, path, host, body="", authorization=None) -> tuple[int, bytes]:
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


def wait_until_answers(
    process: subprocess.Popen, port: int, log_path: Path, host: str, seconds: float = 30
) -> None:
    """Until GET /timestamp on `port` answers 200; exits the bench if `process` dies."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited:\n{log_path.read_text()}")
        try:
            if request("127.0.0.1", port, "GET", "/timestamp", host)[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit(f"no answer on port {port} within {seconds:g} s:\n{log_path.read_text()}")


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    """Ask the process to stop; its whole session is killed after STOP_SECONDS."""
    processes.stop([process], signum, STOP_SECONDS)


def run_child(arguments: list[str], env: dict[str, str]) -> dict:
    """A measurement in a fresh interpreter (so its peak memory is its own); it prints
    one JSON line last."""
    done = subprocess.run(
        [sys.executable, *arguments],
        cwd=BASE_DIR,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- CPU --------------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """`pid` and every process below it, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [pid], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found += sorted(frontier)
    return found


class PostgresBackends:
    """The pids of the PostgreSQL backends serving `database` (but this one's own)."""

    def __init__(self, postgres_url: str, database: str):
        import psycopg

        self.database = database
        self.conn = psycopg.connect(f"{postgres_url.rstrip('/')}/{database}", autocommit=True)

    def __call__(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        ).fetchall()
        return [pid for (pid,) in rows]

    def close(self) -> None:
        self.conn.close()


def redis_server_pid(redis_url: str) -> int | None:
    """The pid of the Redis server at `redis_url`, when it runs on this machine."""
    import redis

    try:
        info = redis.Redis.from_url(redis_url).info("server")
    except redis.RedisError:
        return None
    pid = info.get("process_id")
    return pid if pid and Path(f"/proc/{pid}").exists() else None


class CpuMeter:
    """CPU used by named groups of processes, each group found afresh at every snapshot.

    Throughput on a busy machine swings with everyone else's load; CPU per
    request barely does, so it is the steadier way to compare scenarios.
    """

    def __init__(self, groups: dict[str, Callable[[], Iterable[int]]]):
        self.groups = groups

    def snapshot(self) -> dict[str, dict[int, float]]:
        return {
            name: {pid: process_cpu(pid) for pid in pids()} for name, pids in self.groups.items()
        }

    def since(self, before: dict[str, dict[int, float]]) -> dict[str, float]:
        """CPU seconds of each group since `before`; processes born since count whole."""
        after = self.snapshot()
        return {
            name: sum(cpu - before[name].get(pid, 0.0) for pid, cpu in now.items())
            for name, now in after.items()
        }

    def close(self) -> None:
        for pids in self.groups.values():
            if hasattr(pids, "close"):
                pids.close()


# --- databases --------------------------------------------------------------------------


def recreate_database(postgres_url: str, name: str, synchronous_commit: str = "on") -> None:
    """Drop and create the PostgreSQL database `name` on the server at `postgres_url`."""
    import psycopg

    with psycopg.connect(f"{postgres_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
        if synchronous_commit != "on":
            conn.execute(f"ALTER DATABASE {name} SET synchronous_commit = {synchronous_commit}")


def flush_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


# --- report -----------------------------------------------------------------------------


def spread(values: list[float], digits: int) -> str:
    """The median, and the range in brackets when there are several values."""
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:.{digits}f}"
    return f"{middle:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def ratio(value: float, reference: float) -> float:
    """value / reference, and 0 for a run whose reference measured nothing."""
    return value / reference if reference else 0.0


def verdict(met: bool, target: str) -> str:
    return f"target {target}: {'met' if met else 'MISSED'}"


def print_rows(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * width for width in widths], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def print_table(scenarios, results: dict, targets: list[tuple[str, str, float]]) -> bool:
    """The table of load.Scenario results against the first scenario (the bare view),
    then each (scenario, reference, minimum ratio) target as met or MISSED on the
    median; returns whether every response was the expected status."""
    baseline = results[scenarios[0].name]
    bare = [result.rate for result in baseline]
    bare_cpu = [result.cpu_ms for result in baseline]
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
                spread([ratio(r.rate, b) for r, b in zip(measured, bare, strict=True)], 2),
                spread([result.cpu_ms for result in measured], 2),
                spread([ratio(c, r.cpu_ms) for r, c in zip(measured, bare_cpu, strict=True)], 2),
                str(wrong) if not wrong else f"{wrong} !!",
            ]
        )
    header = ["scenario", "requests/s", "p50 ms", "p99 ms", "× bare", "CPU ms/req", "CPU × bare"]
    print()
    print(f"median of {len(bare)} run(s), range in brackets" if len(bare) > 1 else "one run")
    print_rows([*header, "unexpected"], rows)
    print()
    print("targets: measured ratio of requests/s, then the ratio CPU per request predicts")
    for name, reference, minimum in targets:
        if name not in results or reference not in results:
            continue
        pairs = list(zip(results[name], results[reference], strict=True))
        ratios = [ratio(mine.rate, theirs.rate) for mine, theirs in pairs]
        predicted = [ratio(theirs.cpu_ms, mine.cpu_ms) for mine, theirs in pairs]
        met = "met" if statistics.median(ratios) >= minimum else "MISSED"
        print(
            f"  {name} ≥ {minimum} × {reference}: {spread(ratios, 2)}  {met}"
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
