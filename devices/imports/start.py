"""Starting an import: refuse what is plainly not a whitelist CSV, store it, run it."""

import uuid
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.core.files import File
from django.db import transaction

from audit.models import Event
from connectors.models import Connector
from devices import services
from devices.imports.reader import ImportTooLarge, check_head, size_of
from devices.imports.run import run_import
from devices.models import WhitelistImport


def start_import(
    connector: Connector,
    fileobj,
    *,
    dry_run: bool = False,
    on_error: str = WhitelistImport.ABORT,
    actor: services.Actor | None = None,
    ip=None,
    run_later: Callable[[int], object] | None = None,
) -> WhitelistImport:
    """Store an uploaded CSV file under MEDIA_ROOT and run it.

    Small files run here and come back finished. Larger ones are handed by id
    to `run_later` (the worker's task) once the caller's transaction commits,
    and their progress is polled; without `run_later` they run here too.
    `fileobj` is a binary file (an UploadedFile or anything with read/seek).
    Raises InvalidImportFile or ImportTooLarge and stores nothing for a file
    that is plainly not a whitelist CSV. A real (not dry) run is logged as
    started by `actor`, and its result is logged under the same person.
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
    )
    content = fileobj if isinstance(fileobj, File) else File(fileobj)
    record.file.save(f"{connector.pk}-{uuid.uuid4().hex}.csv", content, save=False)
    record.save()
    if not dry_run:
        services.record_event(
            connector.pk,
            "",
            Event.IMPORT,
            f"CSV import {record.pk} started ({size} bytes, on error: {on_error})"
            f"{f' by {actor}' if actor else ''}",
            ip,
            actor=actor,
        )
    if run_later is None or size <= settings.IMPORT_INLINE_MAX_BYTES:
        return run_import(record.pk)
    transaction.on_commit(partial(run_later, record.pk))
    return record
