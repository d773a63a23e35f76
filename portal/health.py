"""`GET /healthz`: can this web process serve, and are queued writes being stored?

For load balancers and monitoring. 200 when every check passes, 503 otherwise,
with a JSON body naming each check. It says nothing a device or a visitor could
use: no versions, hosts or error texts (those go to the log).
"""

import json
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

from devices.ingest import PROCESSING
from devices.services import write_queue

logger = logging.getLogger(__name__)


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


def queue_state() -> dict:
    """How many writes wait, and how long the oldest has (batch in hand first)."""
    client = write_queue.redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.llen(write_queue.key(write_queue.QUEUE))
    pipe.lindex(write_queue.key(PROCESSING), 0)
    pipe.lindex(write_queue.key(write_queue.QUEUE), 0)
    queued, in_hand, head = pipe.execute()
    oldest = in_hand or head
    age = 0.0
    if oldest is not None:
        arrived_us = json.loads(oldest.partition(b" ")[2])[0]
        age = max(0.0, time.time() - arrived_us / 1_000_000)
    return {"queued": queued, "oldest_seconds": age}


def _ingest() -> dict:
    try:
        state = queue_state()
    except (RedisError, OSError):
        logger.exception("health check: write queue unavailable")
        return {"status": "unavailable"}
    behind = state["oldest_seconds"] > settings.INGEST_STALE_SECONDS
    return {
        "status": "behind" if behind else "ok",
        "queued": state["queued"],
        "oldest_seconds": round(state["oldest_seconds"], 1),
    }


@never_cache
@require_safe
def healthz(request):
    checks = {
        "database": "ok" if _database() else "unavailable",
        "cache": "ok" if _cache() else "unavailable",
    }
    healthy = all(status == "ok" for status in checks.values())
    if settings.DEVICE_WRITE_QUEUE:
        checks["ingest"] = _ingest()
        healthy = healthy and checks["ingest"]["status"] == "ok"
    return JsonResponse(
        {"status": "ok" if healthy else "failing", "checks": checks},
        status=200 if healthy else 503,
    )
