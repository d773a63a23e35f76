"""Keep the broker's clients in step with the devices until stopped: `manage.py mqtt_sync`."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mqtt import sync


class Command(BaseCommand):
    help = (
        "Send device credential changes to the MQTT broker (MQTT_BROKER_URL) in batches, "
        "at most one control message per MQTT_SYNC_INTERVAL. Run one per broker."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="send what is queued, then exit")

    def handle(self, *args, **options):
        if not sync.enabled():
            raise CommandError("MQTT_BROKER_URL is not set: there is no broker to keep in step")
        if options["once"]:
            with sync.connect() as client:
                sync.ensure_service_clients(client)
                handled = 0
                while True:
                    done = sync.flush(client)
                    if not done:
                        break
                    handled += done
            self.stdout.write(f"sent {handled} queued change(s)")
            return
        worker = sync.Worker()

        def stop(signum, frame):
            worker.stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(f"mqtt sync: keeping {settings.MQTT_BROKER_URL} in step", ending="\n")
        self.stdout.flush()
        worker.run()
        self.stdout.write("mqtt sync stopped")
