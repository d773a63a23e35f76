"""The laptop default against `make run` itself: SQLite, no Redis, make run's processes.

    .venv/bin/python bench/laptop.py [--runs 3] [--duration 10] [--warmup 2]

Makes a fresh var/ folder in a temporary directory (keys by `portal.setup_local`,
the SQLite database, the cache), migrates it and sets up the fleet of
bench/device_api.py through Gatehouse's own services. Then starts
`manage.py runlocal`, the command `make run` ends in, which starts every
process of the Procfile (web, asgi, worker, beat) with `bench.settings`
(Gatehouse's settings plus the bare view at /bench/bare) and rate limits raised
out of the way, and drives the bare view, token writes, Basic writes and
activations with wrk. CPU is counted for every process below the runner.

Nothing outside the temporary folder is touched: no PostgreSQL, no Redis.
Targets: token writes ≥ 0.4 × the bare view, activations ≥ 0.15 × the bare view.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import device_api, harness, load  # noqa: E402  (needs BASE_DIR on the path)

TARGETS = [
    ("token write", "bare view", 0.4),
    ("activation", "bare view", 0.15),
]
# An activation takes one identity; the laptop's SQLite stays far below this per second.
MAX_ACTIVATIONS_PER_SECOND = 1000


def laptop_environment(var: Path) -> dict[str, str]:
    """make run's environment: nothing configured but a private var/ and raised limits."""
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEVICE_WRITE_QUEUE"):
        os.environ.pop(name, None)
    return {
        "GATEHOUSE_VAR_DIR": str(var),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_WRITE": device_api.UNLIMITED,
        "RATE_LIMIT_ACTIVATE": device_api.UNLIMITED,
        "RATE_LIMIT_ACTIVATE_IP": device_api.UNLIMITED,
    }


def start_runner(args, env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    runner = harness.start(
        [
            sys.executable, "manage.py", "runlocal", "--port", str(port),
            "--asgi-port", str(harness.free_port()), "--https-port", "0",
            "--mqtt-port", str(harness.free_port()), "--mqtt-cert-port", "0",
            *(["--web-workers", str(args.web_workers)] if args.web_workers else []),
            *(["--threads", str(args.threads)] if args.threads else []),
        ],
        env,
        log_path,
    )  # fmt: skip
    harness.wait_until_answers(runner, port, log_path, device_api.BARE_HOST, seconds=120)
    return runner


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per scenario")
    parser.add_argument("--duration", type=int, default=10, help="seconds per timed run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=48, help="keep-alive connections")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--web-workers", type=int, help="gunicorn processes (default: runlocal's own)"
    )
    parser.add_argument("--threads", type=int, help="threads per web process (runlocal's own)")
    parser.add_argument("--token-devices", type=int, default=256)
    parser.add_argument("--password-devices", type=int, default=16)
    parser.add_argument(
        "--python-client", action="store_true", help="use the Python client even if wrk exists"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    wrk = None if args.python_client else load.find_wrk()
    if wrk is None:
        print("load from the Python client (slower than wrk: numbers are lower bounds)")
    per_thread = MAX_ACTIVATIONS_PER_SECOND * max(args.duration, args.warmup) + 1000
    pool_size = 2 * args.runs * (args.wrk_threads if wrk else 1) * per_thread

    workdir = Path(tempfile.mkdtemp(prefix="bench-laptop-"))
    env = laptop_environment(workdir / "var")
    os.environ.update(env)
    subprocess.run([sys.executable, "-m", "portal.setup_local"], cwd=BASE_DIR, check=True)
    started = time.monotonic()
    fixture = device_api.prepare_data(args, pool_size)
    print(
        f"SQLite in {workdir / 'var'}: {args.token_devices} token devices, "
        f"{args.password_devices} password devices, {pool_size} whitelisted for activation "
        f"({time.monotonic() - started:.0f} s)",
        flush=True,
    )
    token_host = f"{fixture.token_connector}.devices.localhost"
    password_host = f"{fixture.password_connector}.devices.localhost"
    write = "/api:v1/stack/alias"
    pool = load.IdentityPool(pool_size, per_thread, digits=device_api.IDENTITY_DIGITS)
    scenarios = [
        load.Scenario("bare view", device_api.BARE_HOST, "/bench/bare", 204, body="myalias=42"),
        load.Scenario(
            "token write", token_host, write, 204, "myalias=42", fixture.token_authorizations
        ),
        load.Scenario(
            "basic write", password_host, write, 204, "myalias=42", fixture.basic_authorizations
        ),
        load.Scenario("activation", token_host, "/provision/activate", 200, activation_pool=pool),
    ]

    port = harness.free_port()
    log_path = workdir / "runlocal.log"
    runner = start_runner(args, env, port, log_path)
    print(
        f"make run's processes on 127.0.0.1:{port} (SQLite, no Redis); load: "
        + (f"wrk, {args.wrk_threads} thread(s)" if wrk else "Python client")
        + f", {args.connections} connections",
        flush=True,
    )
    meter = harness.CpuMeter({"make run": lambda: harness.tree(runner.pid)})
    acknowledged_writes = 0
    try:
        for authorization in fixture.basic_authorizations:
            status, _ = harness.request(
                "127.0.0.1", port, "POST", write, password_host, "myalias=1", authorization
            )
            if status != 204:
                raise SystemExit(f"password warm-up write answered {status}")
            acknowledged_writes += 1
        results, acknowledged = load.run_scenarios(
            load.loader(wrk), scenarios, args.runs, port, args, workdir, meter
        )
    finally:
        harness.stop(runner, signal.SIGINT)
    log = log_path.read_text()
    if "Traceback" in log:
        print(f"make run said:\n{log[-3000:]}")

    valid = harness.print_table(scenarios, results, TARGETS)
    acknowledged_writes += acknowledged["token write"] + acknowledged["basic write"]
    activations = args.token_devices + args.password_devices + acknowledged["activation"]
    valid = device_api.check_stored(acknowledged_writes, activations) and valid
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
