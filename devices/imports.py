"""Bulk whitelisting from CSV and the export in the same format.

`start_import` stores the upload and runs it inline when it is small, on a
Celery worker when it is large. `run_import` is the engine:

1. Stream the file once through the `csv` module and validate every row,
   naming the physical line where the row starts; check each batch against
   the whitelist with one query. Progress and the error count are committed
   every batch for pollers.
2. Write the good rows in one transaction that commits only at the end, and
   only if this is not a dry run and `abort` met no bad row. On PostgreSQL a
   second connection writes each batch (COPY into a temporary table, then
   `INSERT … ON CONFLICT DO NOTHING`) while the next batch is read; elsewhere,
   and inside a caller's transaction, the rows wait in a spool file or a
   temporary table and are written after the last one is read.

So `abort` writes nothing unless every row is good, and a file that breaks off
half-way (bad bytes, malformed quoting) writes nothing at all.

Header: the first non-blank line names the columns, `ID,TLS Client
Certificate,Tags` as the export writes them. Names are matched without regard to case or
surrounding spaces and in any order; `ID` is required, the other two may be
left out. Rows whose cells are all empty (spreadsheets append them) are skipped.
"""

import codecs
import csv
import io
import json
import logging
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from certificates import crypto
from certificates.services import pinnable_certificate
from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from devices import services
from devices.models import Credential, Device, Event, WhitelistImport

logger = logging.getLogger(__name__)

HEADER = ("ID", "TLS Client Certificate", "Tags")
_COLUMN_KEYS = {"id": "identity", "tls client certificate": "certificate", "tags": "tags"}
_COLUMN_NAMES = {"identity": "ID", "certificate": "TLS Client Certificate", "tags": "Tags"}
_EXPECTED_HEADER = ",".join(HEADER)
# Enough of the upload to tell a CSV file from something else before storing it.
_HEAD_BYTES = 64 * 1024
_ERROR_REPORT_HEADER = ("line", "identity", "message")


class InvalidImportFile(services.InvalidData):
    default_message = "the file is not a whitelist CSV file"


class ImportTooLarge(services.InvalidData):
    default_message = "the file is too large"


class _BadRow(Exception):
    """One row's refusal, with the identity as it was written."""

    def __init__(self, message: str, identity: str = ""):
        super().__init__(message)
        self.message = message
        self.identity = identity[:160]


class _BrokenFile(Exception):
    """The file cannot be read on from this line: bad bytes or malformed CSV."""


@dataclass(slots=True)
class _Certificate:
    pem: str
    fingerprint: str
    serial: str
    not_before: datetime
    not_after: datetime


@dataclass(slots=True)
class _Row:
    line: int
    identity: str
    tags: list
    tags_json: str
    certificate: _Certificate | None


# --- starting an import ---------------------------------------------------------


def start_import(
    connector: Connector,
    fileobj,
    *,
    dry_run: bool = False,
    on_error: str = WhitelistImport.ABORT,
    actor: services.Actor | None = None,
    ip=None,
) -> WhitelistImport:
    """Store an uploaded CSV file under MEDIA_ROOT and run it.

    Small files run here and come back finished; larger ones go to a worker
    once the caller's transaction commits, and their progress is polled.
    `fileobj` is a binary file (an UploadedFile or anything with read/seek).
    Raises InvalidImportFile or ImportTooLarge and stores nothing for a file
    that is plainly not a whitelist CSV. A real (not dry) run is logged as
    started by `actor`, and its result is logged under the same person.
    """
    user = actor.user if actor is not None else None
    if on_error not in dict(WhitelistImport.ON_ERROR):
        raise services.InvalidData('on_error must be "abort" or "skip"')
    size = _size_of(fileobj)
    if size > settings.IMPORT_MAX_BYTES:
        raise ImportTooLarge(f"the file is larger than {settings.IMPORT_MAX_BYTES} bytes")
    _check_head(fileobj)
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
    if size <= settings.IMPORT_INLINE_MAX_BYTES:
        return run_import(record.pk)
    from devices import tasks  # the tasks module imports this one

    transaction.on_commit(partial(tasks.run_whitelist_import.delay, record.pk))
    return record


