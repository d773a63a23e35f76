"""Reading an uploaded whitelist CSV: sniffing the upload, then its rows.

Header: the first non-blank line names the columns, `ID,TLS Client
Certificate,Tags` as the export writes them. Names are matched without regard to
case or surrounding spaces and in any order; `ID` is required, the other two may
be left out. Rows whose cells are all empty (spreadsheets append them) are skipped.
"""

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from devices import services
from devices.models import WhitelistImport

HEADER = ("ID", "TLS Client Certificate", "Tags")
_COLUMN_KEYS = {"id": "identity", "tls client certificate": "certificate", "tags": "tags"}
COLUMN_NAMES = {"identity": "ID", "certificate": "TLS Client Certificate", "tags": "Tags"}
_EXPECTED_HEADER = ",".join(HEADER)
# Enough of the upload to tell a CSV file from something else before storing it.
_HEAD_BYTES = 64 * 1024


class InvalidImportFile(services.InvalidData):
    default_message = "the file is not a whitelist CSV file"


class ImportTooLarge(services.InvalidData):
    default_message = "the file is too large"


class BrokenFile(Exception):
    """The file cannot be read on from this line: bad bytes or malformed CSV."""


def size_of(fileobj) -> int:
    size = getattr(fileobj, "size", None)
    if size is None:
        fileobj.seek(0, io.SEEK_END)
        size = fileobj.tell()
        fileobj.seek(0)
    return size


def check_head(fileobj) -> None:
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
        rows = csv_rows(io.StringIO(text, newline=""))
        line, header = next(rows)
    except StopIteration as exc:
        raise InvalidImportFile("the file is empty") from exc
    except BrokenFile as exc:
        raise InvalidImportFile(str(exc)) from exc
    header_columns(line, header)


@contextmanager
def open_lines(record: WhitelistImport) -> Iterator[Iterator[bytes]]:
    """The stored upload's lines as bytes, each ending in its LF or CR LF."""
    with record.file.storage.open(record.file.name, "rb") as opened:
        # The plain file object when there is one: Django's File iterates lines
        # in Python, several times slower over a million of them.
        yield getattr(opened, "file", opened)


def decoded(lines: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 text line by line, so a bad byte is reported on its own line.

    Line ends are kept: the csv module then keeps CR LF inside quoted PEM cells.
    """
    for number, line in enumerate(lines, 1):
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BrokenFile(
                f"Line {number} is not UTF-8 text; save the file as CSV UTF-8 "
                "(in Excel: Save As, CSV UTF-8) and upload it again."
            ) from exc


def csv_rows(text) -> Iterator[tuple[int, list[str]]]:
    """(line where the row starts, cells) for each row that is not blank."""
    reader = csv.reader(text, strict=True)
    end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BrokenFile(
                f"Line {reader.line_num} is not valid CSV: a quote opens a cell but does not "
                "close it, or stands in the middle of one. Put quotes around the whole cell "
                'and double any quote inside it ("").'
            ) from exc
        start, end = end + 1, reader.line_num
        if cells and (cells[0].strip() or any(cell.strip() for cell in cells)):
            yield start, cells


def header_columns(line: int, header: list[str]) -> dict[str, int]:
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
