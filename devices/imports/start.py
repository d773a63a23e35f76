"""Starting an import: refuse what is plainly not a whitelist CSV, store it, run it."""

import unicodedata
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import PureWindowsPath

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction

from audit.models import Event
from connectors.models import Connector
from devices import services
from devices.imports.reader import ImportTooLarge, check_head, size_of
from devices.imports.run import run_import
from devices.models import WhitelistImport

# Longest file name kept for display (WhitelistImport.original_name).
NAME_LENGTH = 120


class AlreadyRestarted(services.InvalidData):
    """The import was restarted with its good rows before: `restart` is that import."""

    def __init__(self, original: WhitelistImport, restart: WhitelistImport):
        super().__init__(
            f"import {original.pk} was already restarted with its good rows as import {restart.pk}"
        )
        self.restart = restart


def display_name(name: str | None) -> str:
    """A file name fit to show: its last part only, no control characters, not too long.

    Never a path: it only tells people which of their files this was, and the
    page escapes it like any text.
    """
    # Either slash: a browser on Windows may send the whole path.
    name = PureWindowsPath(str(name or "")).name
    name = unicodedata.normalize("NFC", name)
    name = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in name)
    name = " ".join(name.split()).strip(". ")
    if len(name) > NAME_LENGTH:
        name = name[: NAME_LENGTH - 1] + "…"
    return name


def start_import(
    connector: Connector,
    fileobj,
    *,
    dry_run: bool = False,
    on_error: str = WhitelistImport.ABORT,
    actor: services.Actor | None = None,
    ip=None,
    run_later: Callable[[int], object] | None = None,
    name: str | None = None,
    retry_of: WhitelistImport | None = None,
) -> WhitelistImport:
    """Store an uploaded CSV file under MEDIA_ROOT and run it.

    Small files run here and come back finished. Larger ones are handed by id
    to `run_later` (the worker's task) once the caller's transaction commits,
    and their progress is polled; without `run_later` they run here too.
    `fileobj` is a binary file (an UploadedFile or anything with read/seek).
    Raises InvalidImportFile or ImportTooLarge and stores nothing for a file
    that is plainly not a whitelist CSV. A real (not dry) run is logged as
    started by `actor`, and its result is logged under the same person.
    `name` is the file's own name (else the upload's), kept for display only.
    With `retry_of`, this import restarts that one's file; AlreadyRestarted if
    another request did so first.
    """
    user = actor.user if actor is not None else None
    if on_error not in dict(WhitelistImport.ON_ERROR):
        raise services.InvalidData('on_error must be "abort" or "skip"')
    size = size_of(fileobj)
    if size > settings.IMPORT_MAX_BYTES:
        raise ImportTooLarge(f"the file is larger than {settings.IMPORT_MAX_BYTES} bytes")
    check_head(fileobj)
    record = WhitelistImport(
        connector=connector,
        created_by=user if user is not None and user.is_authenticated else None,
        dry_run=dry_run,
        on_error=on_error,
        original_name=display_name(name if name is not None else getattr(fileobj, "name", "")),
        retry_of=retry_of,
    )
    content = fileobj if isinstance(fileobj, File) else File(fileobj)
    record.file.save(f"{connector.pk}-{uuid.uuid4().hex}.csv", content, save=False)
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError:
        # Only `retry_of` is unique: another request restarted that import first.
        record.file.delete(save=False)
        if retry_of is None:
            raise
        raise AlreadyRestarted(retry_of, WhitelistImport.objects.get(retry_of=retry_of)) from None
    if not dry_run:
        good_rows_of = f", the good rows of import {retry_of.pk}" if retry_of else ""
        services.record_event(
            connector.pk,
            "",
            Event.IMPORT,
            f"CSV import {record.pk} started ({size} bytes, on error: {on_error}{good_rows_of})"
            f"{f' by {actor}' if actor else ''}",
            ip,
            actor=actor,
        )
    if run_later is None or size <= settings.IMPORT_INLINE_MAX_BYTES:
        return run_import(record.pk)
    transaction.on_commit(partial(run_later, record.pk))
    return record
