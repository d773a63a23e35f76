"""Fixed-window rate limits counted in the shared cache (Redis in production),
so every web process behind the proxy sees the same counts."""

import functools
import time
from dataclasses import dataclass

from django.core.cache import cache

from core import redis_scripts


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    @functools.lru_cache(maxsize=64)
    def parse(cls, text: str) -> "Rate":
        """Parse "<count>/<seconds>", e.g. "10/60"."""
        try:
            count, seconds = (int(part) for part in text.split("/"))
        except ValueError as exc:
            raise ValueError(f"rate {text!r} is not <count>/<seconds>") from exc
        if count < 1 or seconds < 1:
            raise ValueError(f"rate {text!r} must be positive")
        return cls(count, seconds)


class RateLimited(Exception):
    """Too many requests; `retry_after` says in how many seconds to try again."""

    def __init__(self, retry_after: int):
        super().__init__(f"rate limited, retry after {retry_after} s")
        self.retry_after = retry_after


# KEYS: the counters, then the keys to read. ARGV: how many counters, then each
# counter's lifetime. A new window's counter gets its expiry with its first count.
_count_and_read = redis_scripts.Script(
    """
local counters = tonumber(ARGV[1])
local results = {}
for i = 1, counters do
    local used = redis.call('INCR', KEYS[i])
    if used == 1 then
        redis.call('EXPIRE', KEYS[i], ARGV[i + 1])
    end
    results[i] = used
end
for i = counters + 1, #KEYS do
    results[i] = redis.call('GET', KEYS[i])
end
return results
"""
)


def _window_key(scope: str, key: str, rate: Rate, now: float) -> str:
    return f"rl:{scope}:{key}:{int(now // rate.seconds)}"


def counter_key(scope: str, key: str, rate: Rate, now: float) -> str:
    """The full cache key counting (scope, key) in the window of `now`, for callers
    that count inside a Redis script of their own (devices.services.write_queue)."""
    return _full_key(_window_key(scope, key, rate, now))


@functools.lru_cache(maxsize=4096)
def _full_key(window_key: str) -> str:
    # A device's key changes once a window; the cache's key function costs more
    # than this lookup.
    return cache.make_key(window_key)