def _starter(record: WhitelistImport) -> services.Actor | None:
    """Whom an import's result lines name: the person who started it."""
    return services.Actor(record.created_by, "CSV import") if record.created_by else None


def _size_of(fileobj) -> int:
    size = getattr(fileobj, "size", None)
    if size is None:
        fileobj.seek(0, io.SEEK_END)
        size = fileobj.tell()
        fileobj.seek(0)
    return size


def _check_head(fileobj) -> None:
    """Refuse empty, binary and non-UTF-8 files, and a bad header, before storing anything."""
    head = fileobj.read(_HEAD_BYTES)
    fileobj.seek(0)
    if not isinstance(head, bytes):
        raise TypeError("start_import needs a file opened in binary mode")
    if not head.strip():
        raise InvalidImportFile("the file is empty")
    if b"\0" in head:
        raise InvalidImportFile("the file is binary, not CSV text")
    try:
        # An incremental decoder: a character cut in two by the limit is not an error.
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(
            head, final=len(head) < _HEAD_BYTES
        )
    except UnicodeDecodeError as exc:
        raise InvalidImportFile("the file is not UTF-8 text") from exc
    try:
        rows = _rows(io.StringIO(text, newline=""))
        line, header = next(rows)
    except StopIteration as exc:
        raise InvalidImportFile("the file is empty") from exc
    except _BrokenFile as exc:
        raise InvalidImportFile(str(exc)) from exc
    _columns(line, header)


# --- reading the file ------------------------------------------------------------


@contextmanager
def _open_lines(record: WhitelistImport) -> Iterator[Iterator[bytes]]:
    """The stored upload's lines as bytes, each ending in its LF or CR LF."""
    with record.file.storage.open(record.file.name, "rb") as opened:
        # The plain file object when there is one: Django's File iterates lines
        # in Python, several times slower over a million of them.
        yield getattr(opened, "file", opened)


