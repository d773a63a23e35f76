"""Queued device writes (DEVICE_WRITE_QUEUE=1): accepted in one Redis round trip,
stored in batches by `manage.py ingest` (devices.ingest).

A web process remembers each Token or Basic credential it has verified against
the database, as a snapshot of the device (its id, connector, identity and the
connector's alias formats) taken under the generation stamps of the device and
of its connector (portal.generations). A later write presenting the same
credential is checked and queued by one Lua script, atomically:

0. its source address is not past RATE_LIMIT_AUTH_FAILURES (an address guessing
   credentials is refused whatever it presents, as on the ordinary path);
1. both stamps are unchanged: no reset, revoke or delete of the device, no change
   to its connector or its resources since the snapshot (otherwise the request
   takes the ordinary path, which asks the database again);
2. the queue has room (otherwise the ordinary path stores the write directly);
3. the per-device write rate is not exceeded (RATE_LIMIT_WRITE, the same counter
   the ordinary path uses);
4. the write is appended to the queue with the next sequence number, and its
   values become the device's latest in a hash that reads and long polls consult,
   so a device reads back what it wrote before the ingest has stored it.

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

from devices.services.errors import InvalidData, RateLimited
from portal import generations, ratelimit, redis_scripts

QUEUE = "writes:queue"
SEQUENCE = "writes:sequence"
LATEST_SECONDS = 24 * 3600

# A snapshot is re-checked against the database at least this often, whatever the stamps say.
_REMEMBER_SECONDS = 300
_REMEMBERED_MAX = 100_000

_ACCEPT = """
if tonumber(redis.call('GET', KEYS[7]) or '0') >= tonumber(ARGV[8]) then
    return -4
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return -1
end
if redis.call('LLEN', KEYS[4]) >= tonumber(ARGV[5]) then
    return -3
end
local used = redis.call('INCR', KEYS[3])
if used == 1 then
    redis.call('EXPIRE', KEYS[3], ARGV[4])
end
if used > tonumber(ARGV[3]) then
    return -2
end
local seq = redis.call('INCR', KEYS[5])
redis.call('RPUSH', KEYS[4], seq .. ' ' .. ARGV[6])
if #ARGV > 8 then
    redis.call('HSET', KEYS[6], unpack(ARGV, 9))
    redis.call('EXPIRE', KEYS[6], ARGV[7])
end
return seq
"""
_STALE, _RATE_LIMITED, _FULL, _ADDRESS_LIMITED = -1, -2, -3, -4


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


_remembered: dict[str, Snapshot] = {}


def enabled() -> bool:
    return settings.DEVICE_WRITE_QUEUE


def redis_client():
    return cache.raw_client()


def key(name: str) -> str:
    """A queue key under the cache's prefix, beside the stamps and rate counters."""
    return cache.make_key(name)


def latest_key(device_pk: int) -> str:
    return key(f"writes:latest:{device_pk}")


def split_pairs(formats: dict[str, str], pairs: list[tuple[str, str]]):
    """(pairs to store, event reason) of a write; InvalidData for a bad value.

    Aliases not defined are left out of the store and named in the reason.
    """
    from devices.services.data import check_value

    if not pairs:
        raise InvalidData("no alias=value pairs in the body")
    stored, ignored = [], []
    for alias, value in pairs:
        if alias in formats:
            try:
                check_value(formats[alias], value)
            except InvalidData as exc:
                raise InvalidData(f"{alias}: {exc.message}") from exc
            stored.append((alias, value))
        else:
            ignored.append(alias)
    reason = ", ".join(f"{alias}={value}" for alias, value in pairs)
    if ignored:
        reason += f" (not stored, undefined: {', '.join(ignored)})"
    return stored, reason


def now_microseconds() -> int:
    return time.time_ns() // 1000


def try_write(presented: str, pairs: list[tuple[str, str]], ip) -> bool:
    """Queue a write whose credential this process remembers.

    False when it does not (or no longer may) remember it: the caller then takes
    the ordinary path, which authenticates against the database.
    """
    snapshot = _remembered.get(presented)
    if snapshot is None or snapshot.until < time.monotonic():
        return False
    return _push(presented, snapshot, pairs, ip)


def remember_and_write(presented: str, device, pairs: list[tuple[str, str]], ip) -> bool:
    """After the database authenticated `device`: remember it under the credential
    presented and queue this write. False: store it directly instead."""
    from devices.services.authentication import device_still_current
    from devices.services.data import resource_formats

    connector_stamp, device_stamp = generations.read(
        [generations.connector_key(device.connector_id), generations.device_key(device.pk)]
    )
    # The stamps were read after the device was loaded; it is remembered only if
    # it is unchanged now that they are (see portal.generations).
    if not device_still_current(device):
        return False
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


@functools.cache
def _queue_keys() -> tuple[str, str]:
    return key(QUEUE), key(SEQUENCE)


_accept = redis_scripts.Script(_ACCEPT)
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _push(presented: str, snapshot: Snapshot, pairs, ip) -> bool:
    stored, reason = split_pairs(snapshot.formats, pairs)
    at = now_microseconds()
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
    queue, sequence = _queue_keys()
    result = _accept(
        [
            connector_stamp_key,
            device_stamp_key,
            ratelimit.counter_key("write", str(snapshot.device_pk), rate, now),
            queue,
            sequence,
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
