"""Request parsing for the management API that answers every bad body with a 4xx."""

import io

from django.conf import settings
from rest_framework import exceptions, parsers, status


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "payload_too_large"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a size cap and a 400 for absurdly deep nesting.

    DRF reads the body as a stream, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE,
    and Python's decoder raises RecursionError (a 500) on `[[[[…]]]]`.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = b""
        if stream is not None:
            raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
