"""The cache backends: Redis in production, SQLite files on a laptop.

RedisCache is Django's Redis cache, keeping one Redis client per connection pool.

Django builds a new `redis.Redis` object for every cache call; with redis-py 8
that construction costs about a millisecond of CPU, more than the round trip
itself, on every device request. Clients are thread-safe and share their pool,
so one per pool is enough.

DiskCache is diskcache's Django backend (SQLite files in WAL mode, shared by
every local process, with atomic incr and add), kept open between requests.
"""

import diskcache
from django.core.cache.backends import redis as django_redis


class DiskCache(diskcache.DjangoCache):
    def close(self, **kwargs):
        # Django closes every cache after each request. diskcache would then close
        # its SQLite connections, and the last one out checkpoints the write-ahead
        # log: about 30 ms per request instead of well under one. Connections are
        # per thread and stay valid across requests.
        pass


class _ReusingClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient

    def raw_client(self):
        """The redis-py client, for pipelines the cache API cannot express."""
        return self._cache.get_client(write=True)
