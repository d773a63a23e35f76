"""What one device costs Mosquitto's dynamic-security plugin as the broker grows.

    .venv/bin/python bench/dynsec_growth.py [--devices 2000] [--step 250] [--strace]

Starts its own Mosquitto (mqtt.broker) and sends, `--step` devices per control
message, each device's `createRole` and `createClient` as `mqtt_sync` does,
printing after each message the clients on the broker, the seconds it took,
milliseconds per device and the size of the plugin file. With `--strace` (strace
installed) it also counts the broker's writes of that file: Mosquitto 2.0 rewrites
it after every command, so one write per command, each of the whole file.
No database, no Django: the broker alone.
"""

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mqtt import broker, dynsec, topics  # noqa: E402  (needs the repository on the path)

CONNECTOR = "dt" + "0" * 32


def commands(first: int, count: int) -> list[dict]:
    made = []
    for n in range(first, first + count):
        identity = f"growth-{n}"
        role = topics.role_name(CONNECTOR, identity)
        made += [
            {
                "command": "createRole",
                "rolename": role,
                "acls": topics.device_acls(CONNECTOR, identity),
            },
            {
                "command": "createClient",
                "username": topics.username(CONNECTOR, identity),
                "password": secrets.token_urlsafe(16),
                "roles": [{"rolename": role}],
            },
        ]
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--step", type=int, default=250)
    parser.add_argument("--strace", action="store_true", help="count the plugin file's writes")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gatehouse-bench-dynsec-"))
    mosquitto = broker.Broker(folder).start()
    plugin_file = folder / "dynamic-security.json"
    trace = None
    if args.strace:
        trace = subprocess.Popen(
            ["strace", "-f", "-e", "trace=openat,rename", "-o", str(folder / "strace.txt"),
             "-p", str(mosquitto.process.pid)],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)
    admin = dynsec.Dynsec(
        mosquitto.url, mosquitto.admin_username, mosquitto.admin_password, timeout=600
    )
    sent = 0
    try:
        print("clients  seconds  ms/device  plugin file (bytes)")
        while sent < args.devices:
            batch = commands(sent, args.step)
            started = time.monotonic()
            refused = [answer for answer in admin.run(batch) if not answer.ok]
            took = time.monotonic() - started
            sent += args.step
            note = f"  {len(refused)} refused" if refused else ""
            print(
                f"{sent:7d}  {took:7.2f}  {took * 1000 / args.step:9.1f}  "
                f"{plugin_file.stat().st_size:>12}{note}",
                flush=True,
            )
    finally:
        admin.close()
        if trace is not None:
            time.sleep(0.5)
            trace.terminate()
            trace.wait()
        mosquitto.stop()
    if trace is not None:
        lines = (folder / "strace.txt").read_text().splitlines()
        writes = [line for line in lines if str(plugin_file) in line and "O_TRUNC" in line]
        print(f"{sent * 2} commands; the plugin file was opened for rewriting {len(writes)} times")


if __name__ == "__main__":
    main()
