"""The Murano-style device API: activation, alias read/write/long poll, time.

Each view parses the request, calls one service and renders its answer; refusals
go through the one table in exceptions.py.
"""

import time
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from rest_framework.response import Response

from core.net import client_ip
from device_api import exceptions, schema
from device_api.authentication import DEVICE_AUTHENTICATION, connector_id_of
from device_api.base import DeviceAPIView, FormRenderer, PlainTextRenderer
from device_api.parsers import FORM_PARSER, BadBody, DeviceFormParser, small_number
from devices import services

NO_CONTENT = 204
# One long poll checks each alias it watches a few times a second.
LONG_POLL_MAX_ALIASES = 32


class DeviceView(DeviceAPIView):
    parser_classes = (DeviceFormParser,)
    dialect_exception_handler = staticmethod(exceptions.handle)


class ActivateView(DeviceView):
    """POST /provision/activate `id=<identity>[&password=<password>]`: a token
    (token mode, 200 text/plain) or 204 (password mode)."""

    authentication_classes = ()

    @schema.activate
    def post(self, request, connector_id=None):
        fields = dict(FORM_PARSER.parse_request(request))
        ip = client_ip(request._request)
        token = services.activate(connector_id_of(request), fields, ip)
        if token is None:
            return Response(status=NO_CONTENT)
        return Response(token)


class AliasView(DeviceView):
    """GET/POST /api:v1/stack/alias (and its One Platform name /onep:v1/stack/alias):
    read the latest values (or long poll one), write; a write naming aliases in
    its query reads them back after writing (Murano's hybrid write/read)."""

    authentication_classes = DEVICE_AUTHENTICATION
    renderer_classes = (FormRenderer,)
    # A write under a credential this process remembers is queued without a lookup.
    queues_writes = True

    @schema.alias_write
    def post(self, request, connector_id=None):
        caller = request.user
        try:
            pairs = FORM_PARSER.parse_request(request)
        except BadBody:
            # A bad body is answered only after the credentials were checked.
            caller.device  # noqa: B018
            raise
        services.write(caller, pairs, client_ip(request._request))
        aliases = _query_aliases(request)
        if not aliases:
            return Response(status=NO_CONTENT)
        return _values(services.read_latest(caller.device, aliases))

    @schema.alias_read
    def get(self, request, connector_id=None):
        device = request.user.device
        aliases = _query_aliases(request)
        if not aliases:
            raise services.InvalidData("name at least one alias: ?alias1&alias2")
        timeout = request.META.get("HTTP_REQUEST_TIMEOUT")
        if timeout is None:
            return _values(services.read_latest(device, aliases))
        if len(set(aliases)) > LONG_POLL_MAX_ALIASES:
            limit = LONG_POLL_MAX_ALIASES
            raise services.InvalidData(f"a long poll watches at most {limit} aliases")
        milliseconds = small_number(timeout, 9)
        if not milliseconds:
            raise services.InvalidData("Request-Timeout is a positive number of milliseconds")
        since = _parse_since(request.META.get("HTTP_IF_MODIFIED_SINCE"))
        changed = services.wait_for_change(device, aliases, since, milliseconds / 1000)
        if changed is None:
            return Response(status=304)
        values, at = changed
        response = Response(urlencode(values))
        response["Last-Modified"] = formatdate(at, usegmt=True)
        return response


class RecordView(DeviceView):
    """POST /onep:v1/stack/record (and /api:v1/stack/record): points at the device's
    timestamps, `alias=<a>&<ts>=<v>&<ts>=<v>&alias=<b>&<ts>=<v>` (services.records)."""

    authentication_classes = DEVICE_AUTHENTICATION
    renderer_classes = (FormRenderer,)

    @schema.record
    def post(self, request, connector_id=None):
        device = request.user.device
        # Every point may name its own alias: two fields a point.
        limit = 2 * settings.DEVICE_RECORD_MAX_POINTS
        pairs = FORM_PARSER.parse_request(request, max_fields=limit)
        services.record(device, pairs, client_ip(request._request))
        return Response(status=NO_CONTENT)


def _query_aliases(request) -> list[str]:
    return [key for key, _ in parse_qsl(request.META.get("QUERY_STRING", ""), True)]


def _values(values: dict[str, str]) -> Response:
    """200 with alias=value pairs, or 204 when none of the aliases has a value."""
    if not values:
        return Response(status=NO_CONTENT)
    return Response(urlencode(values))


def _parse_since(header: str | None) -> float | None:
    """If-Modified-Since as unix seconds (the device API's form) or an HTTP date."""
    if not header:
        return None
    # Unix seconds up to the year 9999, the last a timestamp can name.
    seconds = small_number(header, 11)
    if seconds is not None and seconds < 253402300800:
        return float(seconds)
    try:
        return parsedate_to_datetime(header.strip()).timestamp()
    except (TypeError, ValueError, OverflowError) as exc:
        raise services.InvalidData("If-Modified-Since is unix seconds or an HTTP date") from exc


class TimestampView(DeviceView):
    """GET /timestamp: the server's time in unix seconds."""

    authentication_classes = ()
    renderer_classes = (PlainTextRenderer,)

    @schema.timestamp
    def get(self, request, connector_id=None):
        return Response(str(int(time.time())))