def _decoded(lines: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 text line by line, so a bad byte is reported on its own line.

    Line ends are kept: the csv module then keeps CR LF inside quoted PEM cells.
    """
    for number, line in enumerate(lines, 1):
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BrokenFile(f"line {number}: the file is not UTF-8 text") from exc


def _rows(text) -> Iterator[tuple[int, list[str]]]:
    """(line where the row starts, cells) for each row that is not blank."""
    reader = csv.reader(text, strict=True)
    end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _BrokenFile(f"line {reader.line_num}: malformed CSV ({exc})") from exc
        start, end = end + 1, reader.line_num
        if cells and (cells[0].strip() or any(cell.strip() for cell in cells)):
            yield start, cells


def _columns(line: int, header: list[str]) -> dict[str, int]:
    """Column key → position, from the header row; InvalidImportFile if it is not one."""
    columns = {}
    for position, name in enumerate(header):
        key = _COLUMN_KEYS.get(name.strip().lower())
        if key is None:
            raise InvalidImportFile(
                f'line {line}: unknown column "{name[:60]}"; the header is '
                f'"{_EXPECTED_HEADER}" (the last two columns may be left out)'
            )
        if key in columns:
            raise InvalidImportFile(f'line {line}: column "{name}" appears twice')
        columns[key] = position
    if "identity" not in columns:
        raise InvalidImportFile(f'line {line}: the header has no "ID" column')
    return columns


# --- checking rows ----------------------------------------------------------------


_NO_TAGS = ([], "[]")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _RowChecker:
    """Validates rows of one file: format, duplicates, tags and pinned certificates."""

    def __init__(self, connector: Connector, columns: dict[str, int]):
        self.connector = connector
        self.format = connector.identity_format
        self.width = len(columns)
        self.identity_at = columns["identity"]
        self.certificate_at = columns.get("certificate")
        self.tags_at = columns.get("tags")
        self.names = sorted(columns, key=columns.get)
        self.now = timezone.now()
        # Identity → line of its first row. At a million rows this is the
        # largest thing the import holds in memory (about 150 MB).
        self.seen: dict[str, int] = {}

    def check(self, line: int, cells: list[str]) -> _Row:
        if len(cells) != self.width:
            raw = cells[self.identity_at].strip() if len(cells) > self.identity_at else ""
            if len(cells) > self.width:
                raise _BadRow(
                    f"too many columns: {len(cells)} cells where the header has {self.width}",
                    raw,
                )
            missing = ", ".join(_COLUMN_NAMES[key] for key in self.names[len(cells) :])
            raise _BadRow(f"missing column: {missing}", raw)
        raw = cells[self.identity_at].strip()
        try:
            identity = normalize_identity(raw, self.format)
        except InvalidIdentity as exc:
            raise _BadRow(str(exc), raw) from exc
        first = self.seen.setdefault(identity, line)
        if first != line:
            raise _BadRow(f"duplicate in file: the same ID is on line {first}", raw)
        tags, tags_json = (
            self._tags(cells[self.tags_at], raw) if self.tags_at is not None else _NO_TAGS
        )
        certificate = None
        if self.certificate_at is not None and cells[self.certificate_at].strip():
            certificate = self._certificate(cells[self.certificate_at], identity, raw)
        return _Row(line, identity, tags, tags_json, certificate)

    def _tags(self, cell: str, raw: str) -> tuple[list, str]:
        """The cleaned tags and their JSON text."""
        if not cell.strip():
            return _NO_TAGS
        try:
            parsed = json.loads(cell)
        except ValueError as exc:
            raise _BadRow(f"Tags is not valid JSON ({exc})", raw) from exc
        try:
            tags = services.validate_tags(parsed)
        except services.InvalidData as exc:
            raise _BadRow(f"Tags: {exc.message}", raw) from exc
        if "\\u" in cell:
            # JSON escapes can carry what PostgreSQL's jsonb refuses to store.
            for tag in tags:
                for text in tag.values():
                    if "\x00" in text or _has_surrogate(text):
                        raise _BadRow("Tags hold a NUL or an unpaired surrogate character", raw)
        # Most files already hold clean JSON: keep the text rather than encode again.
        return tags, (cell if tags == parsed else json.dumps(tags))

    def _certificate(self, cell: str, identity: str, raw: str) -> _Certificate:
        try:
            certificate = pinnable_certificate(cell, identity, self.format, self.now)
        except crypto.CryptoError as exc:
            raise _BadRow(f"TLS Client Certificate: {exc}", raw) from exc
        return _Certificate(
            pem=crypto.to_pem(certificate),
            fingerprint=crypto.fingerprint(certificate),
            serial=crypto.serial_hex(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )


# --- writing good rows --------------------------------------------------------------
#
# Three ways, one interface: `add(rows)` while the file is read, then either
# `commit(settle)`, which writes everything in one transaction and calls
# `settle(created, late)` inside it, or `close()` alone, which writes nothing.


class _Conflicted(Exception):
    """Rows whose identity someone else whitelisted while the import ran."""

    def __init__(self, rows: list[tuple[int, str]]):
        super().__init__(f"{len(rows)} rows whitelisted elsewhere")
        self.rows = rows


class _RolledBack(Exception):
    """Ends the pipeline's transaction without writing."""


def _constant_columns(model: type[Model], template: Model, taken: set[str]):
    """(columns, SQL expressions, parameters) for every field not in `taken`.

    Built from the model's own fields and defaults, so a field added to the
    model later is filled the way `Model.save()` would fill it.
    """
    columns, expressions, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname in taken:
            continue
        value = field.get_db_prep_save(field.pre_save(template, add=True), connection)
        columns.append(connection.ops.quote_name(field.column))
        expressions.append(f"CAST(%s AS {field.cast_db_type(connection)})")
        params.append(value)
    return columns, expressions, params


_NO_CERTIFICATE = (None,) * 5
_PINNED_FIELDS = ("certificate_pem", "fingerprint", "serial", "not_before", "not_after")


class _PostgresStage:
    """Good rows in a temporary table of this connection, loaded with COPY.

    `insert()` moves what is staged into the devices table with one
    `INSERT … SELECT … ON CONFLICT DO NOTHING`, pinned certificates with it.
    """

    def __init__(self, import_id: int, template: Device):
        quote = connection.ops.quote_name
        self.table = quote(f"whitelist_import_{import_id}")
        self.count = 0
        self.with_certificates = 0
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.table} (line integer, identity text, tags jsonb,"
                " certificate_pem text, fingerprint text, serial text,"
                " not_before timestamptz, not_after timestamptz)"
            )
        columns, expressions, self.params = _constant_columns(
            Device, template, {"identity", "tags"}
        )
        new = (
            f"new AS (INSERT INTO {quote(Device._meta.db_table)} "  # noqa: S608
            f"(identity, tags, {', '.join(columns)}) "
            f"SELECT identity, tags, {', '.join(expressions)} FROM {self.table} ORDER BY line "
            "ON CONFLICT (connector_id, identity) DO NOTHING RETURNING id, identity)"
        )
        # What ON CONFLICT skipped: identities whitelisted since the batch was checked.
        late = (
            f"SELECT staged.line, staged.identity FROM {self.table} AS staged "  # noqa: S608
            "LEFT JOIN new USING (identity) WHERE new.id IS NULL ORDER BY staged.line"
        )
        pinned_columns, pinned_expressions, pinned_params = _constant_columns(
            Credential,
            Credential(kind=Connector.CERTIFICATE, state=Credential.INACTIVE),
            {"device_id", *_PINNED_FIELDS},
        )
        pinned = (
            f"pinned AS (INSERT INTO {quote(Credential._meta.db_table)} "  # noqa: S608
            f"(device_id, {', '.join(_PINNED_FIELDS)}, {', '.join(pinned_columns)}) "
            f"SELECT new.id, {', '.join(f'staged.{name}' for name in _PINNED_FIELDS)}, "
            f"{', '.join(pinned_expressions)} FROM new JOIN {self.table} AS staged "
            "USING (identity) WHERE staged.certificate_pem IS NOT NULL)"
        )
        self.insert_sql = f"WITH {new} {late}"
        self.insert_pinned_sql = f"WITH {new}, {pinned} {late}"
        self.pinned_params = self.params + pinned_params
        self.copy_sql = (
            f"COPY {quote(Device._meta.db_table)} (identity, tags, {', '.join(columns)}) FROM STDIN"
        )

    def add(self, rows: list[_Row]) -> None:
        with connection.cursor() as cursor, cursor.copy(f"COPY {self.table} FROM STDIN") as copy:
            for row in rows:
                pinned = row.certificate
                if pinned is None:
                    copy.write_row((row.line, row.identity, row.tags_json, *_NO_CERTIFICATE))
                else:
                    self.with_certificates += 1
                    copy.write_row(
                        (
                            row.line,
                            row.identity,
                            row.tags_json,
                            pinned.pem,
                            pinned.fingerprint,
                            pinned.serial,
                            pinned.not_before,
                            pinned.not_after,
                        )
                    )
        self.count += len(rows)

    def copy_directly(self, rows: list[_Row]) -> bool:
        """COPY rows without certificates straight into the devices table.

        As fast as loading can be; but COPY knows no ON CONFLICT, so when an
        identity was whitelisted since its batch was checked, the batch is
        undone (a savepoint) and False says to stage it instead.
        """
        from psycopg.errors import UniqueViolation

        try:
            with transaction.atomic():
                with connection.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
                    for row in rows:
                        copy.write_row((row.identity, row.tags_json, *self.params))
        except UniqueViolation:
            return False
        return True

    def insert(self) -> tuple[int, list[tuple[int, str]]]:
        """Write what is staged: (devices created, rows someone else whitelisted first)."""
        with connection.cursor() as cursor:
            if self.with_certificates:
                cursor.execute(self.insert_pinned_sql, self.pinned_params)
            else:
                cursor.execute(self.insert_sql, self.params)
            late = cursor.fetchall()
            cursor.execute(f"TRUNCATE {self.table}")
        created, self.count, self.with_certificates = self.count - len(late), 0, 0
        return created, late

    def commit(self, settle) -> None:
        with transaction.atomic():
            settle(*self.insert())

    def close(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")


class _PostgresPipeline:
    """Writes each batch while the next one is read, in a worker thread.

    The thread has its own connection and one transaction for the whole
    import, so `abort` still writes nothing unless every row is good; but
    PostgreSQL updates the devices table and its indexes while Python checks
    the next rows, which halves a large import. Only usable when the caller
    holds no transaction: the second connection sees committed rows only.
    """

    def __init__(self, import_id: int, template: Device):
        # Two batches in flight at most: memory stays flat, and a slow
        # database slows the reading down instead of queueing the file.
        self.batches: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=(import_id, template), name=f"whitelist-import-{import_id}"
        )
        self.thread.start()

    def add(self, rows: list[_Row]) -> None:
        if self.error is None:
            self.batches.put(rows)

    def commit(self, settle) -> None:
        self.batches.put(settle)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.thread.is_alive():
            self.batches.put(None)
            self.thread.join()

    def _run(self, import_id: int, template: Device) -> None:
        created, late, told = 0, [], False
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    # Foreign keys are checked at commit by default: check them with
                    # each batch instead, while the reader is still busy.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                stage = _PostgresStage(import_id, template)
                while (item := self.batches.get()) is not None:
                    if callable(item):
                        told = True
                        item(created, late)
                        return
                    pinning = any(row.certificate is not None for row in item)
                    if not pinning and stage.copy_directly(item):
                        created += len(item)
                        continue
                    stage.add(item)
                    batch_created, batch_late = stage.insert()
                    created += batch_created
                    late += batch_late
                told = True
                raise _RolledBack()
        except _RolledBack:
            pass
        except Exception as exc:  # noqa: BLE001 - handed to the reading thread, which reports it.
            self.error = exc
            # Keep taking batches until the reader says it is done, so it never blocks.
            while not told:
                item = self.batches.get()
                told = item is None or callable(item)
        finally:
            connection.close()


