"""Running an import: read and check every row, then write the good ones or nothing.

1. Checking: stream the file once through the `csv` module and validate
   every row, naming the physical line where the row starts; check each batch
   against the whitelist with one query. Progress and the error count are
   committed every batch for pollers.
2. Adding devices: write the good rows in one transaction that commits only at
   the end, and only if this is not a dry run and `abort` met no bad row
   (`writers`); then saving the result (the import's end and its log line) in
   the same transaction. Each step is recorded as the import's `phase`, with
   its start and how many rows it has done, so its page shows a rate.

So `abort` writes nothing unless every row is good, and a file that breaks off
half-way (bad bytes, malformed quoting) writes nothing at all.

A run owns its import through `attempts`, which every claim counts up: each
progress update and the final one apply only while the import is still
running under the same attempt, so a run whose import was ended by the stall
sweep, or taken over by a redelivered task, stops at its next update and rolls
its write back (`GivenUp`). An import therefore ends exactly once.
"""

import csv
import logging
import tempfile
import time

from django.conf import settings
from django.core.files import File
from django.db import connection
from django.db.models import F
from django.utils import timezone

from audit.models import Event
from devices import services
from devices.imports.checker import BadRow, Row, RowChecker, whitelisted
from devices.imports.reader import (
    BrokenFile,
    InvalidImportFile,
    csv_rows,
    decoded,
    header_columns,
    open_lines,
)
from devices.imports.records import (
    GivenUp,
    end_running,
    error_entry,
    note_phase,
    record_progress,
    remove_upload,
    starter,
)
from devices.imports.report import ERROR_REPORT_HEADER, error_report_name
from devices.imports.writers import open_stage
from devices.models import Device, WhitelistImport

logger = logging.getLogger(__name__)

# A worker that dies this many times running one import (a file that takes it
# out of memory, say) does not get it again: the import fails.
MAX_ATTEMPTS = 3
ALREADY_WHITELISTED = (
    "This ID is already whitelisted in this connector; remove the row "
    "(the device that has it is left as it is)."
)


class Conflicted(Exception):
    """Rows whose identity someone else whitelisted while the import ran."""

    def __init__(self, rows: list[tuple[int, str]]):
        super().__init__(f"{len(rows)} rows whitelisted elsewhere")
        self.rows = rows


def run_import(import_id: int, *, take_over: bool = False) -> WhitelistImport:
    """Run a pending import to its end; a second call for the same import does nothing.

    With `take_over` (a worker's task, which the broker hands out again when
    the worker running it died), a running import is taken over: its previous
    run wrote nothing that committed, and stops at its next update if it is in
    fact alive. After MAX_ATTEMPTS runs the import fails instead.
    """
    record = WhitelistImport.objects.select_related("connector", "created_by").get(pk=import_id)
    claimable = (
        {WhitelistImport.PENDING, WhitelistImport.RUNNING}
        if take_over
        else {WhitelistImport.PENDING}
    )
    if record.status not in claimable:
        return record
    if record.attempts >= MAX_ATTEMPTS:
        end_running(record, f"its worker stopped {record.attempts} times running it")
        record.refresh_from_db()
        return record
    claimed = WhitelistImport.objects.filter(
        pk=import_id, status=record.status, attempts=record.attempts
    ).update(
        status=WhitelistImport.RUNNING,
        attempts=F("attempts") + 1,
        processed=0,
        error_count=0,
        errors=[],
        phase=WhitelistImport.CHECKING,
        phase_started_at=timezone.now(),
        phase_done=0,
        phase_total=0,
        updated_at=timezone.now(),
    )
    record.refresh_from_db()
    if not claimed:
        return record
    if record.attempts > 1:
        logger.warning("whitelist import %s: run %d starts again", import_id, record.attempts)
    run = ImportRun(record)
    ended = True
    try:
        try:
            run.execute()
        except GivenUp:
            raise
        except Exception:  # noqa: BLE001 - an import must never be left "running" forever.
            logger.exception("whitelist import %s stopped", import_id)
            run.fail("the import stopped unexpectedly; nothing was written")
    except GivenUp:
        # Whoever ended or took the import over looks after its upload.
        ended = False
        logger.warning(
            "whitelist import %s was ended or taken over while it ran; this run wrote nothing",
            import_id,
        )
        record.refresh_from_db()
    finally:
        run.close(keep_upload=not ended or run.keeps_upload)
    return record


