"""An import's record while it runs and when it ends: who owns it, its errors, its upload.

A run owns its import through `attempts`, which every claim counts up: each
progress update and the final one apply only while the import is still
running under the same attempt.

The step a run is in (`phase`) is kept on the import with each progress
update. Adding the devices and saving the result happen inside the one
transaction that commits them, where an update of the import stays unseen
until the end: there the run notes its step in the cache (`note_phase`),
which pollers read over the import's own fields (`live_phase`).
"""

import logging
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
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


def _phase_key(import_id: int, attempt: int) -> str:
    return f"whitelist-import:{import_id}:{attempt}:phase"


def note_phase(
    record: WhitelistImport, phase: str, done: int, total: int, started_at: datetime
) -> None:
    """Where a run is while its writing transaction is open, for pollers to see.

    Never stops the import: a cache that fails only leaves the page a step behind.
    """
    note = {"phase": phase, "done": done, "total": total, "started_at": started_at.isoformat()}
    try:
        cache.set(
            _phase_key(record.pk, record.attempts), note, timeout=settings.IMPORT_STALL_SECONDS
        )
    except Exception:  # noqa: BLE001 - progress shown late is better than an import failed.
        logger.warning("whitelist import %s: its step could not be noted", record.pk, exc_info=True)


def live_phase(record: WhitelistImport) -> dict:
    """The step of `record`: phase, done, total, started_at, from the cache while it writes."""
    phase = {
        "phase": record.phase,
        "done": record.phase_done,
        "total": record.phase_total,
        "started_at": record.phase_started_at,
    }
    if record.status != WhitelistImport.RUNNING:
        return phase
    # Noted only from the start of the write on, so always a later step than the fields.
    try:
        note = cache.get(_phase_key(record.pk, record.attempts))
    except Exception:  # noqa: BLE001 - the import's own fields still say enough.
        note = None
    if note:
        phase.update(note, started_at=datetime.fromisoformat(note["started_at"]))
    return phase
