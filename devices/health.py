"""The ingest's /healthz check: are queued writes being stored in time?"""

import logging
import time

from django.conf import settings
from redis.exceptions import RedisError

from devices.services import write_queue

logger = logging.getLogger(__name__)


def queue_state() -> dict:
    """How many writes wait, and how long the oldest has (stored ones leave the stream)."""
    client = write_queue.redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.xlen(write_queue.stream_key())
    pipe.xrange(write_queue.stream_key(), count=1)
    queued, head = pipe.execute()
    age = 0.0
    if head and head[0][1]:
        arrived_us = write_queue.Write.decode(head[0][1][b"w"]).at
        age = max(0.0, time.time() - arrived_us / 1_000_000)
    return {"queued": queued, "oldest_seconds": age}


def ingest() -> dict | None:
    """Behind when the oldest queued write waited over INGEST_STALE_SECONDS."""
    if not settings.DEVICE_WRITE_QUEUE:
        return None
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
