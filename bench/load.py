"""Load for bench/: scenarios of one repeated request, driven by wrk or a Python client.

`run_scenarios` measures each scenario after a warm-up, run after run
interleaved, with the CPU the server side spent meanwhile (harness.CpuMeter);
harness.print_table reports them.
"""

import asyncio
import functools
import json
import os
import shutil
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("device_api.lua")


@dataclass
class IdentityPool:
    """Whitelisted identities 1..size, handed out in disjoint slices, one per load run."""

    size: int
    per_thread: int
    digits: int = 8
    next_identity: int = 1

    def take(self, threads: int) -> int:
        first = self.next_identity
        self.next_identity += threads * self.per_thread
        if self.next_identity - 1 > self.size:
            raise SystemExit("activation pool exhausted: raise --pool-size")
        return first


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
    activation_pool: IdentityPool | None = None


@dataclass
class Result:
    """What one timed run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    socket_errors: int
    # CPU seconds the server side spent during the run, per group of processes
    # (gunicorn, the ingest, PostgreSQL's backends, Redis: whatever the meter counts).
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """Server CPU per request, in milliseconds."""
        return sum(self.cpu.values()) / self.requests * 1000 if self.requests else 0.0

    def unexpected(self, expected: int) -> int:
        wrong = sum(count for status, count in self.statuses.items() if status != expected)
        return wrong + self.socket_errors


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


def loader(wrk: str | None):
    """The load function run_scenarios calls: wrk when there is one."""
    return functools.partial(run_wrk, wrk) if wrk else run_python


def run_scenarios(load, scenarios, runs, port, args, workdir, meter) -> tuple[dict, dict]:
    """Each scenario `runs` times, interleaved: a warm-up of `args.warmup` seconds,
    then a timed run of `args.duration` with the meter's CPU. Prints a line per run.

    Returns the timed results by scenario name, and how many responses of each
    scenario (warm-ups included) had the expected status.
    """
    results = {scenario.name: [] for scenario in scenarios}
    acknowledged = dict.fromkeys(results, 0)
    for number in range(1, runs + 1):
        for scenario in scenarios:
            warm = load(scenario, port, args.warmup, args, workdir)
            before = meter.snapshot()
            result = load(scenario, port, args.duration, args, workdir)
            result.cpu = meter.since(before)
            results[scenario.name].append(result)
            for measured in (warm, result):
                acknowledged[scenario.name] += measured.statuses.get(scenario.expected_status, 0)
            requests = max(result.requests, 1)
            split = " + ".join(
                f"{cpu / requests * 1000:.2f} {name}" for name, cpu in result.cpu.items()
            )
            print(
                f"run {number}  {scenario.name:<12} {result.rate:8.0f} req/s  "
                f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
                f"CPU {result.cpu_ms:5.2f} ms/req ({split})  "
                f"(warm-up {warm.rate:.0f} req/s)",
                flush=True,
            )
    return results, acknowledged


# --- wrk ----------------------------------------------------------------------------------


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
        command += [str(first), str(per_thread), str(scenario.activation_pool.digits)]
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
        digits = scenario.activation_pool.digits
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
            body = urllib.parse.urlencode({"id": f"{pool_first + number:0{digits}d}"})
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
