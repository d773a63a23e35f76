"""An import's full error report: one CSV line per refused row, kept next to its upload."""

from collections.abc import Iterator
from functools import partial

from devices.models import WhitelistImport

ERROR_REPORT_HEADER = ("line", "identity", "message")


def error_report_name(record: WhitelistImport) -> str:
    """Where the full error report of an import is kept, next to its upload."""
    return record.file.name.removesuffix(".csv") + "-errors.csv"


def error_report_chunks(record: WhitelistImport) -> Iterator[bytes]:
    """The full error report (`line,identity,message`) as CSV bytes."""
    storage, name = record.file.storage, error_report_name(record)
    if not record.error_count or not storage.exists(name):
        yield (",".join(ERROR_REPORT_HEADER) + "\n").encode()
        return
    with storage.open(name, "rb") as report:
        yield from iter(partial(report.read, 64 * 1024), b"")
