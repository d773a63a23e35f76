"""Rebuild the broker's clients and roles from the database: `manage.py mqtt_resync`."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from mqtt import dynsec, resync, sync


class Command(BaseCommand):
    help = (
        "Compare the MQTT broker's clients and roles with the devices and repair them: "
        "default deny, clients of devices no longer provisioned removed, missing roles "
        "restored, queued changes sent. Prints what it changed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, change nothing"
        )

    def handle(self, *args, **options):
        if not sync.enabled():
            raise CommandError("MQTT_BROKER_URL is not set: there is no broker to resync")
        try:
            with sync.connect() as client, transaction.atomic():
                report = resync.resync(client, dry_run=options["dry_run"])
        except dynsec.BrokerUnavailable as exc:
            raise CommandError(str(exc)) from exc
        for line in report.lines():
            self.stdout.write(line)
