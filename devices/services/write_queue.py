"""Queued device writes (DEVICE_WRITE_QUEUE=1): accepted in one Redis round trip,
appended to a Redis stream, stored in batches by `manage.py ingest` (devices.ingest).

A web process remembers each Token or Basic credential it has verified against
the database, as a snapshot of the device (its id, connector, identity and the
connector's alias formats) taken under the generation stamps of the device and
of its connector (core.generations). A later write presenting the same
credential is checked and queued by one Lua script, atomically:

0. its source address is not past RATE_LIMIT_AUTH_FAILURES (an address guessing
   credentials is refused whatever it presents, as on the ordinary path);
1. both stamps are unchanged: no reset, revoke or delete of the device, no change
   to its connector or its resources since the snapshot (otherwise the request
   takes the ordinary path, which asks the database again);
2. the stream has room: fewer than DEVICE_WRITE_QUEUE_MAX entries not yet
   stored (otherwise the ordinary path stores the write directly);
3. the per-device write rate is not exceeded (RATE_LIMIT_WRITE, the same counter
   the ordinary path uses);
4. the write is appended to the stream (XADD, bounded by the same MAXLEN, which
   the check above keeps from ever trimming), and its values become the
   device's latest in a hash that reads and long polls consult, so a device
   reads back what it wrote before the ingest has stored it.

A 204 then means the write is in Redis: as durable as Redis is configured to be
(use appendonly in production). The ingest stores it, with its event, under
the time the request arrived.
"""

import functools
import json
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from core import generations, ratelimit, redis_scripts
from devices.services.errors import RateLimited
from devices.services.values import resource_formats, split_pairs

STREAM = "writes:stream"
LATEST_SECONDS = 24 * 3600

# A snapshot is re-checked against the database at least this often, whatever the stamps say.
_REMEMBER_SECONDS = 300
_REMEMBERED_MAX = 100_000

_ACCEPT = """
if tonumber(redis.call('GET', KEYS[6]) or '0') >= tonumber(ARGV[8]) then
    return -4
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return -1
end
if redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[5]) then
    return -3
end
local used = redis.call('INCR', KEYS[3])
if used == 1 then
    redis.call('EXPIRE', KEYS[3], ARGV[4])
end
if used > tonumber(ARGV[3]) then
    return -2
end
local id = redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[5], '*', 'w', ARGV[6])
if #ARGV > 8 then
    redis.call('HSET', KEYS[5], unpack(ARGV, 9))
    redis.call('EXPIRE', KEYS[5], ARGV[7])
end
return id
"""
_STALE, _RATE_LIMITED, _FULL, _ADDRESS_LIMITED = -1, -2, -3, -4


@dataclass(frozen=True, slots=True)
class Write:
    """One device write as the stream holds it (a JSON list in this field order)."""

    at: int  # microseconds since 1970-01-01 UTC: when the request arrived
    device_pk: int
    connector_id: str
    identity: str
    ip: str | None
    stored: list  # [alias, value] pairs of aliases the connector defines
    reason: str  # the write event's text

    @classmethod
    def decode(cls, payload: bytes) -> "Write":
        return cls(*_decode(payload.decode()))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a remembered credential stands for."""

    device_pk: int
    connector_id: str
    identity: str
    formats: dict[str, str]
    connector_stamp: int
    device_stamp: int
    until: float  # time.monotonic() after which the database is asked again
    # Full Redis keys: connector stamp, device stamp, latest values.
    keys: tuple[str, str, str]
    # Whether the stamps were read before a load of the device: only then does the
    # snapshot stand for the device without asking the database (core.generations).
    confirmed: bool = True


_remembered: dict[str, Snapshot] = {}


def enabled() -> bool:
    return settings.DEVICE_WRITE_QUEUE


def redis_client():
    return cache.raw_client()


def key(name: str) -> str:
    """A queue key under the cache's prefix, beside the stamps and rate counters."""
    return cache.make_key(name)


@functools.cache
def stream_key() -> str:
    return key(STREAM)


def queued() -> int:
    """Writes in the stream not yet stored (stored ones are deleted from it)."""
    return redis_client().xlen(stream_key())


def latest_key(device_pk: int) -> str:
    return key(f"writes:latest:{device_pk}")


def now_microseconds() -> int:
    return time.time_ns() // 1000


def remembers(presented: str) -> bool:
    """Whether this process remembers a device under the credential `presented`."""
    snapshot = _remembered.get(presented)
    return snapshot is not None and snapshot.confirmed and snapshot.until >= time.monotonic()


def try_write(presented: str, pairs: list[tuple[str, str]], ip) -> bool:
    """Queue a write whose credential this process remembers.

    False when it does not (or no longer may) remember it: the caller then takes
    the ordinary path, which authenticates against the database.
    """
    if not remembers(presented):
        return False
    return _push(presented, _remembered[presented], pairs, ip)


