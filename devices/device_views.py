"""The device-facing HTTP API: provisioning, data, time.

Thin: parse the request, call one service, map its exception through one table.
Reached at <connector-id>.<DEVICE_DOMAIN>/… or /c/<connector-id>/….
"""

import time
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from devices import services
from devices.services import write_queue
from portal import inputs
from portal.errors import status_for
from portal.net import client_certificate, client_ip

STATUS_BY_ERROR = {
    services.ConnectorNotFound: 404,
    services.IdentityRejected: 400,
    services.InvalidData: 400,
    services.IpNotAllowed: 403,
    services.NotWhitelisted: 404,
    services.AlreadyProvisioned: 409,
    services.WindowExpired: 410,
    services.UnsupportedAuth: 415,
    services.AuthenticationFailed: 401,
}
FORM_TYPE = "application/x-www-form-urlencoded"


def _text(body: str, status: int) -> HttpResponse:
    return HttpResponse(body + "\n" if body else "", status=status, content_type="text/plain")


def _refusal(exc: Exception) -> HttpResponse:
    if isinstance(exc, services.RateLimited):
        response = _text("too many requests", 429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    # The nearest listed class decides; a refusal not listed is a plain 400.
    status = status_for(exc, STATUS_BY_ERROR)
    if status == 401:
        # Never a hint which part of the credentials was wrong.
        response = _text("unauthorized", 401)
        response["WWW-Authenticate"] = 'Token, Basic realm="device"'
        return response
    return _text(exc.message, status)


def _small_number(text: str, digits: int) -> int | None:
    """A non-negative integer of at most `digits` ASCII digits, else None."""
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) <= digits:
        return int(text)
    return None


def _form_pairs(request) -> list[tuple[str, str]] | HttpResponse:
    """The body's form fields in order, or a 4xx response."""
    length = _small_number(request.META.get("CONTENT_LENGTH") or "0", 18)
    if length is None:
        return _text("bad Content-Length", 400)
    if length > settings.DEVICE_MAX_BODY_BYTES:
        return _text(f"body larger than {settings.DEVICE_MAX_BODY_BYTES} bytes", 413)
    content_type = request.content_type or FORM_TYPE
    if content_type != FORM_TYPE:
        return _text(f"expected {FORM_TYPE}", 415)
    try:
        # Read straight from the stream: the length was checked above, against a
        # limit far below Django's DATA_UPLOAD_MAX_MEMORY_SIZE, and nothing else
        # reads a device request's body (the view parses it once).
        text = request.read(length).decode(request.encoding or "utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=256
        )
    except (UnicodeDecodeError, ValueError, LookupError):
        return _text("body is not valid form encoding", 400)
    for name, value in pairs:
        problem = inputs.text_problem(name) or inputs.text_problem(value)
        if problem:
            return _text(f"{problem} in form fields", 400)
    return pairs


def _connector_id(request, connector_id: str | None) -> str:
    return connector_id if connector_id is not None else getattr(request, "connector_id", "")


@csrf_exempt
@require_POST
def activate(request, connector_id=None):
    pairs = _form_pairs(request)
    if isinstance(pairs, HttpResponse):
        return pairs
    fields = dict(pairs)
    ip = client_ip(request)
    try:
        token = services.activate(_connector_id(request, connector_id), fields, ip)
    except (services.DeviceError, services.RateLimited) as exc:
        return _refusal(exc)
    if token is None:
        return HttpResponse(status=204)
    return HttpResponse(token, content_type="text/plain")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def alias(request, connector_id=None):
    ip = client_ip(request)
    pairs = None
    try:
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        if request.method == "POST" and authorization and write_queue.enabled():
            # A credential this process verified before: one Redis round trip.
            presented = services.presented_credential(
                _connector_id(request, connector_id), authorization
            )
            pairs = _form_pairs(request) if presented else None
            if isinstance(pairs, list) and write_queue.try_write(presented, pairs, ip):
                return HttpResponse(status=204)
        device = services.authenticate_device(
            _connector_id(request, connector_id),
            authorization,
            ip,
            certificate=None if authorization else client_certificate(request),
        )
        if request.method == "POST":
            # A bad body is answered only after the credentials were checked.
            if pairs is None:
                pairs = _form_pairs(request)
            if isinstance(pairs, HttpResponse):
                return pairs
            services.write_data(device, pairs, ip)
            return HttpResponse(status=204)
        return _read(request, device)
    except (services.DeviceError, services.RateLimited) as exc:
        return _refusal(exc)


def _read(request, device) -> HttpResponse:
    aliases = [
        key for key, _ in parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    ]
    if not aliases:
        raise services.InvalidData("name at least one alias: ?alias1&alias2")
    timeout = request.headers.get("Request-Timeout")
    if timeout is None:
        values = services.read_latest(device, aliases)
        if not values:
            return HttpResponse(status=204)
        return HttpResponse(urlencode(values), content_type=FORM_TYPE)
    if len(aliases) != 1:
        raise services.InvalidData("long polling watches exactly one alias")
    milliseconds = _small_number(timeout, 9)
    if not milliseconds:
        raise services.InvalidData("Request-Timeout is a positive number of milliseconds")
    timeout_seconds = milliseconds / 1000
    since = _parse_since(request.headers.get("If-Modified-Since"))
    value = services.wait_for_change(device, aliases[0], since, timeout_seconds)
    if value is None:
        return HttpResponse(status=304)
    return HttpResponse(urlencode({aliases[0]: value}), content_type=FORM_TYPE)


def _parse_since(header: str | None) -> float | None:
    """If-Modified-Since as unix seconds (the device API's form) or an HTTP date."""
    if not header:
        return None
    # Unix seconds up to the year 9999, the last a timestamp can name.
    seconds = _small_number(header, 11)
    if seconds is not None and seconds < 253402300800:
        return float(seconds)
    try:
        return parsedate_to_datetime(header.strip()).timestamp()
    except (TypeError, ValueError, OverflowError) as exc:
        raise services.InvalidData("If-Modified-Since is unix seconds or an HTTP date") from exc


@require_GET
def timestamp(request, connector_id=None):
    return HttpResponse(str(int(time.time())), content_type="text/plain")
