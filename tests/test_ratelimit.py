"""Rate limits counted in the shared cache: on Redis one script per request."""

import pytest
from django.core.cache import cache

from portal import generations, ratelimit

RATE = ratelimit.Rate(count=2, seconds=60)


def test_counts_past_the_rate_are_refused_with_retry_after():
    assert ratelimit.hit_all([("t", "a", RATE), ("t", "b", RATE)]) == [1, 1]
    assert ratelimit.hit("t", "a", RATE) == 0
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.hit("t", "a", RATE)
    assert 1 <= refused.value.retry_after <= 61
    assert ratelimit.hit("t", "b", RATE) == 0


def test_count_all_reads_stamps_in_the_same_round_trip():
    [stamp] = generations.read(["gen:test"])
    counted, values = ratelimit.count_all([("t", "c", RATE)], read=["gen:test", "gen:missing"])
    assert values == [stamp, None]
    assert counted.check() == [1]


@pytest.mark.redis
def test_a_new_window_counter_expires_with_its_window():
    ratelimit.hit("t", "d", RATE)
    [key] = [k for k in cache.raw_client().keys("*rl:t:d:*")]
    assert 0 < cache.raw_client().ttl(key) <= RATE.seconds + 1