class ImportRun:
    """The state of one run: counters, the first errors, the error report spool."""

    def __init__(self, record: WhitelistImport):
        self.record = record
        self.connector = record.connector
        self.batch_size = settings.IMPORT_BATCH_SIZE
        self.processed = 0
        self.error_count = 0
        self.errors: list[dict] = []
        self.report = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
        self.report_writer = csv.writer(self.report, lineterminator="\n")
        self.report_writer.writerow(ERROR_REPORT_HEADER)
        self.stage = None
        self.checker = None
        # Whether its upload stays after it ends, for "import the good rows".
        self.keeps_upload = False
        self.phase = WhitelistImport.CHECKING
        self.phase_started_at = record.phase_started_at or timezone.now()

    # The phases ---------------------------------------------------------------

    def execute(self) -> None:
        started = time.monotonic()
        try:
            total = self._count()
            record_progress(self.record.pk, self.record.attempts, total=total, phase_total=total)
            self.record.total = total
            self._validate()
        except (BrokenFile, InvalidImportFile) as exc:
            self.fail(str(exc))
            return
        checked = time.monotonic()
        logger.info(
            "whitelist import %s: %d rows read and checked in %.1f s, %d bad",
            self.record.pk,
            self.processed,
            checked - started,
            self.error_count,
        )
        if self.record.dry_run:
            self._finish(WhitelistImport.DONE, created=0)
        elif self.error_count and self.record.on_error == WhitelistImport.ABORT:
            self._discard()
            self._finish(WhitelistImport.FAILED, created=0)
            # The same file can be imported again skipping its bad rows, unless
            # it holds a private key, which must not stay at rest.
            self.keeps_upload = self.processed > self.error_count and not (
                self.checker is not None and self.checker.saw_private_key
            )
        else:
            self._write()
            logger.info(
                "whitelist import %s: %d devices written in %.1f s",
                self.record.pk,
                self.record.created,
                time.monotonic() - checked,
            )

    def _count(self) -> int:
        """Rows after the header, so the progress bar has an end from the start.

        Counts line ends outside quotes: a newline inside a quoted cell (a PEM
        certificate) leaves an odd number of quotes before it. Cheaper than
        parsing twice; blank rows are not told apart, so `_finish` corrects it.
        """
        rows, quoted = 0, False
        with open_lines(self.record) as lines:
            for text in lines:
                if text.count(b'"') % 2:
                    quoted = not quoted
                if not quoted and text.strip(b" \t\r\n,"):
                    rows += 1
        return max(rows - 1, 0)

    def _validate(self) -> None:
        with open_lines(self.record) as lines:
            rows = csv_rows(decoded(lines))
            try:
                line, header = next(rows)
            except StopIteration as exc:
                raise InvalidImportFile("the file is empty") from exc
            self.checker = checker = RowChecker(self.connector, header_columns(line, header))
            if not self.record.dry_run:
                self.stage = open_stage(
                    f"{self.record.pk}_{self.record.attempts}", self._template()
                )
            batch: list[Row | tuple[int, BadRow]] = []
            for line, cells in rows:
                self.processed += 1
                try:
                    batch.append(checker.check(line, cells))
                except BadRow as exc:
                    batch.append((line, exc))
                if len(batch) >= self.batch_size:
                    self._settle(batch)
                    batch = []
            self._settle(batch)

    def _settle(self, batch: list) -> None:
        """Check a batch against the whitelist (one query), stage its good rows, report."""
        taken = whitelisted(self.connector, [row.identity for row in batch if isinstance(row, Row)])
        good = []
        errors_before = len(self.errors)
        for row in batch:
            if not isinstance(row, Row):
                line, problem = row
                self._reject(line, problem.identity, problem.message)
            elif row.identity in taken:
                self._reject(row.line, row.identity, ALREADY_WHITELISTED)
            else:
                good.append(row)
        if self.error_count and self.record.on_error == WhitelistImport.ABORT:
            # Nothing will be written: let go of what was staged (and of the
            # pipeline's locks on those identities) now, not at the end.
            self._discard()
        elif self.stage is not None and good:
            self.stage.add(good)
        progress = {
            "processed": self.processed,
            "error_count": self.error_count,
            "phase_done": self.processed,
        }
        if len(self.errors) != errors_before:
            progress["errors"] = self.errors
        record_progress(self.record.pk, self.record.attempts, **progress)

    def _template(self) -> Device:
        """What every new device shares: connector, status, activation deadline."""
        return Device(
            connector=self.connector,
            status=Device.WHITELISTED,
            activation_expires_at=services.activation_deadline(self.connector),
        )

    def _write(self) -> None:
        abort = self.record.on_error == WhitelistImport.ABORT

        def settle(created: int, late: list[tuple[int, str]]) -> None:
            # Runs inside the writing transaction, so the import row and its
            # event commit together with the devices.
            if late and abort:
                raise Conflicted(late)
            for line, identity in late:
                self._reject(line, identity, ALREADY_WHITELISTED)
            self._finish(WhitelistImport.DONE, created=created)

        written = getattr(self.stage, "written", 0)
        if not written:
            self.phase_started_at = timezone.now()
        # else the pipeline has been adding devices since the checking began:
        # its rate counts from then.
        self.phase = WhitelistImport.WRITING
        self._progress(WhitelistImport.WRITING, written)
        try:
            self.stage.commit(settle, self._progress)
        except Conflicted as exc:
            for line, identity in exc.rows:
                self._reject(line, identity, ALREADY_WHITELISTED)
            self._finish(WhitelistImport.FAILED, created=0)

    def _progress(self, phase: str, done: int) -> None:
        """Record the step the write is in and how many devices it added so far.

        Inside the writing transaction an update of the import would stay unseen
        (and hold its row): the step is noted in the cache instead.
        """
        if phase != self.phase:
            self.phase, self.phase_started_at = phase, timezone.now()
        total = max(self.processed - self.error_count, done)
        if connection.in_atomic_block or phase == WhitelistImport.FINISHING:
            note_phase(self.record, phase, done, total, self.phase_started_at)
            return
        record_progress(
            self.record.pk,
            self.record.attempts,
            phase=phase,
            phase_started_at=self.phase_started_at,
            phase_done=done,
            phase_total=total,
        )

    def _discard(self) -> None:
        if self.stage is not None:
            self.stage.close()
            self.stage = None

    # Reporting ------------------------------------------------------------------

    def _reject(self, line: int | None, identity: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < settings.IMPORT_MAX_STORED_ERRORS:
            self.errors.append(error_entry(line, identity, message))
        self.report_writer.writerow((line, identity, message))

    def fail(self, message: str) -> None:
        """End the import as failed with a file-level error; nothing is written."""
        self._reject(None, "", message)
        self._finish(WhitelistImport.FAILED, created=0)

    def _finish(self, status: str, *, created: int) -> None:
        record = self.record
        record.status = status
        record.processed = self.processed
        record.total = max(record.total, self.processed)
        record.created = created
        record.errors = self.errors
        record.error_count = self.error_count
        record.finished_at = timezone.now()
        if self.phase == WhitelistImport.CHECKING:
            record.phase_done = self.processed
        else:
            record.phase_done = created
        record.phase, record.phase_started_at = self.phase, self.phase_started_at
        # Only while it is still running: the stall sweep may have ended it.
        # Raising here rolls back a write this runs inside.
        record_progress(
            record.pk,
            record.attempts,
            status=status,
            phase=record.phase,
            phase_started_at=record.phase_started_at,
            phase_done=record.phase_done,
            processed=record.processed,
            total=record.total,
            created=created,
            errors=record.errors,
            error_count=record.error_count,
            finished_at=record.finished_at,
        )
        self._store_report()
        if not record.dry_run:
            # One event for the whole import, not one per row: a million
            # `whitelist` lines would drown the live log and double the work.
            services.record_event(
                self.connector.pk, "", Event.IMPORT, self._summary(), actor=starter(self.record)
            )

    def _summary(self) -> str:
        record = self.record
        who = f" by {record.created_by.get_username()}" if record.created_by else ""
        if record.status == WhitelistImport.DONE:
            skipped = f", {record.error_count} bad rows skipped" if record.error_count else ""
            return f"CSV import {record.pk}{who}: {record.created} whitelisted{skipped}"
        return f"CSV import {record.pk}{who} refused: {record.error_count} errors, nothing written"

    def _store_report(self) -> None:
        storage, name = self.record.file.storage, error_report_name(self.record)
        if storage.exists(name):
            storage.delete(name)
        if self.error_count:
            self.report.flush()
            self.report.seek(0)
            storage.save(name, File(self.report))

    def close(self, *, keep_upload: bool = False) -> None:
        self._discard()
        self.report.close()
        # Nothing reads the upload once its import has ended, and a file with a
        # private key in it must not stay at rest (the error report names no key).
        if not keep_upload:
            remove_upload(self.record)
