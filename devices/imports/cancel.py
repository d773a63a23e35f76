"""Cancelling an import its maker no longer wants, before it writes.

An import writes its devices in one transaction that commits at its very end,
together with the update that ends the import (`run`). Cancelling is one
update, conditional on the import still pending or running:

- a pending import is never claimed afterwards (a claim needs it pending);
- a running one finds itself no longer running at its next progress update, or
  at the update that would end it inside the writing transaction, and rolls
  back (`GivenUp`): nothing it checked or staged is written;
- an import whose ending update came first has ended (done or failed) and the
  cancel is refused: what it wrote stays, and the page says so.

On PostgreSQL the two updates of one row queue behind each other, so exactly
one of "cancelled" and "ended" wins; the cancel never lands after a write.
"""

from django.db import transaction
from django.utils import timezone

from audit.models import Event
from devices import services
from devices.imports.records import remove_upload
from devices.models import WhitelistImport


def cancel_import(record: WhitelistImport, *, actor: services.Actor | None = None, ip=None) -> bool:
    """Cancel `record` if it is still pending or running; whether it was cancelled.

    Its worker, if one runs it, stops at its next update and writes nothing;
    the upload is removed here, as the run that gives up leaves it to whoever
    ended the import. A real (not dry) run logs who cancelled it.
    """
    now = timezone.now()
    with transaction.atomic():
        if not WhitelistImport.objects.filter(
            pk=record.pk, status__in=[WhitelistImport.PENDING, WhitelistImport.RUNNING]
        ).update(status=WhitelistImport.CANCELLED, created=0, finished_at=now, updated_at=now):
            record.refresh_from_db()
            return False
        if not record.dry_run:
            services.record_event(
                record.connector_id,
                "",
                Event.IMPORT,
                f"CSV import {record.pk} cancelled{f' by {actor}' if actor else ''}: "
                "nothing written",
                ip,
                actor=actor,
            )
    record.refresh_from_db()
    remove_upload(record)
    return True
