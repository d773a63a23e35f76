"""Reusable pieces of a device dialect on DRF: a lean APIView, plain-text and form
renderers, and the exception handler factory that turns one table into responses.

Other device dialects (secure registration, Foundry, Murano additions) build on
these; nothing here knows a particular dialect's refusals.
"""

from collections.abc import Callable

from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.views import APIView

from core import ratelimit
from core.errors import Refusal, status_for


class PlainTextRenderer(BaseRenderer):
    """A string body as UTF-8 text/plain; None (a 204 or 304) as no body and no Content-Type."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return data.encode() if isinstance(data, str) else bytes(data)


class FormRenderer(PlainTextRenderer):
    """alias=value pairs, already encoded by the view (urlencode)."""

    media_type = "application/x-www-form-urlencoded"
    format = "form"


class FirstRenderer(BaseContentNegotiation):
    """Devices send no useful Accept header: the view's first renderer answers."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


_NEGOTIATOR = FirstRenderer()


class DeviceAPIView(APIView):
    """An APIView without what devices do not use: no permissions, no versioning,
    no content negotiation, and the parsers, renderers and authenticators made
    once per view class instead of once per request."""

    permission_classes = ()
    throttle_classes = ()
    # No OPTIONS (DRF's metadata) and no HEAD: devices use neither.
    http_method_names = ["get", "post", "put", "patch", "delete"]
    renderer_classes = (PlainTextRenderer,)
    # Set per dialect: exception_handler(exc, context) -> Response | None.
    dialect_exception_handler: Callable | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._authenticators = tuple(auth() for auth in cls.authentication_classes)
        cls._parsers = tuple(parser() for parser in cls.parser_classes)
        cls._renderers = tuple(renderer() for renderer in cls.renderer_classes)
        cls._allow = ", ".join(
            method.upper() for method in cls.http_method_names if hasattr(cls, method)
        )

    def get_authenticators(self):
        return self._authenticators

    def get_parsers(self):
        return self._parsers

    def get_renderers(self):
        return self._renderers

    def get_content_negotiator(self):
        return _NEGOTIATOR

    def perform_content_negotiation(self, request, force=False):
        renderer = self._renderers[0]
        return renderer, renderer.media_type

    def get_format_suffix(self, **kwargs):
        return None

    def determine_version(self, request, *args, **kwargs):
        return None, None

    @property
    def default_response_headers(self):
        return {"Allow": self._allow}

    def get_exception_handler(self):
        return type(self).dialect_exception_handler


def text(body: str, status: int) -> HttpResponse:
    """A plain-text refusal, one line."""
    return HttpResponse(
        body + "\n" if body else "", status=status, content_type="text/plain; charset=utf-8"
    )


def exception_handler_for(
    table: dict[type, int],
    answer: Callable[[str, int], HttpResponse] = text,
    challenge: str = "",
    unauthorized: str = "unauthorized",
) -> Callable:
    """An exception handler answering through `answer(message, status)`, with the
    status from `table` (the nearest listed class of a refusal, see
    core.errors.status_for) for Gatehouse's refusals and DRF's own status for
    its exceptions. A 401 names no reason (the event log does) and carries
    `challenge` as WWW-Authenticate; a 429 carries Retry-After. Anything else
    (an outage) is not handled here: the outage middleware answers 503."""

    def handle(exc, context):
        if isinstance(exc, ratelimit.RateLimited):
            response = answer("too many requests", 429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        if isinstance(exc, Refusal):
            status = status_for(exc, table)
            message = exc.message
        elif isinstance(exc, exceptions.APIException):
            status = exc.status_code
            message = str(exc.detail)
        else:
            return None
        if status == 401:
            response = answer(unauthorized, 401)
            if challenge:
                response["WWW-Authenticate"] = challenge
            return response
        response = answer(message, status)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            response["Retry-After"] = str(int(exc.wait))
        return response

    return handle