class _SpoolStage:
    """Good rows in a temporary file, written with bulk_create (SQLite and the rest)."""

    def __init__(self, import_id: int, template: Device):
        self.template = template
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")

    def add(self, rows: list[_Row]) -> None:
        for row in rows:
            pinned = row.certificate
            certificate = None
            if pinned is not None:
                certificate = [
                    pinned.pem,
                    pinned.fingerprint,
                    pinned.serial,
                    pinned.not_before.isoformat(),
                    pinned.not_after.isoformat(),
                ]
            self.file.write(json.dumps([row.line, row.identity, row.tags, certificate]) + "\n")

    def _batches(self) -> Iterator[list[_Row]]:
        self.file.seek(0)
        batch = []
        for text in self.file:
            line, identity, tags, certificate = json.loads(text)
            if certificate is not None:
                pem, fingerprint, serial, not_before, not_after = certificate
                certificate = _Certificate(
                    pem,
                    fingerprint,
                    serial,
                    datetime.fromisoformat(not_before),
                    datetime.fromisoformat(not_after),
                )
            batch.append(_Row(line, identity, tags, "", certificate))
            if len(batch) >= settings.IMPORT_BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch

    def commit(self, settle) -> None:
        template = self.template
        created, late = 0, []
        with transaction.atomic():
            for batch in self._batches():
                # On SQLite this transaction holds the write lock, so nobody
                # can whitelist one of these identities meanwhile.
                taken = _whitelisted(template.connector, [row.identity for row in batch])
                late += [(row.line, row.identity) for row in batch if row.identity in taken]
                fresh = [row for row in batch if row.identity not in taken]
                devices = Device.objects.bulk_create(
                    Device(
                        connector_id=template.connector_id,
                        identity=row.identity,
                        status=template.status,
                        tags=row.tags,
                        activation_expires_at=template.activation_expires_at,
                    )
                    for row in fresh
                )
                Credential.objects.bulk_create(
                    Credential(
                        device=device,
                        kind=Connector.CERTIFICATE,
                        state=Credential.INACTIVE,
                        certificate_pem=row.certificate.pem,
                        fingerprint=row.certificate.fingerprint,
                        serial=row.certificate.serial,
                        not_before=row.certificate.not_before,
                        not_after=row.certificate.not_after,
                    )
                    for row, device in zip(fresh, devices, strict=True)
                    if row.certificate is not None
                )
                created += len(devices)
            settle(created, late)

    def close(self) -> None:
        self.file.close()


