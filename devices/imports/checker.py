"""Checking rows of a whitelist CSV: identity format, duplicates, tags, pinned certificates.

Row errors speak to whoever prepares the spreadsheet: they name the cell, say
what is wrong with it and how to put it right, and never quote an exception.
"""

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
TAGS_EXAMPLE = '[{"name": "site", "value": "north"}]'
_TAGS_LIST = f"The Tags cell must be a JSON list like {TAGS_EXAMPLE}, or be left empty"
# What devices.services.validate_tags refuses, in a spreadsheet's words.
_TAG_PROBLEMS = {
    "tags must be a JSON list": f"{_TAGS_LIST}; this one is JSON but not a list.",
    "each tag must be an object": (
        'In the Tags cell, each tag must be written {"name": "…", "value": "…"}, '
        "with exactly those two keys."
    ),
    "tag names are": "In the Tags cell, each tag name must be text of 1 to 64 characters.",
    "tag values are": "In the Tags cell, each tag value must be at most 256 characters.",
}
_CERTIFICATE = "The TLS Client Certificate cell"
_PEM = "a PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)"


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
        # A file with a private key in it must not stay at rest (devices.imports.run).
        self.saw_private_key = False
        # Identity → line of its first row. At a million rows this is the
        # largest thing the import holds in memory (about 150 MB).
        self.seen: dict[str, int] = {}

    def check(self, line: int, cells: list[str]) -> Row:
        if len(cells) != self.width:
            raw = cells[self.identity_at].strip() if len(cells) > self.identity_at else ""
            if len(cells) > self.width:
                raise BadRow(
                    f"This row has {len(cells)} cells but the header has {self.width} columns; "
                    "remove the extra cells, or put quotes around a cell that holds a comma.",
                    raw,
                )
            names = [COLUMN_NAMES[key] for key in self.names[len(cells) :]]
            missing = " and ".join(names) + (" cells" if len(names) > 1 else " cell")
            raise BadRow(
                f"This row stops before its {missing}; every row needs {self.width} cells "
                "(an empty cell is fine, but keep its comma).",
                raw,
            )
        raw = cells[self.identity_at].strip()
        try:
            identity = normalize_identity(raw, self.format)
        except InvalidIdentity as exc:
            raise BadRow(self._identity_problem(raw, exc), raw) from exc
        first = self.seen.setdefault(identity, line)
        if first != line:
            raise BadRow(
                f"This ID is also on line {first} of the file; keep one of the two rows.", raw
            )
        tags, tags_json = (
            self._tags(cells[self.tags_at], raw) if self.tags_at is not None else _NO_TAGS
        )
        certificate = None
        if self.certificate_at is not None and cells[self.certificate_at].strip():
            certificate = self._certificate(cells[self.certificate_at], identity, raw)
        return Row(line, identity, tags, tags_json, certificate)

    def _identity_problem(self, raw: str, exc: InvalidIdentity) -> str:
        """What is wrong with an ID cell, from the identity format's own reason."""
        expected = f"The ID cell must be {self.format.describe()}"
        if not raw:
            return f"{expected}; this one is empty."
        reason = str(exc).split(";", 1)[0]
        reason = reason.removeprefix("identity ").removeprefix("must ")
        if str(exc).startswith("identity must start"):
            return f"{expected}; this one does not {reason}."
        if reason == str(exc).split(";", 1)[0]:
            return f"{expected}; {reason}."
        return f"{expected}; this one {reason}."

    def _tags(self, cell: str, raw: str) -> tuple[list, str]:
        """The cleaned tags and their JSON text."""
        if not cell.strip():
            return _NO_TAGS
        try:
            parsed = json.loads(cell)
        except ValueError as exc:
            raise BadRow(f"{_TAGS_LIST}; this one is not JSON.", raw) from exc
        try:
            tags = services.validate_tags(parsed)
        except services.InvalidData as exc:
            problem = next(
                (text for start, text in _TAG_PROBLEMS.items() if exc.message.startswith(start)),
                f"{_TAGS_LIST}; this one is not.",
            )
            raise BadRow(problem, raw) from exc
        if "\\u" in cell:
            # JSON escapes can carry what PostgreSQL's jsonb refuses to store.
            for tag in tags:
                for text in tag.values():
                    if "\x00" in text or _has_surrogate(text):
                        raise BadRow(
                            "The Tags cell holds an invisible control character (a \\u0000 or "
                            "an unpaired \\ud800-style escape); delete it and type the text again.",
                            raw,
                        )
        # Most files already hold clean JSON: keep the text rather than encode again.
        return tags, (cell if tags == parsed else json.dumps(tags))

    def _certificate(self, cell: str, identity: str, raw: str) -> Certificate:
        try:
            certificate = pinnable_certificate(cell, identity, self.format, self.now)
        except crypto.CryptoError as exc:
            raise BadRow(self._certificate_problem(cell, identity, str(exc)), raw) from exc
        return Certificate(
            pem=crypto.to_pem(certificate),
            fingerprint=crypto.fingerprint(certificate),
            serial=crypto.serial_hex(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )

    def _certificate_problem(self, cell: str, identity: str, reason: str) -> str:
        """What is wrong with a certificate cell, from what crypto refused."""
        if "PRIVATE KEY" in cell or "private key" in reason:
            self.saw_private_key = True
            return (
                f"{_CERTIFICATE} holds a private key, which must never be in this file; "
                "keep only the certificate and keep the key on the device."
            )
        if reason.startswith("the certificate CN"):
            name = reason.split('"')[1] if reason.count('"') >= 2 else ""
            return (
                f'The certificate in this row is for "{name}", not for the ID "{identity}"; '
                "move it to its own device's row, or leave the cell empty."
            )
        if reason.startswith("the certificate expired"):
            return (
                f"The certificate in this row has expired ({reason.rsplit(' ', 1)[-1]}); "
                "put a current one in the cell, or leave it empty."
            )
        if reason.startswith("expected one certificate"):
            return f"{_CERTIFICATE} holds several certificates; keep only the device's own one."
        return f"{_CERTIFICATE} must hold {_PEM}, or be left empty; this one does not."


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
