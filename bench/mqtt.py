"""Devices on MQTT against a plain Mosquitto baseline on the same machine.

    .venv/bin/python bench/mqtt.py [--runs 3] [--devices 40] [--sync 1000] [--messages 5000]

Drops and recreates the PostgreSQL database `bench_mqtt` (`--postgres`,
`--database`), starts its own Mosquitto with the dynamic-security plugin on
free loopback ports, and measures, each `--runs` times:

1. provision -> first accepted publish: a device is activated through the
   service the HTTP API calls, `mqtt_sync` (a worker at the default interval)
   creates its broker client, and the device connects and publishes QoS 1;
   against the baseline of connecting and publishing with a client that exists;
2. credentials synced: `--sync` token devices provisioned at once and sent to
   the broker in batches, devices per second, and the broker's round trip for
   a plain client meanwhile (its worst, against its idle median);
3. ingest: `--messages` QoS 1 messages from `--publishers` devices stored by one
   `manage.py mqtt_ingest`, stopped and restarted half way, against a plain
   paho subscriber receiving the same stream; every value stored exactly once?

Prints the medians with their ranges and each target as met or MISSED.
"""

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import harness  # noqa: E402  (needs BASE_DIR on the path)

TARGET_FIRST_PUBLISH_P99 = 1.0
TARGET_SYNC_100K_SECONDS = 60.0
TARGET_INGEST_RATE = 5000.0
TARGET_INGEST_RATIO = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--devices", type=int, default=40, help="provision->publish samples")
    parser.add_argument("--sync", type=int, default=1000, help="devices synced at once")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--publishers", type=int, default=8)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="bench_mqtt")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-mqtt-"))
    harness.recreate_database(args.postgres, args.database)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CA_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
            "GATEHOUSE_VAR_DIR": str(work / "var"),
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_WRITE": "100000000/1",
            "RATE_LIMIT_ACTIVATE": "100000000/1",
            "RATE_LIMIT_ACTIVATE_IP": "100000000/1",
        }
    )
    os.environ.pop("REDIS_URL", None)
    from mqtt import broker

    mosquitto = broker.Broker(work / "broker").start()
    os.environ.update(mosquitto.settings())
    from portal import setup_local

    setup_local.prepare()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        results = {"first": [], "baseline": [], "sync": [], "rtt_idle": [], "rtt_busy": []}
        ingest_rates, plain_rates, exact = [], [], []
        for run in range(args.runs):
            first, baseline = first_publish(mosquitto, args.devices, run)
            results["first"] += first
            results["baseline"] += baseline
            rate, idle, busy = sync_rate(mosquitto, args.sync, run)
            results["sync"].append(rate)
            results["rtt_idle"].append(idle)
            results["rtt_busy"].append(busy)
            stored, plain, once = ingest(mosquitto, work, args.messages, args.publishers, run)
            ingest_rates.append(stored)
            plain_rates.append(plain)
            exact.append(once)
        report(results, ingest_rates, plain_rates, exact, args)
    finally:
        mosquitto.stop()


# --- helpers -----------------------------------------------------------------------------------


def connector(auth_mode="token"):
    from django.contrib.auth import get_user_model

    from connectors.models import Connector, Resource

    owner, _ = get_user_model().objects.get_or_create(username="bench")
    made = Connector.objects.create(name=f"bench {uuid.uuid4().hex[:6]}", owner=owner)
    Resource.objects.create(connector=made, alias="value", format=Resource.NUMBER)
    return made


def provision(made, identity: str) -> str:
    from devices import services

    services.whitelist_device(made, identity)
    return services.activate_device(made, identity, None, "127.0.0.1")


def client(mosquitto, username, password, on_message=None):
    """A connected paho client, or None when the broker refused it."""
    import paho.mqtt.client as paho

    connected = threading.Event()
    outcome = {}
    made = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4()}")
    made.username_pw_set(username, password)
    made.on_connect = lambda c, u, f, rc, p: (outcome.setdefault("rc", rc), connected.set())
    if on_message:
        made.on_message = on_message
    made.connect(mosquitto.host, mosquitto.port)
    made.loop_start()
    connected.wait(30)
    if outcome.get("rc") is None or outcome["rc"].is_failure:
        made.loop_stop()
        made.disconnect()
        return None
    return made


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- 1. provision -> first accepted publish --------------------------------------------------