def _whitelisted(connector: Connector, identities: list[str]) -> set[str]:
    """Which of `identities` the connector already has, in one query."""
    if not identities:
        return set()
    if connection.vendor == "postgresql":
        # One array parameter: an IN list of thousands of placeholders costs
        # ten times more to build and plan.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT identity FROM {connection.ops.quote_name(Device._meta.db_table)} "  # noqa: S608
                "WHERE connector_id = %s AND identity = ANY(%s)",
                [connector.pk, identities],
            )
            return {identity for (identity,) in cursor.fetchall()}
    return set(
        Device.objects.filter(connector=connector, identity__in=identities).values_list(
            "identity", flat=True
        )
    )


# --- running an import ---------------------------------------------------------------


def run_import(import_id: int) -> WhitelistImport:
    """Run a pending import to its end; a second call for the same import does nothing."""
    claimed = WhitelistImport.objects.filter(pk=import_id, status=WhitelistImport.PENDING).update(
        status=WhitelistImport.RUNNING
    )
    record = WhitelistImport.objects.select_related("connector", "created_by").get(pk=import_id)
    if not claimed:
        return record
    run = _ImportRun(record)
    try:
        try:
            run.execute()
        except _GivenUp:
            raise
        except Exception:  # noqa: BLE001 - an import must never be left "running" forever.
            logger.exception("whitelist import %s stopped", import_id)
            run.fail("the import stopped unexpectedly; nothing was written")
    except _GivenUp:
        logger.warning(
            "whitelist import %s was failed as stalled while it ran; it wrote nothing", import_id
        )
        record.refresh_from_db()
    finally:
        run.close()
    return record


