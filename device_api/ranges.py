"""Conditional and partial downloads (RFC 9110 §13, §14) of one stored file.

A device that lost its connection halfway through a firmware image asks for the
rest with `Range` (and `If-Range`, so a file replaced meanwhile comes whole);
one that has the file already sends its ETag in `If-None-Match` and gets a 304.
Only single byte ranges are served; a Range this does not understand (another
unit, several ranges, bad syntax) is ignored and the whole file sent, as the
RFC allows.
"""

import re
from email.utils import formatdate, parsedate_to_datetime

from django.http import FileResponse, HttpResponse

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_ETAGS = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')
CHUNK = 256 * 1024


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte positions of a single byte range, None for the whole file;
    Unsatisfiable when the range starts past the end (or the file is empty)."""
    if not header:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None or found.group(1) == found.group(2) == "":
        return None
    first, last = found.groups()
    # Numbers longer than any file size are still numbers: compare, don't overflow.
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable()
        return max(size - suffix, 0), size - 1
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable()
    end = size - 1 if last == "" else min(int(last), size - 1)
    return start, end


def _etags(header: str) -> list[str] | None:
    """The entity tags of If-None-Match / If-Match; None for `*`."""
    if header.strip() == "*":
        return None
    return _ETAGS.findall(header)


def _http_date(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return parsedate_to_datetime(header.strip()).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def not_modified(meta: dict, etag: str, modified: float) -> bool:
    """If-None-Match (weak comparison) decides; without it, If-Modified-Since."""
    none_match = meta.get("HTTP_IF_NONE_MATCH")
    if none_match is not None:
        tags = _etags(none_match)
        return tags is None or etag in tags
    since = _http_date(meta.get("HTTP_IF_MODIFIED_SINCE"))
    return since is not None and int(modified) <= since


def range_applies(meta: dict, etag: str, modified: float) -> bool:
    """If-Range: the range is served only while the file is the one the device has;
    a strong ETag match, or the exact Last-Modified date."""
    condition = meta.get("HTTP_IF_RANGE")
    if condition is None:
        return True
    condition = condition.strip()
    if condition.startswith('"'):
        return condition == etag
    if condition.startswith("W/"):
        return False
    since = _http_date(condition)
    return since is not None and since == int(modified)


class Window:
    """`length` bytes of an open file from `start`: what a range response streams.

    gunicorn sends it with sendfile(2) from the file's position for the response's
    Content-Length (fileno()); other servers read it in chunks that stop at the end."""

    def __init__(self, file, start: int, length: int):
        self.file = file
        self.remaining = length
        file.seek(start)

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.file.read(size)
        self.remaining -= len(data)
        return data

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()


def file_response(meta: dict, opened, *, size: int, content_type: str, etag: str, modified: float):
    """200, 206, 304 or 416 for a GET of the file `opened` lazily opens (a callable)."""
    validators = {
        "ETag": etag,
        "Last-Modified": formatdate(modified, usegmt=True),
        "Accept-Ranges": "bytes",
    }
    if not_modified(meta, etag, modified):
        return _bare(304, validators)
    span = None
    if range_applies(meta, etag, modified):
        try:
            span = parse_range(meta.get("HTTP_RANGE"), size)
        except Unsatisfiable:
            refusal = _bare(416, {**validators, "Content-Range": f"bytes */{size}"})
            refusal.content = b"the range starts past the end of the file\n"
            refusal["Content-Type"] = "text/plain"
            return refusal
    start, end = span if span is not None else (0, size - 1)
    length = end - start + 1
    response = FileResponse(Window(opened(), start, length), content_type=content_type)
    response.block_size = CHUNK
    # FileResponse counts from the file's position to its end; a range ends sooner.
    response["Content-Length"] = str(length)
    if span is not None:
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    for header, value in validators.items():
        response[header] = value
    return response


def _bare(status: int, headers: dict) -> HttpResponse:
    response = HttpResponse(status=status)
    # No body, so no type: devices read no text/html into a 304.
    del response["Content-Type"]
    for header, value in headers.items():
        response[header] = value
    return response
