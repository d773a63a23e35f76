"""`GET /healthz`: can this web process serve, and is each app's background work keeping up?

For load balancers and monitoring. 200 when every check passes, 503 otherwise,
with a JSON body naming each check. It says nothing a device or a visitor could
use: no versions, hosts or error texts (those go to the log).

The database and the cache are checked here; an app adds its own check with
`register` from its AppConfig.ready (the devices app checks the ingest of
queued writes).
"""

import logging
from collections.abc import Callable

from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# name -> check: returns a dict with at least "status" ("ok" when fine), or None
# when it does not apply under the current settings.
_checks: dict[str, Callable[[], dict | None]] = {}


def register(name: str, check: Callable[[], dict | None]) -> None:
    """Add an app's check to every /healthz answer, under `name`."""
    _checks[name] = check


def _database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        logger.exception("health check: database unavailable")
        return False


def _cache() -> bool:
    try:
        cache.get("health:probe")
        return True
    except (RedisError, OSError):
        logger.exception("health check: cache unavailable")
        return False


@never_cache
@require_safe
def healthz(request):
    checks = {
        "database": "ok" if _database() else "unavailable",
        "cache": "ok" if _cache() else "unavailable",
    }
    healthy = all(status == "ok" for status in checks.values())
    for name, check in _checks.items():
        result = check()
        if result is not None:
            checks[name] = result
            healthy = healthy and result["status"] == "ok"
    return JsonResponse(
        {"status": "ok" if healthy else "failing", "checks": checks},
        status=200 if healthy else 503,
    )
