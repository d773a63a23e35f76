"""Checking rows of a whitelist CSV: identity format, duplicates, tags, pinned certificates."""

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from core import crypto
from devices import services, sql
from devices.imports.reader import COLUMN_NAMES
from devices.models import Device
from devices.services.pinning import pinnable_certificate


class BadRow(Exception):
    """One row's refusal, with the identity as it was written."""

    def __init__(self, message: str, identity: str = ""):
        super().__init__(message)
        self.message = message
        self.identity = identity[:160]


@dataclass(slots=True)
class Certificate:
    pem: str
    fingerprint: str
    serial: str
    not_before: datetime
    not_after: datetime


@dataclass(slots=True)
class Row:
    line: int
    identity: str
    tags: list
    tags_json: str
    certificate: Certificate | None


_NO_TAGS = ([], "[]")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class RowChecker:
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

    def check(self, line: int, cells: list[str]) -> Row:
        if len(cells) != self.width:
            raw = cells[self.identity_at].strip() if len(cells) > self.identity_at else ""
            if len(cells) > self.width:
                raise BadRow(
                    f"too many columns: {len(cells)} cells where the header has {self.width}",
                    raw,
                )
            missing = ", ".join(COLUMN_NAMES[key] for key in self.names[len(cells) :])
            raise BadRow(f"missing column: {missing}", raw)
        raw = cells[self.identity_at].strip()
        try:
            identity = normalize_identity(raw, self.format)
        except InvalidIdentity as exc:
            raise BadRow(str(exc), raw) from exc
        first = self.seen.setdefault(identity, line)
        if first != line:
            raise BadRow(f"duplicate in file: the same ID is on line {first}", raw)
        tags, tags_json = (
            self._tags(cells[self.tags_at], raw) if self.tags_at is not None else _NO_TAGS
        )
        certificate = None
        if self.certificate_at is not None and cells[self.certificate_at].strip():
            certificate = self._certificate(cells[self.certificate_at], identity, raw)
        return Row(line, identity, tags, tags_json, certificate)

    def _tags(self, cell: str, raw: str) -> tuple[list, str]:
        """The cleaned tags and their JSON text."""
        if not cell.strip():
            return _NO_TAGS
        try:
            parsed = json.loads(cell)
        except ValueError as exc:
            raise BadRow(f"Tags is not valid JSON ({exc})", raw) from exc
        try:
            tags = services.validate_tags(parsed)
        except services.InvalidData as exc:
            raise BadRow(f"Tags: {exc.message}", raw) from exc
        if "\\u" in cell:
            # JSON escapes can carry what PostgreSQL's jsonb refuses to store.
            for tag in tags:
                for text in tag.values():
                    if "\x00" in text or _has_surrogate(text):
                        raise BadRow("Tags hold a NUL or an unpaired surrogate character", raw)
        # Most files already hold clean JSON: keep the text rather than encode again.
        return tags, (cell if tags == parsed else json.dumps(tags))

    def _certificate(self, cell: str, identity: str, raw: str) -> Certificate:
        try:
            certificate = pinnable_certificate(cell, identity, self.format, self.now)
        except crypto.CryptoError as exc:
            raise BadRow(f"TLS Client Certificate: {exc}", raw) from exc
        return Certificate(
            pem=crypto.to_pem(certificate),
            fingerprint=crypto.fingerprint(certificate),
            serial=crypto.serial_hex(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )


def whitelisted(connector: Connector, identities: list[str]) -> set[str]:
    """Which of `identities` the connector already has, in one query."""
    if not identities:
        return set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql.WHITELISTED_IDENTITIES, [connector.pk, identities])
            return {identity for (identity,) in cursor.fetchall()}
    return set(
        Device.objects.filter(connector=connector, identity__in=identities).values_list(
            "identity", flat=True
        )
    )
