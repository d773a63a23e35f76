"""Generation stamps: a bump gives every key a new stamp that readers see at once."""

import pytest
from django.core.cache import cache
from django.db import transaction

from core import generations


def test_a_bump_gives_each_key_a_new_stamp_read_back_as_a_number():
    before = generations.read(["gen:test-a", "gen:test-b"])
    generations.bump("gen:test-a", "gen:test-b")
    after = generations.read(["gen:test-a", "gen:test-b"])
    assert all(isinstance(stamp, int) for stamp in after)
    assert after[0] != before[0] and after[1] != before[1]
    assert cache.get("gen:test-a") == after[0]


@pytest.mark.django_db
def test_a_bump_inside_a_transaction_renews_the_stamp_again_after_commit(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            generations.bump("gen:test-c")
            [during] = generations.read(["gen:test-c"])
    assert len(callbacks) == 1
    assert generations.read(["gen:test-c"]) != [during]


@pytest.mark.redis
def test_a_bumped_stamp_lives_as_long_as_a_stamp_does():
    generations.bump("gen:test-d")
    ttl = cache.raw_client().ttl(cache.make_key("gen:test-d"))
    assert generations.TIMEOUT_SECONDS - 60 < ttl <= generations.TIMEOUT_SECONDS
