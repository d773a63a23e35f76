"""Store what devices publish over MQTT until stopped: `manage.py mqtt_ingest`."""

import signal
import socket

from django.core.management.base import BaseCommand, CommandError

from mqtt import dynsec, sync
from mqtt.ingest import Ingest

# The line that says the ingest is storing (runlocal waits for it before its banner).
SUBSCRIBED = "subscribed, storing device writes"


class Command(BaseCommand):
    help = (
        "Subscribe to the devices' resource topics (shared subscription $share/gatehouse/...) "
        "and store each value as an HTTP write would. Run several to share the stream."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--client-id",
            default=f"gatehouse-ingest-{socket.gethostname()}",
            help="MQTT client id; keep it across restarts so the broker keeps the session",
        )

    def handle(self, *args, **options):
        if not sync.enabled():
            raise CommandError("MQTT_BROKER_URL is not set: there is no broker to read")
        ingest = Ingest(client_id=options["client_id"])
        signal.signal(signal.SIGINT, lambda signum, frame: ingest.stop())
        signal.signal(signal.SIGTERM, lambda signum, frame: ingest.stop())
        name = options["client_id"]
        self.stdout.write(f"mqtt ingest {name}: connecting to {ingest.url}")
        self.stdout.flush()

        def subscribed():
            self.stdout.write(f"mqtt ingest {name}: {SUBSCRIBED}")
            self.stdout.flush()

        ingest.on_ready = subscribed
        try:
            ingest.run()
        except dynsec.BrokerUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"mqtt ingest stopped after {ingest.stored} message(s); {ingest.repeated} delivered "
            "again were stored already and skipped"
        )
