"""Lua scripts on Redis, run on a connection of each thread's own.

Device requests (rate limits, queued writes) each make one Redis round trip.
They go through redis-py's connection API rather than its client, pipeline and
pool layers: at this rate that bookkeeping costs about as much CPU as the round
trip itself. Commands are packed by hiredis in one call: redis-py's packer first
walks the arguments in Python, which cost a quarter of a queued write's time.

A Redis that lost a script (restart, SCRIPT FLUSH) gets it whole with EVAL,
which caches it there again. A connection the server closed (a Redis
restart) is reopened and the command sent once more; a timeout is not retried,
as the script may have run.
"""

import hashlib
import os
import threading

import hiredis
from django.core.cache import cache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, TimeoutError

_local = threading.local()


def connection():
    """This thread's own connection to the cache's Redis (a new one after a fork)."""
    pid, own = getattr(_local, "connection", (None, None))
    if own is None or pid != os.getpid():
        own = cache.raw_client().connection_pool.make_connection()
        _local.connection = (os.getpid(), own)
    return own


def close_connection() -> None:
    """Close this thread's connection, for a thread about to end."""
    _pid, own = getattr(_local, "connection", (None, None))
    if own is not None:
        own.disconnect()
        del _local.connection


class Script:
    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324  (Redis names scripts so)

    def __call__(self, keys: list, args: list):
        evalsha = hiredis.pack_command(("EVALSHA", self.sha, len(keys), *keys, *args))
        for attempt in (1, 2):
            own = connection()
            try:
                own.send_packed_command([evalsha])
                return own.read_response()
            except NoScriptError:
                own.send_packed_command(
                    [hiredis.pack_command(("EVAL", self.source, len(keys), *keys, *args))]
                )
                return own.read_response()
            except TimeoutError:
                own.disconnect()
                raise
            except RedisConnectionError:
                own.disconnect()
                if attempt == 2:
                    raise
        raise AssertionError("not reached: the second attempt returns or raises")
