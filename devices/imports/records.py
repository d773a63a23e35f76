"""An import's record while it runs and when it ends: who owns it, its errors, its upload.

A run owns its import through `attempts`, which every claim counts up: each
progress update and the final one apply only while the import is still
running under the same attempt.
"""

import logging

from django.conf import settings
from django.utils import timezone

from audit.models import Event
from devices import services
from devices.models import WhitelistImport

logger = logging.getLogger(__name__)


class GivenUp(Exception):
    """The import ended, or another run took it over, while this run ran: write nothing."""


def end_running(record: WhitelistImport, why: str) -> bool:
    """Fail a running import whose worker is gone, if nothing moved since `record` was read.

    Its write had not committed, so nothing was written; the upload is removed.
    """
    message = f"{why}; nothing was written"
    kept = record.errors[: settings.IMPORT_MAX_STORED_ERRORS - 1]
    now = timezone.now()
    if not WhitelistImport.objects.filter(
        pk=record.pk,
        status=WhitelistImport.RUNNING,
        attempts=record.attempts,
        updated_at=record.updated_at,
    ).update(
        status=WhitelistImport.FAILED,
        created=0,
        errors=[*kept, error_entry(None, "", message)],
        error_count=record.error_count + 1,
        finished_at=now,
        updated_at=now,
    ):
        return False
    logger.warning("whitelist import %s failed: %s", record.pk, why)
    if not record.dry_run:
        who = f" by {record.created_by.get_username()}" if record.created_by else ""
        services.record_event(
            record.connector_id,
            "",
            Event.IMPORT,
            f"CSV import {record.pk}{who} stopped: its worker went away, nothing written",
            actor=starter(record),
        )
    remove_upload(record)
    return True


def starter(record: WhitelistImport) -> services.Actor | None:
    """Whom an import's result lines name: the person who started it."""
    return services.Actor(record.created_by, "CSV import") if record.created_by else None


def error_entry(line: int | None, identity: str, message: str) -> dict:
    return {"line": line, "identity": identity, "message": message}


def remove_upload(record: WhitelistImport) -> None:
    """The uploaded CSV is only read by its import; its name stays on the record,
    as the error report's name derives from it."""
    if record.file.name:
        record.file.storage.delete(record.file.name)


def record_progress(import_id: int, attempt: int, **fields) -> None:
    """Commit progress of a running import; GivenUp if this run no longer owns it."""
    if not WhitelistImport.objects.filter(
        pk=import_id, status=WhitelistImport.RUNNING, attempts=attempt
    ).update(updated_at=timezone.now(), **fields):
        raise GivenUp()
