"""Fixed-window rate limits counted in the shared cache (Redis in production),
so every web process behind the proxy sees the same counts."""

import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
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


def hit(scope: str, key: str, rate: Rate) -> int:
    """Count one request for (scope, key); raise RateLimited past the rate.

    Returns how many requests remain in the current window.
    """
    now = time.time()
    window = int(now // rate.seconds)
    cache_key = f"rl:{scope}:{key}:{window}"
    # One atomic INCR on Redis in the common case; the first request of a
    # window creates the key (add() loses gracefully to a concurrent creator).
    try:
        used = cache.incr(cache_key)
    except ValueError:
        if cache.add(cache_key, 1, rate.seconds + 1):
            used = 1
        else:
            used = cache.incr(cache_key)
    if used > rate.count:
        raise RateLimited(retry_after=max(1, int((window + 1) * rate.seconds - now) + 1))
    return rate.count - used


def peek(scope: str, key: str, rate: Rate) -> None:
    """Raise RateLimited if (scope, key) is over its rate, without counting."""
    now = time.time()
    window = int(now // rate.seconds)
    if (cache.get(f"rl:{scope}:{key}:{window}") or 0) >= rate.count:
        raise RateLimited(retry_after=max(1, int((window + 1) * rate.seconds - now) + 1))
