"""Writing an import's good rows: one interface, a writer per database.

A stage takes `add(rows)` while the file is read, then either
`commit(settle, progress)`, which writes everything in one transaction and
calls `settle(created, late)` inside it (`late`: rows someone else whitelisted
meanwhile), or `close()` alone, which writes nothing. While it commits it tells
`progress(phase, done)` how many devices it added (WRITING), once per batch,
and when it starts to settle (FINISHING). On PostgreSQL the stage is COPY-based
(`devices.imports.postgres`); elsewhere rows wait in a spool file.
"""

import json
import tempfile
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction

from connectors.models import Connector
from devices.imports import postgres
from devices.imports.checker import Certificate, Row, whitelisted
from devices.models import Credential, Device, WhitelistImport


def open_stage(name: str, template: Device):
    """The writer for this database and transaction, ready to take rows.

    `name` tells one run's stage from another's (an import and its attempt).
    """
    if connection.vendor != "postgresql":
        return SpoolStage(name, template)
    # A caller's open transaction holds rows a second connection cannot see.
    stage = postgres.PostgresStage if connection.in_atomic_block else postgres.PostgresPipeline
    return stage(name, template)


class SpoolStage:
    """Good rows in a temporary file, written with bulk_create (SQLite and the rest)."""

    def __init__(self, name: str, template: Device):
        self.template = template
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")

    def add(self, rows: list[Row]) -> None:
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

    def _batches(self) -> Iterator[list[Row]]:
        self.file.seek(0)
        batch = []
        for text in self.file:
            line, identity, tags, certificate = json.loads(text)
            if certificate is not None:
                pem, fingerprint, serial, not_before, not_after = certificate
                certificate = Certificate(
                    pem,
                    fingerprint,
                    serial,
                    datetime.fromisoformat(not_before),
                    datetime.fromisoformat(not_after),
                )
            batch.append(Row(line, identity, tags, "", certificate))
            if len(batch) >= settings.IMPORT_BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch

    def commit(self, settle, progress) -> None:
        template = self.template
        created, late = 0, []
        with transaction.atomic():
            for batch in self._batches():
                # On SQLite this transaction holds the write lock, so nobody
                # can whitelist one of these identities meanwhile.
                taken = whitelisted(template.connector, [row.identity for row in batch])
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
                progress(WhitelistImport.WRITING, created)
            progress(WhitelistImport.FINISHING, created)
            settle(created, late)

    def close(self) -> None:
        self.file.close()
