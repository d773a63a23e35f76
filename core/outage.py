"""Answers while Redis, the database or the broker is away: 503 with Retry-After.

A request that meets a backend outage (connection refused or lost, a timeout)
gets `503 Service Unavailable` in the form its caller reads: a short text for
devices, the `{"error": {...}}` envelope on the v1.1 routes, JSON on the
management API, a page in the portal. Nothing is half done: the service raised
before it answered, and a device retries after `Retry-After` seconds.

Recovery needs nobody. redis-py reconnects on the next command; Django closes a
database connection that failed (`close_old_connections` at the end of each
request, with CONN_HEALTH_CHECKS at the start of the next) and opens a new one.

Views raise; `BackendOutageMiddleware.process_exception` answers. A failure
outside a view (a middleware saving the session) reaches `server_error`, the
handler500 of both URL configurations, which answers the same way.
"""

import logging
import re
import sys
import threading
import time

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

BACKEND_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
    InterfaceError,
    BrokerUnavailable,
)
# Long enough for a restart of Redis or PostgreSQL, short enough that devices catch up soon.
RETRY_AFTER_SECONDS = 5
MESSAGE = "service temporarily unavailable, retry later"
# One log line per kind of failure this often, with how many requests it refused meanwhile.
LOG_EVERY_SECONDS = 10.0

DEVICE_URLCONF = "device_api.urls"
_V1_1 = re.compile(r"/(?:c/[^/]+/)?v1\.1/")
_DEVICE_PATH = re.compile(r"/(?:c/|pki/|timestamp$)")


def is_backend_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, BACKEND_ERRORS)


def unavailable(request) -> HttpResponse:
    """The 503 this request's caller understands."""
    path = request.path_info
    if _V1_1.match(path):
        response = JsonResponse({"error": {"code": 503, "message": MESSAGE}}, status=503)
    elif getattr(request, "urlconf", None) == DEVICE_URLCONF or _DEVICE_PATH.match(path):
        response = HttpResponse(
            MESSAGE + "\n", status=503, content_type="text/plain; charset=utf-8"
        )
    elif path.startswith("/api/"):
        response = JsonResponse({"detail": MESSAGE}, status=503)
    else:
        # Rendered without the request: its context processors would ask the
        # session and the user, that is the database that just failed.
        page = render_to_string("503.html", {"retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class _OutageLog:
    """Logs an outage without writing a traceback for each of thousands of requests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last: dict[str, float] = {}
        self.refused: dict[str, int] = {}

    def note(self, exc: BaseException, request) -> None:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        now = time.monotonic()
        with self.lock:
            self.refused[kind] = self.refused.get(kind, 0) + 1
            if now - self.last.get(kind, -LOG_EVERY_SECONDS) < LOG_EVERY_SECONDS:
                return
            self.last[kind], refused = now, self.refused.pop(kind)
        logger.warning(
            "backend unavailable, answering 503 (%d requests since the last report, "
            "now %s %s): %s: %s",
            refused,
            request.method,
            request.path_info[:200],
            kind,
            exc,
        )


_log = _OutageLog()


class BackendOutageMiddleware:
    """Turns a view's Redis, database or broker outage into a 503 (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_backend_outage(exception):
            return None
        _log.note(exception, request)
        return unavailable(request)


def server_error(request):
    """handler500: an outage met outside a view is a 503 too; anything else Django's 500."""
    exc = sys.exception()
    if is_backend_outage(exc):
        _log.note(exc, request)
        return unavailable(request)
    return defaults.server_error(request)
