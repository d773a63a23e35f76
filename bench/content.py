"""Content-area download speed: Gatehouse under gunicorn next to nginx serving the same file.

    .venv/bin/python bench/content.py [--runs 3] [--size-mb 100] [--range-mb 8]

Uploads one random file (100 MB) to a token connector's content area through
Gatehouse's own service, activates a device, and starts gunicorn (as the README's
production section shapes it, on a free loopback port) and nginx serving the very
file Gatehouse stored, from disk, with `sendfile on`. Then, in each run and for each
server in turn, one client on one keep-alive connection downloads the file whole,
and again in consecutive ranges (`Range: bytes=<first>-<last>`, 8 MB each), as a
device resuming a firmware download does. Every download is checked for its length.

Prints MB/s per scenario and server (median, range in brackets) and the ratio
Gatehouse / nginx of each run. Both servers and the client share this machine's
cores, so the ratio is the number to read, not the absolute speed.

Uses a throwaway SQLite database and media folder under a temporary directory;
needs nginx (Debian's /usr/sbin/nginx).
"""

import argparse
import getpass
import http.client
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402

MB = 1024 * 1024
BLOCK = MB


def environment(scratch: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{scratch}/bench.sqlite3",
        "GATEHOUSE_VAR_DIR": str(scratch / "var"),
        "MEDIA_ROOT": str(scratch / "media"),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CA_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }


def setup(size: int, scratch: Path) -> tuple[str, str, Path]:
    """(device host, token, path of the stored file) after the upload and activation."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files import File
    from django.core.management import call_command

    from audit.events import Actor
    from connectors import content
    from connectors.models import Connector
    from devices import services

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    connector = Connector.objects.create(
        name="bench content", owner=user, identity_type="base10", identity_length=8
    )
    source = scratch / "firmware.bin"
    with source.open("wb") as out:
        for _ in range(size // BLOCK):
            out.write(os.urandom(BLOCK))
    with source.open("rb") as handle:
        upload = File(handle, name="firmware.bin")
        upload.content_type = "application/octet-stream"
        stored, _ = content.upload(connector, upload, actor=Actor(None, "bench"))
    source.unlink()
    services.whitelist_device(connector, "00000001")
    token = services.activate_device(connector, "00000001", None, "127.0.0.1")
    return connector.device_host, token, Path(stored.file.path)


def start_nginx(path: Path, run_dir: Path, port: int) -> subprocess.Popen:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    temp = " ".join(
        f"{kind}_temp_path {run_dir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = run_dir / "nginx.conf"
    # Run as root, nginx's workers would be nobody, who cannot read the temporary folder.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    config.write_text(
        f"""{user}
worker_processes 1;
daemon off;
pid {run_dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    {temp}
    server {{
        listen 127.0.0.1:{port};
        location = /firmware.bin {{
            alias {path};
            default_type application/octet-stream;
        }}
    }}
}}
"""
    )
    log = run_dir / "nginx.log"
    process = harness.start([binary, "-e", "stderr", "-p", str(run_dir), "-c", str(config)],
                            dict(os.environ), log)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if download(port, "/firmware.bin", "localhost", {}, [(0, 0)]) == 1:
                return process
        except OSError:
            time.sleep(0.2)
    harness.stop(process)
    raise SystemExit(f"nginx did not answer:\n{log.read_text()}")


def download(port: int, path: str, host: str, headers: dict, ranges) -> int:
    """Bytes read over one keep-alive connection: the whole file when `ranges` is
    None, else each (first, last) range in turn."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    total = 0
    try:
        for first_last in ranges or [None]:
            sent = dict(headers, Host=host)
            if first_last is not None:
                sent["Range"] = f"bytes={first_last[0]}-{first_last[1]}"
            connection.request("GET", path, headers=sent)
            response = connection.getresponse()
            expected = 206 if first_last is not None else 200
            if response.status != expected:
                raise SystemExit(f"{path}: {response.status} {response.read(200)!r}")
            while block := response.read(BLOCK):
                total += len(block)
    finally:
        connection.close()
    return total


def timed(size: int, fetch) -> float:
    started = time.perf_counter()
    got = fetch()
    elapsed = time.perf_counter() - started
    if got != size:
        raise SystemExit(f"read {got} bytes, expected {size}")
    return size / MB / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs")
    parser.add_argument("--size-mb", type=int, default=100, help="the file's size")
    parser.add_argument("--range-mb", type=int, default=8, help="each range's size")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="gatehouse-bench-content-"))
    env = environment(scratch)
    os.environ.update(env)  # this process sets up the same database and media folder
    size = args.size_mb * MB
    host, token, stored = setup(size, scratch)
    part = args.range_mb * MB
    ranges = [(first, min(first + part, size) - 1) for first in range(0, size, part)]

    app_port, nginx_port = harness.free_port(), harness.free_port()
    gunicorn = harness.start(
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--worker-class",
         "gthread", "--workers", str(args.workers), "--threads", str(args.threads),
         "--bind", f"127.0.0.1:{app_port}", "--log-level", "warning", "--chdir", str(BASE_DIR)],
        env, scratch / "gunicorn.log",
    )  # fmt: skip
    nginx = None
    try:
        harness.wait_until_answers(gunicorn, app_port, scratch / "gunicorn.log", host)
        nginx = start_nginx(stored, scratch, nginx_port)
        auth = {"Authorization": f"Token {token}"}
        servers = {
            "Gatehouse": (app_port, "/provision/download?id=firmware.bin", host, auth),
            "nginx": (nginx_port, "/firmware.bin", "localhost", {}),
        }
        scenarios = {"whole": None, f"{args.range_mb} MB ranges": ranges}
        speeds = {(scenario, server): [] for scenario in scenarios for server in servers}
        for run in range(args.runs):
            for scenario, wanted in scenarios.items():
                for server, (port, path, name, headers) in servers.items():
                    speed = timed(size, lambda: download(port, path, name, headers, wanted))  # noqa: B023
                    speeds[(scenario, server)].append(speed)
            print(f"run {run + 1} of {args.runs} done", file=sys.stderr)
    finally:
        for process in (nginx, gunicorn):
            if process is not None:
                harness.stop(process)
        shutil.rmtree(scratch, ignore_errors=True)

    print()
    print(f"{args.size_mb} MB file, one client, one keep-alive connection; "
          f"median of {args.runs} run(s), range in brackets")  # fmt: skip
    rows = []
    for scenario in scenarios:
        ours, theirs = speeds[(scenario, "Gatehouse")], speeds[(scenario, "nginx")]
        ratios = [mine / other for mine, other in zip(ours, theirs, strict=True)]
        rows.append(
            [scenario, harness.spread(ours, 0), harness.spread(theirs, 0),
             harness.spread(ratios, 2)]
        )  # fmt: skip
    harness.print_rows(["download", "Gatehouse MB/s", "nginx MB/s", "Gatehouse / nginx"], rows)


if __name__ == "__main__":
    main()
