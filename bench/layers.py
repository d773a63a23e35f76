"""Wall time of a device request split by layer, for bench/device_profile.py.

A handful of functions are wrapped with a timer (the WSGI handler, each
middleware, DRF's dispatch, authentication, parsing, rendering, the view, every
cache call and Redis script, every SQL statement, commits, token hashing, the
event row, signals). Each layer is charged the time of its wrapped calls minus
the wrapped calls made inside them, so the rows add up to the whole request.
Far fewer calls are timed than cProfile times, so the total stays close to
the request's time without a profiler (the script prints both).
"""

import functools
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable

# Where a cache call comes from decides its layer: the first caller in one of these.
_CACHE_CALLERS = (
    ("core.ratelimit", "rate limits (cache)"),
    ("core.generations", "generation stamps (cache)"),
    ("devices.services.write_queue", "write queue (Redis)"),
    ("devices.services.authentication", "remembered credentials (cache)"),
)


def sql_layer(sql: str) -> str:
    """The layer of an SQL statement: what it is for, judged from its text."""
    text = " ".join(str(sql).split()).lower()
    if text.startswith("with claimed as"):
        return "SQL: activation (claim + credential + event, one statement)"
    if "mqtt_" in text:
        return "SQL: MQTT outbox (broker change, sealed secret)"
    if text.startswith("update") and "credential_version = credential_version + 1" in text:
        return "SQL: claim (UPDATE … RETURNING)"
    if text.startswith("insert into") and "credential" in text.split("(")[0]:
        return "SQL: credential INSERT"
    if text.startswith("insert into") and "event" in text.split("(")[0]:
        return "SQL: event INSERT"
    if text.startswith(("insert into", "with points")) and "datapoint" in text:
        return "SQL: data points (+ event)"
    if text.startswith("select") and "token_hash" in text:
        return "SQL: device by token"
    if text.startswith("select") and "credential_version = %s" in text:
        return "SQL: device by remembered password"
    if text.startswith("update") and "last_seen_at" in text:
        return "SQL: last seen UPDATE"
    if text.startswith("select"):
        return "SQL: other SELECT"
    return "SQL: other"


