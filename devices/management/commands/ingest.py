"""Store queued device writes (DEVICE_WRITE_QUEUE) until stopped: `manage.py ingest`."""

import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devices.ingest import Ingest

REPORT_SECONDS = 60


class Command(BaseCommand):
    help = (
        "Store device writes queued in Redis (DEVICE_WRITE_QUEUE) in batches. Run one or "
        "more; they share the work. SIGTERM or Ctrl-C stops after the batch."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="store what is queued now, then exit"
        )
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, **options):
        if not settings.DEVICE_WRITE_QUEUE:
            raise CommandError("DEVICE_WRITE_QUEUE is off: device writes are stored directly")
        ingest = Ingest(batch_size=options["batch_size"])
        if options["once"]:
            stored = ingest.drain()
            self.stdout.write(f"stored {stored} queued writes")
            return
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        self.stdout.write(f"ingest {ingest.name}: storing queued device writes")
        reporter = threading.Thread(target=self.report, args=(ingest, stop), daemon=True)
        reporter.start()
        ingest.run(stop)
        self.stdout.write("ingest stopped")

    def report(self, ingest: Ingest, stop: threading.Event) -> None:
        """A line a minute while writes flow, for the operator's log."""
        stored_before = ingest.stored
        while not stop.wait(REPORT_SECONDS):
            stored = ingest.stored
            if stored != stored_before:
                rate = (stored - stored_before) / REPORT_SECONDS
                self.stdout.write(
                    f"{time.strftime('%H:%M:%S')} stored {stored} writes ({rate:.0f}/s)"
                )
                stored_before = stored