def fail_stalled_imports() -> dict[str, int]:
    """Periodic: end imports whose worker went away, and hand lost ones out again.

    An import that made no progress for IMPORT_STALL_SECONDS lost its worker
    (killed, out of memory, a host that went down): it is failed, and the
    upload removed. Its write had not committed, so nothing was written. Should
    its worker be alive after all, its next progress update or its final one
    finds the import no longer running and rolls back (`_GivenUp`), so an
    import ends exactly once either way.

    A pending import that no worker took in that time (its task was lost with
    a broker) is queued again; a task that arrives twice runs once.
    """
    from devices import tasks  # the tasks module imports this one

    stall = settings.IMPORT_STALL_SECONDS
    cutoff = timezone.now() - timedelta(seconds=stall)
    ended = requeued = 0
    stalled = WhitelistImport.objects.filter(
        status=WhitelistImport.RUNNING, updated_at__lt=cutoff
    ).select_related("connector", "created_by")
    for record in stalled:
        message = f"its worker stopped (no progress for {stall} s); nothing was written"
        kept = record.errors[: settings.IMPORT_MAX_STORED_ERRORS - 1]
        errors = [*kept, _error(None, "", message)]
        now = timezone.now()
        # Only if no progress arrived since it was read.
        if not WhitelistImport.objects.filter(
            pk=record.pk, status=WhitelistImport.RUNNING, updated_at=record.updated_at
        ).update(
            status=WhitelistImport.FAILED,
            created=0,
            errors=errors,
            error_count=record.error_count + 1,
            finished_at=now,
            updated_at=now,
        ):
            continue
        ended += 1
        logger.warning("whitelist import %s failed: no progress for %d s", record.pk, stall)
        if not record.dry_run:
            who = f" by {record.created_by.get_username()}" if record.created_by else ""
            services.record_event(
                record.connector_id,
                "",
                Event.IMPORT,
                f"CSV import {record.pk}{who} stopped: its worker went away, nothing written",
                actor=_starter(record),
            )
        _remove_upload(record)
    for pk in WhitelistImport.objects.filter(
        status=WhitelistImport.PENDING, updated_at__lt=cutoff
    ).values_list("pk", flat=True):
        if WhitelistImport.objects.filter(
            pk=pk, status=WhitelistImport.PENDING, updated_at__lt=cutoff
        ).update(updated_at=timezone.now()):
            requeued += 1
            tasks.run_whitelist_import.delay(pk)
    return {"failed": ended, "queued again": requeued}


