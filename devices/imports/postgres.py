"""The PostgreSQL writers: COPY into a temporary table, then one INSERT … ON CONFLICT.

`PostgresStage` stages and writes on the caller's connection (used inside a
caller's transaction); `PostgresPipeline` writes each batch on a second
connection while the next batch is read.
"""

import queue
import threading

from django.db import connection, transaction

from devices import sql
from devices.imports.checker import Row
from devices.models import Device, WhitelistImport


class RolledBack(Exception):
    """Ends the pipeline's transaction without writing."""


_NO_CERTIFICATE = (None,) * 5
# How often the reading thread tells how far the writing one got, once the file is read.
PROGRESS_SECONDS = 1.0


class PostgresStage:
    """Good rows in a temporary table of this connection, loaded with COPY.

    `insert()` moves what is staged into the devices table with one
    `INSERT … SELECT … ON CONFLICT DO NOTHING`, pinned certificates with it
    (the statements: devices.sql.import_stage).
    """

    def __init__(self, name: str, template: Device):
        self.sql = sql.import_stage(name, template, connection)
        self.count = 0
        self.with_certificates = 0
        with connection.cursor() as cursor:
            cursor.execute(self.sql.drop)
            cursor.execute(self.sql.create)

    def add(self, rows: list[Row]) -> None:
        with connection.cursor() as cursor, cursor.copy(self.sql.copy_rows) as copy:
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

    def copy_directly(self, rows: list[Row]) -> bool:
        """COPY rows without certificates straight into the devices table.

        As fast as loading can be; but COPY knows no ON CONFLICT, so when an
        identity was whitelisted since its batch was checked, the batch is
        undone (a savepoint) and False says to stage it instead.
        """
        from psycopg.errors import UniqueViolation

        try:
            with transaction.atomic():
                with connection.cursor() as cursor, cursor.copy(self.sql.copy_devices) as copy:
                    for row in rows:
                        copy.write_row((row.identity, row.tags_json, *self.sql.params))
        except UniqueViolation:
            return False
        return True

    def insert(self) -> tuple[int, list[tuple[int, str]]]:
        """Write what is staged: (devices created, rows someone else whitelisted first)."""
        with connection.cursor() as cursor:
            if self.with_certificates:
                cursor.execute(self.sql.insert_pinned, self.sql.pinned_params)
            else:
                cursor.execute(self.sql.insert, self.sql.params)
            late = cursor.fetchall()
            cursor.execute(self.sql.truncate)
        created, self.count, self.with_certificates = self.count - len(late), 0, 0
        return created, late

    def commit(self, settle, progress) -> None:
        with transaction.atomic():
            created, late = self.insert()
            progress(WhitelistImport.FINISHING, created)
            settle(created, late)

    def close(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(self.sql.drop)


class PostgresPipeline:
    """Writes each batch while the next one is read, in a worker thread.

    The thread has its own connection and one transaction for the whole
    import, so `abort` still writes nothing unless every row is good; but
    PostgreSQL updates the devices table and its indexes while Python checks
    the next rows, which halves a large import. Only usable when the caller
    holds no transaction: the second connection sees committed rows only.
    """

    def __init__(self, name: str, template: Device):
        # Two batches in flight at most: memory stays flat, and a slow
        # database slows the reading down instead of queueing the file.
        self.batches: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        # Devices the thread added so far, and whether it settles: read by the
        # reading thread, which must not update the import once settling began
        # (the settling update holds the import's row until the commit).
        self.written = 0
        self.settling = False
        self.settling_lock = threading.Lock()
        self.thread = threading.Thread(
            target=self._run, args=(name, template), name=f"whitelist-import-{name}"
        )
        self.thread.start()

    def add(self, rows: list[Row]) -> None:
        if self.error is None:
            self.batches.put(rows)

    def commit(self, settle, progress) -> None:
        self.batches.put(settle)
        while self.thread.is_alive():
            self.thread.join(timeout=PROGRESS_SECONDS)
            with self.settling_lock:
                if self.thread.is_alive():
                    phase = WhitelistImport.FINISHING if self.settling else WhitelistImport.WRITING
                    progress(phase, self.written)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.thread.is_alive():
            self.batches.put(None)
            self.thread.join()

    def _run(self, name: str, template: Device) -> None:
        created, late, told = 0, [], False
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    # Foreign keys are checked at commit by default: check them with
                    # each batch instead, while the reader is still busy.
                    cursor.execute(sql.CHECK_CONSTRAINTS_NOW)
                stage = PostgresStage(name, template)
                while (item := self.batches.get()) is not None:
                    if callable(item):
                        told = True
                        with self.settling_lock:
                            self.settling = True
                        item(created, late)
                        return
                    pinning = any(row.certificate is not None for row in item)
                    if not pinning and stage.copy_directly(item):
                        created += len(item)
                    else:
                        stage.add(item)
                        batch_created, batch_late = stage.insert()
                        created += batch_created
                        late += batch_late
                    self.written = created
                told = True
                raise RolledBack()
        except RolledBack:
            pass
        except Exception as exc:  # noqa: BLE001 - handed to the reading thread, which reports it.
            self.error = exc
            # Keep taking batches until the reader says it is done, so it never blocks.
            while not told:
                item = self.batches.get()
                told = item is None or callable(item)
        finally:
            connection.close()