def retry_after(rate: Rate, now: float) -> int:
    window = int(now // rate.seconds)
    return max(1, int((window + 1) * rate.seconds - now) + 1)


def _decr(cache_key: str) -> None:
    try:
        cache.decr(cache_key)
    except ValueError:
        pass  # its window ended, and the counter with it


def _incr(cache_key: str, rate: Rate) -> int:
    # The first request of a window creates the key (add() loses gracefully
    # to a concurrent creator).
    try:
        return cache.incr(cache_key)
    except ValueError:
        if cache.add(cache_key, 1, rate.seconds + 1):
            return 1
        return cache.incr(cache_key)


@dataclass(frozen=True)
class Counted:
    """Requests counted by count_all(), not yet judged."""

    now: float
    rates: list[Rate]
    used: list[int]

    def check(self) -> list[int]:
        """Raise RateLimited if any count is past its rate; else what remains of each."""
        remaining = []
        for rate, used in zip(self.rates, self.used, strict=True):
            if used > rate.count:
                raise RateLimited(retry_after=retry_after(rate, self.now))
            remaining.append(rate.count - used)
        return remaining


def count_all(
    checks: list[tuple[str, str, Rate]], read: list[str] = ()
) -> tuple[Counted, list[int | None]]:
    """Count one request against each (scope, key, rate), and read the integers
    cached under `read` (None where missing), in one round trip on Redis (one
    script: an INCR per count, EXPIRE for a new window, a GET per read)."""
    now = time.time()
    keyed = [(_window_key(scope, key, rate, now), rate) for scope, key, rate in checks]
    if hasattr(cache, "raw_client"):
        make_key = cache.make_key  # one lookup through the per-thread cache proxy
        results = _count_and_read(
            [make_key(cache_key) for cache_key, _ in keyed] + [make_key(key) for key in read],
            [len(keyed), *(rate.seconds + 1 for _, rate in keyed)],
        )
        used = results[: len(keyed)]
        # Django's Redis cache stores plain ints unpickled, as digits.
        values = [int(raw) if raw is not None else None for raw in results[len(keyed) :]]
    else:
        used = [_incr(cache_key, rate) for cache_key, rate in keyed]
        values = [cache.get(key) for key in read]
    return Counted(now, [rate for _, rate in keyed], used), values


def hit_all(checks: list[tuple[str, str, Rate]]) -> list[int]:
    """Count one request against each (scope, key, rate); raise RateLimited if any
    is past its rate. Returns what remains of each in the current window."""
    counted, _ = count_all(checks)
    return counted.check()


def hit(scope: str, key: str, rate: Rate) -> int:
    """Count one request for (scope, key); raise RateLimited past the rate.

    Returns how many requests remain in the current window.
    """
    return hit_all([(scope, key, rate)])[0]


# KEYS: the window counters. ARGV: count and expiry of each, in turn. Counts
# against every counter only if none is spent; else returns the 1-based index
# of the first spent counter, negated, and counts nothing.
_spend_all = redis_scripts.Script(
    """
for i = 1, #KEYS do
    if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[2 * i - 1]) then
        return -i
    end
end
local results = {}
for i = 1, #KEYS do
    local used = redis.call('INCR', KEYS[i])
    if used == 1 then
        redis.call('EXPIRE', KEYS[i], ARGV[2 * i])
    end
    results[i] = used
end
return results
"""
)


def spend_all(checks: list[tuple[str, str, Rate]], now: float | None = None) -> list[int]:
    """Count one request against every (scope, key, rate), but only if each has
    room left: a request refused by one rate spends none of the others (a
    message refused by its daily quota leaves the per-minute one alone).

    Raises RateLimited; returns what remains of each in its window. On Redis
    one round trip, and atomic: two requests cannot both take the last one.
    """
    now = time.time() if now is None else now
    keyed = [(_window_key(scope, key, rate, now), rate) for scope, key, rate in checks]
    if hasattr(cache, "raw_client"):
        make_key = cache.make_key
        arguments = []
        for _, rate in keyed:
            arguments += [rate.count, rate.seconds + 1]
        result = _spend_all([make_key(cache_key) for cache_key, _ in keyed], arguments)
        if isinstance(result, int):
            raise RateLimited(retry_after=retry_after(keyed[-result - 1][1], now))
        return [rate.count - used for (_, rate), used in zip(keyed, result, strict=True)]
    # Other caches (the laptop default): count first, then look, and give the
    # counts back if any is past its rate. Two requests can then never both see
    # room for the last one, as far as the cache's incr() is atomic: the laptop's
    # (diskcache, portal/cache.py) is, across processes too.
    remaining, counted = [], []
    for cache_key, rate in keyed:
        used = _incr(cache_key, rate)
        counted.append(cache_key)
        if used > rate.count:
            for taken in counted:
                _decr(taken)
            raise RateLimited(retry_after=retry_after(rate, now))
        remaining.append(rate.count - used)
    return remaining


def peek(scope: str, key: str, rate: Rate, read: list[str] = ()) -> list:
    """Raise RateLimited if (scope, key) is over its rate, without counting.

    Returns the values cached under `read` (None where missing), read in the same
    round trip as the counter.
    """
    now = time.time()
    window_key = _window_key(scope, key, rate, now)
    found = cache.get_many([window_key, *read])
    if (found.get(window_key) or 0) >= rate.count:
        raise RateLimited(retry_after=retry_after(rate, now))
    return [found.get(name) for name in read]


# KEYS: one window counter. Decrements it only while it exists: a counter whose
# window ended (and expired) is not created again without its expiry.
_give_back = redis_scripts.Script(
    """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('DECR', KEYS[1])
end
return false
"""
)


@dataclass(frozen=True)
class Spent:
    """One request counted by spend(), in the window it was counted in."""

    window_key: str
    remaining: int

    def give_back(self) -> None:
        """Uncount the request (a guess that proved right is no guess against the limit)."""
        if hasattr(cache, "raw_client"):
            _give_back([cache.make_key(self.window_key)], [])
            return
        _decr(self.window_key)


def spend(scope: str, key: str, rate: Rate) -> Spent:
    """Count one attempt for (scope, key) before doing the work it stands for, or raise
    RateLimited without counting: however many arrive at once, at most `rate.count`
    get through in a window (on Redis and on the laptop's cache; spend_all() says
    why). An attempt that turns out not to count against the limit is given back
    with `Spent.give_back()`."""
    now = time.time()
    remaining = spend_all([(scope, key, rate)], now)[0]
    return Spent(_window_key(scope, key, rate, now), remaining)
