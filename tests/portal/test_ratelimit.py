"""Rate limits counted in the shared cache: on Redis one script per request."""

import threading

import pytest
from django.core.cache import cache

from core import generations, ratelimit, redis_scripts

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


def test_spend_all_counts_against_every_rate_or_none():
    daily = ratelimit.Rate(count=5, seconds=86400)
    scopes = [("s", "a", daily), ("s", "b", RATE)]
    assert ratelimit.spend_all(scopes) == [4, 1]
    assert ratelimit.spend_all(scopes) == [3, 0]
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.spend_all(scopes)
    assert 1 <= refused.value.retry_after <= 61
    # The refusal by the second rate spent nothing of the first.
    assert ratelimit.spend_all([("s", "a", daily)]) == [2]


@pytest.mark.redis
def test_concurrent_spends_never_take_more_than_the_rate():
    rate, daily = ratelimit.Rate(count=5, seconds=60), ratelimit.Rate(count=100, seconds=86400)
    start, granted, refused = threading.Barrier(20), [], []

    def spend():
        start.wait()
        try:
            granted.append(ratelimit.spend_all([("s", "race-day", daily), ("s", "race", rate)]))
        except ratelimit.RateLimited:
            refused.append(1)
        finally:
            redis_scripts.close_connection()

    threads = [threading.Thread(target=spend) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(granted), len(refused)) == (5, 15)
    assert sorted(remaining for _, remaining in granted) == [0, 1, 2, 3, 4]
    # The 15 refused by the tight rate took nothing from the roomy one.
    assert ratelimit.spend_all([("s", "race-day", daily)]) == [94]


def test_spend_counts_before_the_work_and_gives_back_only_its_own_count():
    rate = ratelimit.Rate(2, 60)
    first = ratelimit.spend("g", "user", rate)
    assert first.remaining == 1
    first.give_back()
    assert ratelimit.spend("g", "user", rate).remaining == 1
    assert ratelimit.spend("g", "user", rate).remaining == 0
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.spend("g", "user", rate)


def test_giving_back_after_the_window_ended_creates_no_counter():
    spent = ratelimit.spend("g", "gone", ratelimit.Rate(1, 60))
    cache.delete(spent.window_key)  # as when its window ends and the counter expires
    spent.give_back()
    assert cache.get(spent.window_key) is None