class LayerTimer:
    """Wraps functions so each call's time, minus wrapped calls inside it, goes to a layer."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: Counter = Counter()
        # Per open wrapped call: (wall, CPU) spent in wrapped calls inside it.
        self._stack: list[list[float]] = []
        self._restore: list[tuple[object, str, object]] = []
        self._originals: dict[int, Callable] = {}

    def timed(self, function: Callable, layer: str | Callable[..., str]) -> Callable:
        function = self._originals.get(id(function), function)
        stack, seconds, cpu, calls = self._stack, self.seconds, self.cpu, self.calls
        clock, cpu_clock = time.perf_counter, time.thread_time

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            name = layer(*args, **kwargs) if callable(layer) else layer
            stack.append([0.0, 0.0])
            start, cpu_start = clock(), cpu_clock()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed, cpu_elapsed = clock() - start, cpu_clock() - cpu_start
                inner, cpu_inner = stack.pop()
                seconds[name] += elapsed - inner
                cpu[name] += cpu_elapsed - cpu_inner
                calls[name] += 1
                if stack:
                    stack[-1][0] += elapsed
                    stack[-1][1] += cpu_elapsed

        self._originals[id(wrapper)] = function
        return wrapper

    def wrap(self, owner, name: str, layer) -> None:
        """Time `owner.name` (a class or a module attribute) under `layer`."""
        raw = owner.__dict__.get(name) if isinstance(owner, type) else None
        # What to put back: a class's own attribute (None: inherited), a module's value.
        saved = raw if isinstance(owner, type) else getattr(owner, name)
        if isinstance(raw, property):
            replacement = property(self.timed(raw.fget, layer))
        elif isinstance(raw, staticmethod):
            replacement = staticmethod(self.timed(raw.__func__, layer))
        else:
            replacement = self.timed(getattr(owner, name), layer)
        self._restore.append((owner, name, saved))
        setattr(owner, name, replacement)

    def wrap_everywhere(self, function: Callable, layer: str) -> None:
        """Time a function under every module name it was imported as."""
        for module in list(sys.modules.values()):
            for attribute, value in list(getattr(module, "__dict__", {}).items()):
                if value is function:
                    self.wrap(module, attribute, layer)

    def restore(self) -> None:
        for owner, name, original in reversed(self._restore):
            if original is None:
                delattr(owner, name)  # it was inherited
            else:
                setattr(owner, name, original)
        self._restore.clear()

    def rows(self, requests: int) -> list[tuple[str, float, float, float, float]]:
        """(layer, wall µs per request, CPU µs per request, share of the wall time,
        calls per request), largest wall time first."""
        total = sum(self.seconds.values()) or 1.0
        return sorted(
            (
                (
                    name,
                    value / requests * 1e6,
                    self.cpu[name] / requests * 1e6,
                    value / total,
                    self.calls[name] / requests,
                )
                for name, value in self.seconds.items()
            ),
            key=lambda row: -row[1],
        )


def _cache_layer(*args, **kwargs) -> str:
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        for prefix, layer in _CACHE_CALLERS:
            if module == prefix:
                return layer
        frame = frame.f_back
    return "cache: other"


def instrument(timer: LayerTimer) -> None:
    """Wrap the layers of a device request (Django set up, Gatehouse imported)."""
    import importlib

    import psycopg
    from django.conf import settings
    from django.core.cache import cache
    from django.core.handlers.base import BaseHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connections
    from django.db.backends.utils import CursorWrapper
    from django.urls.resolvers import URLResolver
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from audit import events
    from core import redis_scripts
    from device_api import views
    from device_api.parsers import DeviceFormParser
    from devices import signals
    from devices.services import credentials

    timer.wrap(WSGIHandler, "__call__", "Django: WSGI handler (request, response, signals)")
    timer.wrap(BaseHandler, "_get_response", "Django: view call, process_view, render")
    timer.wrap(URLResolver, "resolve", "Django: URL resolving")
    for dotted in settings.MIDDLEWARE:
        module, _, name = dotted.rpartition(".")
        middleware = getattr(importlib.import_module(module), name)
        layer = f"middleware: {name}"
        for method in ("__call__", "process_request", "process_view", "process_response"):
            if method in middleware.__dict__ or method == "__call__":
                timer.wrap(middleware, method, layer)
    timer.wrap(APIView, "dispatch", "DRF: dispatch (request, initial, finalize)")
    timer.wrap(Request, "_authenticate", "DRF: authentication classes (Python)")
    timer.wrap(Response, "rendered_content", "DRF: renderer")
    timer.wrap(DeviceFormParser, "parse_request", "form parsing")
    for view in (views.ActivateView, views.AliasView):
        timer.wrap(view, "post", f"view + service, Python ({view.__name__})")
    backend = type(cache._connections[cache._alias])
    for method in ("get", "get_many", "set", "set_many", "add", "incr", "decr", "delete"):
        if hasattr(backend, method):
            timer.wrap(backend, method, _cache_layer)
    timer.wrap(redis_scripts.Script, "__call__", _cache_layer)
    timer.wrap(CursorWrapper, "execute", "SQL: Django cursor wrapper")
    timer.wrap(CursorWrapper, "executemany", "SQL: Django cursor wrapper")
    timer.wrap(psycopg.Cursor, "execute", lambda cursor, query, *a, **k: sql_layer(query))
    try:
        from django.db.backends.sqlite3.base import SQLiteCursorWrapper
    except ImportError:
        pass
    else:
        timer.wrap(SQLiteCursorWrapper, "execute", lambda cursor, query, *a, **k: sql_layer(query))
    database = type(connections["default"])
    timer.wrap(database, "_commit", "SQL: COMMIT")
    timer.wrap(database, "close_if_health_check_failed", "DB connection checks")
    timer.wrap(database, "close_if_unusable_or_obsolete", "DB connection checks")
    timer.wrap_everywhere(credentials.new_token, "token generation / hashing")
    timer.wrap_everywhere(credentials.hash_token, "token generation / hashing")
    timer.wrap_everywhere(credentials.password_cache_key, "token generation / hashing")
    timer.wrap_everywhere(events.event_row, "event row (Python)")
    timer.wrap_everywhere(credentials.credentials_changed, "credential change hook (Python)")
    timer.wrap(
        signals.secret_issued, "send_robust", "secret_issued receivers (MQTT outbox, Python)"
    )
    timer.wrap(
        signals.credentials_changed,
        "send_robust",
        "credentials_changed receivers (MQTT outbox, Python)",
    )
    try:
        from mqtt import vault
    except ImportError:
        return
    timer.wrap_everywhere(vault.seal, "MQTT secret sealing (AES-GCM)")