def remember_and_write(presented: str, device, pairs: list[tuple[str, str]], ip) -> bool:
    """After the database authenticated `device` (loaded once, by this request):
    queue this write and remember the device under the credential presented.
    False: store it directly instead.

    Stamps read after a load vouch for that load's write only: the snapshot is
    kept unconfirmed. The next request with the credential loads the device
    again, after those stamps were read, and so confirms the snapshot; writes
    after that are queued without the database.
    """
    earlier = _remembered.get(presented)
    if earlier is not None and not earlier.confirmed and earlier.device_pk == device.pk:
        connector_stamp, device_stamp = earlier.connector_stamp, earlier.device_stamp
        confirmed = True
    else:
        connector_stamp, device_stamp = generations.read(
            [generations.connector_key(device.connector_id), generations.device_key(device.pk)]
        )
        confirmed = False
    snapshot = Snapshot(
        device_pk=device.pk,
        connector_id=device.connector_id,
        identity=device.identity,
        formats=resource_formats(device.connector),
        connector_stamp=connector_stamp,
        device_stamp=device_stamp,
        until=time.monotonic() + min(_REMEMBER_SECONDS, settings.CREDENTIAL_CACHE_SECONDS),
        keys=(
            cache.make_key(generations.connector_key(device.connector_id)),
            cache.make_key(generations.device_key(device.pk)),
            latest_key(device.pk),
        ),
        confirmed=confirmed,
    )
    if len(_remembered) >= _REMEMBERED_MAX:
        # The oldest first (dicts keep insertion order). Another thread may be
        # changing the dict too; then it is that thread's turn to make room.
        try:
            _remembered.pop(next(iter(_remembered)), None)
        except (RuntimeError, StopIteration):
            pass
    _remembered[presented] = snapshot
    return _push(presented, snapshot, pairs, ip)


def forget_all() -> None:
    """Drop every remembered credential of this process (tests, reconfiguration)."""
    _remembered.clear()


_accept = redis_scripts.Script(_ACCEPT)
_compact_json = json.JSONEncoder(separators=(",", ":")).encode
_decode = json.JSONDecoder().decode


def _push(presented: str, snapshot: Snapshot, pairs, ip) -> bool:
    stored, reason = split_pairs(snapshot.formats, pairs)
    at = now_microseconds()
    # A Write's fields in order, as Write.decode reads them.
    item = _compact_json(
        [at, snapshot.device_pk, snapshot.connector_id, snapshot.identity, ip, stored, reason]
    )
    rate = ratelimit.Rate.parse(settings.RATE_LIMIT_WRITE)
    failures = ratelimit.Rate.parse(settings.RATE_LIMIT_AUTH_FAILURES)
    now = at / 1_000_000
    values = []
    for alias, value in stored:
        values += [alias, f"{at} {value}"]
    connector_stamp_key, device_stamp_key, latest = snapshot.keys
    result = _accept(
        [
            connector_stamp_key,
            device_stamp_key,
            ratelimit.counter_key("write", str(snapshot.device_pk), rate, now),
            stream_key(),
            latest,
            ratelimit.counter_key("authfail", str(ip), failures, now),
        ],
        [
            snapshot.connector_stamp,
            snapshot.device_stamp,
            rate.count,
            rate.seconds + 1,
            settings.DEVICE_WRITE_QUEUE_MAX,
            item,
            LATEST_SECONDS,
            failures.count,
            *values,
        ],
    )
    if result == _STALE:
        _remembered.pop(presented, None)
        return False
    if result == _RATE_LIMITED:
        raise RateLimited(retry_after=ratelimit.retry_after(rate, now))
    if result == _ADDRESS_LIMITED:
        raise RateLimited(retry_after=ratelimit.retry_after(failures, now))
    return result != _FULL


def note_latest(device_pk: int, stored: list[tuple[str, str]], at: int) -> None:
    """Record values stored directly, so that the latest values reads consult stay
    the newest ones whichever path a write took."""
    if not stored:
        return
    pipe = redis_client().pipeline(transaction=False)
    name = latest_key(device_pk)
    pipe.hset(name, mapping={alias: f"{at} {value}" for alias, value in stored})
    pipe.expire(name, LATEST_SECONDS)
    pipe.execute()


def pending_latest(device_pk: int, aliases: list[str]) -> dict[str, tuple[int, str]]:
    """alias → (microseconds, value) of the newest queued write of each alias, as
    accepted by this module; it may already be stored too."""
    if not aliases:
        return {}
    found = redis_client().hmget(latest_key(device_pk), aliases)
    latest = {}
    for alias, raw in zip(aliases, found, strict=True):
        if raw is not None:
            at, _, value = raw.decode().partition(" ")
            latest[alias] = (int(at), value)
    return latest
