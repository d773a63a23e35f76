"""Follow the broker's log and keep the devices' MQTT sessions: `manage.py mqtt_presence`."""

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from mqtt import presence


class Command(BaseCommand):
    help = (
        "Read the MQTT broker's log (MQTT_BROKER_LOG) as it grows: which devices are "
        "connected, and their connects, disconnects and kicks in the event log. "
        "Run one per broker, on a host that can read its log."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="read what is there, then exit")
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between reads")

    def handle(self, *args, **options):
        if not settings.MQTT_BROKER_LOG:
            raise CommandError("MQTT_BROKER_LOG is not set: there is no broker log to read")
        follower = presence.Follower(settings.MQTT_BROKER_LOG)
        if options["once"]:
            while follower.step():
                pass
            return
        self.stdout.write(f"mqtt presence: following {settings.MQTT_BROKER_LOG}")
        stopping = []
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        while not stopping:
            try:
                if follower.step():
                    continue
            except DatabaseError as exc:
                # The database is away: the same lines are read again once it is back.
                self.stderr.write(f"mqtt presence: database unavailable: {exc}")
                close_old_connections()
            time.sleep(options["interval"])