class _GivenUp(Exception):
    """fail_stalled_imports ended this import while it ran: stop, write nothing."""


def _error(line: int | None, identity: str, message: str) -> dict:
    return {"line": line, "identity": identity, "message": message}


def _remove_upload(record: WhitelistImport) -> None:
    """The uploaded CSV is only read by its import; its name stays on the record,
    as the error report's name derives from it."""
    if record.file.name:
        record.file.storage.delete(record.file.name)


def _record_progress(import_id: int, **fields) -> None:
    """Commit progress of a running import; _GivenUp if it is no longer running."""
    if not WhitelistImport.objects.filter(pk=import_id, status=WhitelistImport.RUNNING).update(
        updated_at=timezone.now(), **fields
    ):
        raise _GivenUp()


class _ImportRun:
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
        self.report_writer.writerow(_ERROR_REPORT_HEADER)
        self.stage = None
        self.checker = None

    # The phases ---------------------------------------------------------------

    def execute(self) -> None:
        started = time.monotonic()
        try:
            total = self._count()
            _record_progress(self.record.pk, total=total)
            self.record.total = total
            self._validate()
        except (_BrokenFile, InvalidImportFile) as exc:
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
        with _open_lines(self.record) as lines:
            for text in lines:
                if text.count(b'"') % 2:
                    quoted = not quoted
                if not quoted and text.strip(b" \t\r\n,"):
                    rows += 1
        return max(rows - 1, 0)

    def _validate(self) -> None:
        with _open_lines(self.record) as lines:
            rows = _rows(_decoded(lines))
            try:
                line, header = next(rows)
            except StopIteration as exc:
                raise InvalidImportFile("the file is empty") from exc
            self.checker = checker = _RowChecker(self.connector, _columns(line, header))
            if not self.record.dry_run:
                self.stage = self._stage_class()(self.record.pk, self._template())
            batch: list[_Row | tuple[int, _BadRow]] = []
            for line, cells in rows:
                self.processed += 1
                try:
                    batch.append(checker.check(line, cells))
                except _BadRow as exc:
                    batch.append((line, exc))
                if len(batch) >= self.batch_size:
                    self._settle(batch)
                    batch = []
            self._settle(batch)

    def _settle(self, batch: list) -> None:
        """Check a batch against the whitelist (one query), stage its good rows, report."""
        taken = _whitelisted(
            self.connector, [row.identity for row in batch if isinstance(row, _Row)]
        )
        good = []
        errors_before = len(self.errors)
        for row in batch:
            if not isinstance(row, _Row):
                line, problem = row
                self._reject(line, problem.identity, problem.message)
            elif row.identity in taken:
                self._reject(row.line, row.identity, "already whitelisted in this connector")
            else:
                good.append(row)
        if self.error_count and self.record.on_error == WhitelistImport.ABORT:
            # Nothing will be written: let go of what was staged (and of the
            # pipeline's locks on those identities) now, not at the end.
            self._discard()
        elif self.stage is not None and good:
            self.stage.add(good)
        progress = {"processed": self.processed, "error_count": self.error_count}
        if len(self.errors) != errors_before:
            progress["errors"] = self.errors
        _record_progress(self.record.pk, **progress)

    @staticmethod
    def _stage_class():
        if connection.vendor != "postgresql":
            return _SpoolStage
        # A caller's open transaction holds rows a second connection cannot see.
        return _PostgresStage if connection.in_atomic_block else _PostgresPipeline

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
                raise _Conflicted(late)
            for line, identity in late:
                self._reject(line, identity, "already whitelisted in this connector")
            self._finish(WhitelistImport.DONE, created=created)

        try:
            self.stage.commit(settle)
        except _Conflicted as exc:
            for line, identity in exc.rows:
                self._reject(line, identity, "already whitelisted in this connector")
            self._finish(WhitelistImport.FAILED, created=0)

    def _discard(self) -> None:
        if self.stage is not None:
            self.stage.close()
            self.stage = None

    # Reporting ------------------------------------------------------------------

    def _reject(self, line: int | None, identity: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < settings.IMPORT_MAX_STORED_ERRORS:
            self.errors.append(_error(line, identity, message))
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
        # Only while it is still running: the stall sweep may have ended it.
        # Raising here rolls back a write this runs inside.
        _record_progress(
            record.pk,
            status=status,
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
                self.connector.pk, "", Event.IMPORT, self._summary(), actor=_starter(self.record)
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

    def close(self) -> None:
        self._discard()
        self.report.close()
        # Nothing reads the upload once its import has ended, and a file with a
        # private key in it must not stay at rest (the error report names no key).
        _remove_upload(self.record)


# --- reports and export -----------------------------------------------------------------


def error_report_name(record: WhitelistImport) -> str:
    """Where the full error report of an import is kept, next to its upload."""
    return record.file.name.removesuffix(".csv") + "-errors.csv"


def error_report_chunks(record: WhitelistImport) -> Iterator[bytes]:
    """The full error report (`line,identity,message`) as CSV bytes."""
    storage, name = record.file.storage, error_report_name(record)
    if not record.error_count or not storage.exists(name):
        yield (",".join(_ERROR_REPORT_HEADER) + "\n").encode()
        return
    with storage.open(name, "rb") as report:
        yield from iter(partial(report.read, 64 * 1024), b"")


def export_devices_csv(connector: Connector, chunk_rows: int = 2000) -> Iterator[str]:
    """Every device of `connector` in the import format, as CSV text chunks.

    Pinned certificates (the newest inactive or active certificate credential
    not issued through a CA or trust anchor) are written as PEM, so the file
    re-imports into another connector as is.
    Devices are read in primary-key pages: memory stays flat at any size.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    last_id = 0
    while True:
        page = list(
            Device.objects.filter(connector=connector, pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", "identity", "tags")[:chunk_rows]
        )
        if not page:
            break
        pems = dict(
            Credential.objects.filter(
                device_id__in=[pk for pk, _, _ in page],
                kind=Connector.CERTIFICATE,
                state__in=[Credential.INACTIVE, Credential.ACTIVE],
                issuer_fingerprint="",
            )
            .order_by("device_id", "pk")
            .values_list("device_id", "certificate_pem")
        )
        for pk, identity, tags in page:
            writer.writerow((identity, pems.get(pk, ""), json.dumps(tags) if tags else ""))
        last_id = page[-1][0]
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