def first_publish(mosquitto, count: int, run: int) -> tuple[list[float], list[float]]:
    from mqtt import sync, topics

    made = connector()
    worker = sync.Worker()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    latencies, baseline = [], []
    try:
        for n in range(count):
            identity = f"r{run}-first-{n}"
            started = time.monotonic()
            token = provision(made, identity)
            username = topics.username(made.pk, identity)
            while (session := client(mosquitto, username, token)) is None:
                time.sleep(0.02)
            topic = topics.namespace(made.pk, identity) + "/resource/value"
            session.publish(topic, "1", qos=1).wait_for_publish(30)
            latencies.append(time.monotonic() - started)
            session.disconnect()
            session.loop_stop()
            started = time.monotonic()
            session = client(mosquitto, username, token)
            session.publish(topic, "2", qos=1).wait_for_publish(30)
            baseline.append(time.monotonic() - started)
            session.disconnect()
            session.loop_stop()
    finally:
        worker.stopping = True
        thread.join(30)
    return latencies, baseline


# --- 2. credentials synced --------------------------------------------------------------------


def round_trips(mosquitto, stop: threading.Event, out: list[float]) -> None:
    """A plain client's publish -> own message round trip, until `stop`."""
    received = threading.Event()
    username = f"bench-probe-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(16)
    from mqtt import sync

    with sync.connect() as admin:
        admin.run(
            [
                {"command": "createRole", "rolename": username, "acls": [
                    {"acltype": kind, "topic": f"probe/{username}", "allow": True}
                    for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")
                ]},
                {"command": "createClient", "username": username, "password": password,
                 "roles": [{"rolename": username}]},
            ]
        )  # fmt: skip
    probe = client(mosquitto, username, password, on_message=lambda *a: received.set())
    probe.subscribe(f"probe/{username}", qos=0)
    time.sleep(0.2)
    while not stop.is_set():
        received.clear()
        started = time.monotonic()
        probe.publish(f"probe/{username}", "x", qos=0)
        if received.wait(60):
            out.append(time.monotonic() - started)
        time.sleep(0.05)
    probe.disconnect()
    probe.loop_stop()


def sync_rate(mosquitto, count: int, run: int) -> tuple[float, float, float]:
    from mqtt import sync

    made = connector()
    for n in range(count):
        provision(made, f"r{run}-sync-{n}")
    idle: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=round_trips, args=(mosquitto, stop, idle))
    prober.start()
    time.sleep(2)
    stop.set()
    prober.join()
    busy: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=round_trips, args=(mosquitto, stop, busy))
    prober.start()
    started = time.monotonic()
    try:
        drain(sync)
        elapsed = time.monotonic() - started
    finally:
        # Also when the sync fails: a prober left running would keep the bench alive.
        stop.set()
        prober.join()
    return count / elapsed, statistics.median(idle), max(busy or [0.0])


def drain(sync) -> None:
    """Send the whole outbox as `manage.py mqtt_sync` would: control messages sized by
    `sync.next_limit`, smaller again after one the broker did not answer in time."""
    from mqtt import dynsec

    limit, admin = sync.BATCH, None
    try:
        while True:
            try:
                admin = admin or sync.connect()
                sent = time.monotonic()
                if not sync.flush(admin, limit):
                    return
                limit = sync.next_limit(limit, time.monotonic() - sent, admin.timeout)
            except dynsec.BrokerUnavailable as exc:
                if admin is not None:
                    limit = sync.next_limit(limit, None, admin.timeout)
                    admin.close()
                    admin = None
                print(f"  broker did not keep up ({exc}); next message: {limit} rows", flush=True)
    finally:
        if admin is not None:
            admin.close()


# --- 3. ingest ------------------------------------------------------------------------------


