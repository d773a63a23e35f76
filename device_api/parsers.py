"""The device form parser: alias=value pairs, read once, straight from the stream."""

from urllib.parse import parse_qsl

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

from core import inputs

FORM_TYPE = "application/x-www-form-urlencoded"


class BadBody(exceptions.ParseError):
    """A body that is no form (400); subclasses carry their own status."""


class BodyTooLarge(BadBody):
    status_code = 413


class NotAForm(BadBody):
    status_code = 415


def small_number(text: str, digits: int) -> int | None:
    """A non-negative integer of at most `digits` ASCII digits, else None."""
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) <= digits:
        return int(text)
    return None


class DeviceFormParser(BaseParser):
    """application/x-www-form-urlencoded, as firmware sends it.

    Unlike DRF's FormParser: a body without a Content-Type is read as a form,
    a chunked body (no Content-Length) is read up to DEVICE_MAX_BODY_BYTES, a
    trailing newline ends the body rather than the last value, fields keep
    their order and repeats, and no field may hold a NUL or a lone surrogate.
    parse_request() returns the pairs or raises BadBody.
    """

    media_type = FORM_TYPE

    def parse(self, stream, media_type=None, parser_context=None):
        # DRF's own entry point (request.data); the device views call parse_request.
        return self.pairs(stream.read(settings.DEVICE_MAX_BODY_BYTES + 1), "utf-8")

    def parse_request(self, request, max_fields: int = 256) -> list[tuple[str, str]]:
        http = getattr(request, "_request", request)
        meta = http.META
        limit = settings.DEVICE_MAX_BODY_BYTES
        declared = meta.get("CONTENT_LENGTH")
        length = small_number(declared, 18) if declared else 0
        if length is None:
            raise BadBody("bad Content-Length")
        if length > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
        content_type = (meta.get("CONTENT_TYPE") or FORM_TYPE).split(";", 1)[0].strip().lower()
        if content_type != FORM_TYPE:
            raise NotAForm(f"expected {FORM_TYPE}")
        if length:
            # The length was checked against a limit far below Django's
            # DATA_UPLOAD_MAX_MEMORY_SIZE, and nothing else reads a device body.
            body = http.read(length)
        elif "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            # The server has taken the chunks apart; Django's stream, knowing no
            # length, would read nothing.
            body = meta["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                raise BodyTooLarge(f"body larger than {limit} bytes")
        else:
            body = b""
        return self.pairs(body, http.encoding or "utf-8", max_fields)

    @staticmethod
    def pairs(body: bytes, encoding: str, max_fields: int = 256) -> list[tuple[str, str]]:
        if body.count(b"&") >= max_fields:
            raise BodyTooLarge(f"more than {max_fields} fields in the body")
        try:
            text = body.decode(encoding)
            # A line ending after the last value belongs to the line, not the value.
            text = text.removesuffix("\n").removesuffix("\r")
            pairs = parse_qsl(
                text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=max_fields
            )
        except (UnicodeDecodeError, ValueError, LookupError) as exc:
            raise BadBody("body is not valid form encoding") from exc
        for name, value in pairs:
            problem = inputs.text_problem(name) or inputs.text_problem(value)
            if problem:
                raise BadBody(f"{problem} in form fields")
        return pairs


FORM_PARSER = DeviceFormParser()
