"""Generation stamps in the shared cache: how a web process keeps a row in memory
and still notices at once when any other process changes it.

A stamp is a random number under a key such as `gen:connector:<id>`. A reader
reads the stamp *before* it loads the row from the database and keeps both; the
copy is current for as long as the stamp is unchanged. A writer calls bump()
when it changes the row: once right away and once more after its transaction
commits, so a reader that loaded the old row under the first new stamp is still
caught by the second. A stamp that expires or is evicted only costs a reload.
"""

import secrets

from django.core.cache import cache
from django.db import transaction

from core import redis_scripts

TIMEOUT_SECONDS = 24 * 3600

# KEYS: the stamps. ARGV: their lifetime, then each stamp's new value. The cache's
# set_many() would build a redis-py pipeline (MULTI, MSET, an EXPIRE per key, EXEC),
# which costs more CPU than the round trip: an activation bumps a stamp.
_renew = redis_scripts.Script(
    """
for i = 1, #KEYS do
    redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
end
return #KEYS
"""
)


def connector_key(connector_id: str) -> str:
    return f"gen:connector:{connector_id}"


def device_key(device_pk: int) -> str:
    return f"gen:device:{device_pk}"


def _fresh() -> int:
    # Plain ints are stored unpickled by Django's Redis cache, as digits a Lua
    # script can compare (devices.services.write_queue).
    return secrets.randbits(62) + 1


def read(keys: list[str]) -> list[int]:
    """The current stamp under each key, creating the ones that are missing."""
    found = cache.get_many(keys)
    stamps = []
    for key in keys:
        stamp = found.get(key)
        while stamp is None:
            fresh = _fresh()
            # add() loses to a concurrent reader that created the stamp first.
            stamp = fresh if cache.add(key, fresh, TIMEOUT_SECONDS) else cache.get(key)
        stamps.append(stamp)
    return stamps


def bump(*keys: str, using: str | None = None) -> None:
    """Invalidate every copy kept under these stamps, now and again after commit."""

    def renew():
        stamps = {key: _fresh() for key in keys}
        if hasattr(cache, "raw_client"):
            make_key = cache.make_key  # one lookup through the per-thread cache proxy
            _renew([make_key(key) for key in stamps], [TIMEOUT_SECONDS, *stamps.values()])
        else:
            cache.set_many(stamps, TIMEOUT_SECONDS)

    renew()
    # Outside a transaction the change has committed already: once is enough.
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(renew, using=using)
