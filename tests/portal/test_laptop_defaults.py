"""The laptop default (no DATABASE_URL, no REDIS_URL) serves several processes at once:
SQLite in WAL mode that waits for locks, and a cache every local process shares in
which rate limits hold however many processes count at the same moment."""

import sys
import textwrap

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from core.ratelimit import Rate, spend
from tests.support.processes import Processes

WAIT_SECONDS = 180
on_sqlite = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the laptop default database is SQLite"
)
on_the_laptop_cache = pytest.mark.skipif(
    bool(settings.REDIS_URL), reason="the laptop default cache is used without REDIS_URL"
)


@on_sqlite
@pytest.mark.django_db
def test_sqlite_writes_ahead_and_waits_for_locks_instead_of_failing():
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert cursor.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert cursor.execute("PRAGMA busy_timeout").fetchone() == (20_000,)
    # Writers take the lock when their transaction begins, so a reader that later
    # writes never fails with "database is locked" halfway through.
    assert connection.transaction_mode == "IMMEDIATE"


def run_in_processes(tmp_path, count: int, code: str) -> list[str]:
    """Run `code` in `count` Django processes on this test's database and cache, all
    released at once; returns what each printed last."""
    go = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import os, time
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        """
    ) + textwrap.dedent(code)
    processes = Processes(tmp_path, GATEHOUSE_VAR_DIR=str(settings.VAR_DIR))
    started = [
        processes.start(f"counter-{n}", [sys.executable, "manage.py", "shell", "-c", script])
        for n in range(count)
    ]
    try:
        go.touch()
        for process in started:
            process.wait(timeout=WAIT_SECONDS)
    finally:
        processes.stop()
    assert all(process.returncode == 0 for process in started), processes.logs()
    return [processes.log(f"counter-{n}").strip().splitlines()[-1] for n in range(count)]


@on_the_laptop_cache
@pytest.mark.django_db
def test_the_cache_is_shared_by_every_local_process(tmp_path):
    cache.set("from-the-test", "hello", 60)
    [answer] = run_in_processes(
        tmp_path,
        1,
        """
        from django.core.cache import cache
        cache.set("from-a-process", "hello back", 60)
        print(cache.get("from-the-test"))
        """,
    )
    assert answer == "hello"
    assert cache.get("from-a-process") == "hello back"


@pytest.mark.django_db
def test_a_rate_limit_holds_when_several_processes_spend_at_the_same_moment(tmp_path):
    # 4 processes × 30 attempts against a limit of 25: exactly 25 get through,
    # on the laptop's cache as on Redis.
    answers = run_in_processes(
        tmp_path,
        4,
        """
        from core.ratelimit import Rate, RateLimited, spend
        allowed = 0
        for _ in range(30):
            try:
                spend("race", "one-key", Rate(25, 3600))
                allowed += 1
            except RateLimited:
                pass
        print(allowed)
        """,
    )
    assert sum(int(answer) for answer in answers) == 25
    with pytest.raises(Exception, match="rate limited"):
        spend("race", "one-key", Rate(25, 3600))