def ingest(mosquitto, work: Path, messages: int, publishers: int, run: int):
    from devices.models import DataPoint
    from mqtt import sync, topics
    from mqtt.ingest import password

    made = connector()
    devices = [(f"r{run}-pub-{n}", provision(made, f"r{run}-pub-{n}")) for n in range(publishers)]
    with sync.connect() as admin:
        sync.ensure_service_clients(admin)
        while sync.flush(admin):
            pass
    # Baseline: a plain subscriber on the same shared subscription.
    got = []
    done = threading.Event()

    def counted(c, u, message):
        got.append(1)
        if len(got) >= messages:
            done.set()

    plain = client(mosquitto, topics.INGEST_USERNAME, password(), on_message=counted)
    for subscription in topics.ingest_subscriptions():
        plain.subscribe(subscription, qos=1)
    time.sleep(0.5)
    started = time.monotonic()
    publish_all(mosquitto, made, devices, messages, offset=0)
    done.wait(300)
    plain_rate = len(got) / (time.monotonic() - started)
    plain.disconnect()
    plain.loop_stop()

    log = work / f"ingest-{run}.log"
    command = [sys.executable, "manage.py", "mqtt_ingest", "--client-id", f"bench-ingest-{run}"]
    process = harness.start(command, dict(os.environ), log)
    time.sleep(2)
    stored_query = DataPoint.objects.filter(device__connector=made)
    started = time.monotonic()
    half = messages // 2
    publish_all(mosquitto, made, devices, half, offset=1_000_000)
    harness.stop(process)  # the restart: the broker keeps the session and its messages
    process = harness.start(command, dict(os.environ), log.with_suffix(".2.log"))
    publish_all(mosquitto, made, devices, messages - half, offset=2_000_000)
    deadline = time.monotonic() + 600
    while stored_query.count() < messages and time.monotonic() < deadline:
        time.sleep(0.2)
    rate = stored_query.count() / (time.monotonic() - started)
    harness.stop(process)
    values = list(stored_query.values_list("value", flat=True))
    exactly_once = len(values) == messages and len(set(values)) == messages
    return rate, plain_rate, exactly_once


def publish_all(mosquitto, made, devices, count: int, offset: int) -> None:
    from mqtt import topics

    def publish(index: int) -> None:
        identity, token = devices[index]
        session = client(mosquitto, topics.username(made.pk, identity), token)
        topic = topics.namespace(made.pk, identity) + "/resource/value"
        infos = [
            session.publish(topic, str(offset + n), qos=1)
            for n in range(index, count, len(devices))
        ]
        for info in infos:
            info.wait_for_publish(120)
        session.disconnect()
        session.loop_stop()

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(len(devices))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- report -----------------------------------------------------------------------------


def report(results, ingest_rates, plain_rates, exact, args) -> None:
    first = results["first"]
    p99 = percentile(first, 0.99)
    milliseconds = {key: [x * 1000 for x in results[key]] for key in ("rtt_idle", "rtt_busy")}
    rows = [
        ["provision -> first publish p50 (s)", f"{statistics.median(first):.3f}"],
        ["provision -> first publish p99 (s)", f"{p99:.3f}"],
        ["baseline connect + publish p50 (s)", f"{statistics.median(results['baseline']):.3f}"],
        [f"credentials synced ({args.sync} at once, /s)", harness.spread(results["sync"], 0)],
        ["broker round trip idle median (ms)", harness.spread(milliseconds["rtt_idle"], 1)],
        ["broker round trip worst during sync (ms)", harness.spread(milliseconds["rtt_busy"], 1)],
        [f"ingest stored/s ({args.publishers} publishers)", harness.spread(ingest_rates, 0)],
        ["plain subscriber received/s", harness.spread(plain_rates, 0)],
        ["every value stored exactly once", str(all(exact))],
    ]  # fmt: skip
    harness.print_rows(["measure", "median (range)"], rows)
    sync_100k = 100_000 / statistics.median(results["sync"])
    ratio = statistics.median(ingest_rates) / statistics.median(plain_rates)
    print()
    print(harness.verdict(p99 <= TARGET_FIRST_PUBLISH_P99, "first publish p99 <= 1 s"))
    print(
        harness.verdict(sync_100k <= TARGET_SYNC_100K_SECONDS, "100,000 devices synced <= 60 s")
        + f" (at this rate: {sync_100k:.0f} s; the rate falls as the broker grows)"
    )
    print(
        harness.verdict(statistics.median(ingest_rates) >= TARGET_INGEST_RATE, ">= 5,000 stored/s")
    )
    print(harness.verdict(ratio >= TARGET_INGEST_RATIO, f">= 0.5 x plain subscriber ({ratio:.2f})"))
    print(harness.verdict(all(exact), "no message lost or stored twice across a restart"))


if __name__ == "__main__":
    main()
