"""Importing the good rows of an import that refused its file for bad rows.

An import with `on_error=abort` that met bad rows writes nothing and fails;
its upload is kept (`run`) so that one click imports the same file again with
`on_error=skip`. The restart is a new import, started like any upload
(`start_import`), and linked to the first one (`retry_of`, unique): a second
click, or two at once, never starts a second restart.
"""

from collections.abc import Callable

from devices import services
from devices.imports.records import remove_upload
from devices.imports.start import AlreadyRestarted, start_import
from devices.models import WhitelistImport


class CannotRestart(services.InvalidData):
    default_message = "only an import that failed for bad rows can be restarted with its good rows"


class UploadGone(CannotRestart):
    default_message = "its file is no longer kept; upload it again and choose to skip bad rows"


def failed_for_bad_rows(record: WhitelistImport) -> bool:
    """Whether `record` wrote nothing only because `abort` met bad rows, and had good ones."""
    return (
        record.status == WhitelistImport.FAILED
        and record.on_error == WhitelistImport.ABORT
        and not record.dry_run
        and 0 < record.error_count < record.processed
        # A file-level error (a broken file, a lost worker) is not a bad row.
        and all(error["line"] is not None for error in record.errors)
    )


def upload_kept(record: WhitelistImport) -> bool:
    return bool(record.file.name) and record.file.storage.exists(record.file.name)


def restart_of(record: WhitelistImport) -> WhitelistImport | None:
    return WhitelistImport.objects.filter(retry_of=record).first()


def import_good_rows(
    record: WhitelistImport,
    *,
    actor: services.Actor | None = None,
    ip=None,
    run_later: Callable[[int], object] | None = None,
) -> WhitelistImport:
    """Start a new import of `record`'s file that skips its bad rows; the new import.

    Raises AlreadyRestarted (naming the restart) when it was restarted before,
    CannotRestart when it did not fail for bad rows, UploadGone when its file
    was removed. The first import's upload is removed once the new one has its
    own copy.
    """
    if not failed_for_bad_rows(record):
        raise CannotRestart()
    restart = restart_of(record)
    if restart is not None:
        raise AlreadyRestarted(record, restart)
    try:
        if not record.file.name:
            raise FileNotFoundError(record.pk)
        upload = record.file.storage.open(record.file.name, "rb")
    except FileNotFoundError:
        # Removed when its import ended, by the sweep, or by a restart just now.
        if (restart := restart_of(record)) is not None:
            raise AlreadyRestarted(record, restart) from None
        raise UploadGone() from None
    with upload:
        restart = start_import(
            record.connector,
            upload,
            on_error=WhitelistImport.SKIP,
            actor=actor,
            ip=ip,
            run_later=run_later,
            name=record.original_name,
            retry_of=record,
        )
    remove_upload(record)
    return restart
