"""The periodic sweep over imports that no worker is moving forward.

A worker's import task is acknowledged late and handed out again when the
worker process running it dies (`acks_late`, `reject_on_worker_lost`), and the
next run takes the import over (`run_import(take_over=True)`). Two cases stay
that the broker cannot see, and this sweep ends them:

- A running import that made no progress for IMPORT_STALL_SECONDS: a worker
  that hangs (its connection to the broker alive, so nothing is handed out
  again), or a whole worker host lost with a broker that keeps no unacknowledged
  messages (the laptop's filesystem broker). It is failed and its upload
  removed; its write had not committed, so nothing was written. Should its
  worker be alive after all, its next update finds the import ended and rolls
  back, so an import ends exactly once either way.
- A pending import no worker took in that time: its task never reached the
  broker (the web process stopped between the commit and the send) or was lost
  with the broker's data. It is sent again through `send`; a task that arrives
  twice runs once.

It also removes the upload a failed import kept for "import the good rows"
(`restart`) once IMPORT_KEEP_FAILED_UPLOAD_SECONDS have passed.
"""

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from devices.imports.records import end_running, remove_upload
from devices.models import WhitelistImport


def fail_stalled_imports(send: Callable[[int], object]) -> dict[str, int]:
    """Fail running imports without progress; hand pending ones no worker took to `send`."""
    stall = settings.IMPORT_STALL_SECONDS
    cutoff = timezone.now() - timedelta(seconds=stall)
    ended = requeued = 0
    stalled = WhitelistImport.objects.filter(
        status=WhitelistImport.RUNNING, updated_at__lt=cutoff
    ).select_related("connector", "created_by")
    for record in stalled:
        # Only if no progress arrived since it was read.
        ended += end_running(record, f"its worker stopped (no progress for {stall} s)")
    for pk in WhitelistImport.objects.filter(
        status=WhitelistImport.PENDING, updated_at__lt=cutoff
    ).values_list("pk", flat=True):
        if WhitelistImport.objects.filter(
            pk=pk, status=WhitelistImport.PENDING, updated_at__lt=cutoff
        ).update(updated_at=timezone.now()):
            requeued += 1
            send(pk)
    return {"failed": ended, "queued again": requeued, "uploads removed": remove_kept_uploads()}


def remove_kept_uploads() -> int:
    """Remove the uploads failed imports kept for a restart, once their time is up.

    Looks a week back past the cutoff, so a sweep that stopped for days still
    catches up, while the query never walks every import ever failed.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.IMPORT_KEEP_FAILED_UPLOAD_SECONDS)
    removed = 0
    for record in WhitelistImport.objects.filter(
        status=WhitelistImport.FAILED,
        on_error=WhitelistImport.ABORT,
        finished_at__lt=cutoff,
        finished_at__gte=cutoff - timedelta(days=7),
    ).exclude(file=""):
        if record.file.storage.exists(record.file.name):
            remove_upload(record)
            removed += 1
    return removed
