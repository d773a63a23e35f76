"""Every setting is parsed at start: a value that cannot be, stops the process with its name."""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings

# (variable, bad value, what the message must say was expected)
BAD_VALUES = [
    ("RATE_LIMIT_WRITE", "ten", "<count>/<seconds>"),
    ("RATE_LIMIT_ACTIVATE", "10/0", "<count>/<seconds>"),
    ("RATE_LIMIT_MESSAGES_DAILY", "1000 per day", "<count>/<seconds>"),
    ("DEVICE_MAX_BODY_BYTES", "64k", "a whole number of at least 1"),
    ("INGEST_BATCH_SIZE", "0", "a whole number of at least 1"),
    ("LOGIN_LOCKOUT_MINUTES", "15m", "a whole number of at least 1"),
    ("EVENT_RETENTION_DAYS", "-1", "a whole number of at least 0"),
    ("LONG_POLL_INTERVAL_SECONDS", "nan", "a number of at least 0.01"),
    ("EXPIRY_SWEEP_SECONDS", "a minute", "a number of at least 1"),
    ("DEBUG", "maybe", "true or false"),
    ("DEVICE_WRITE_QUEUE", "enabled", "true or false"),
    ("TRUSTED_PROXIES", "127.0.0.1,nginx", "IP addresses"),
    ("CSRF_TRUSTED_ORIGINS", "gatehouse.example.com", "origins like https://"),
    ("DEVICE_DOMAIN", "devices example.com", "a DNS name"),
    ("TIME_ZONE", "Mars/Olympus_Mons", "an IANA time zone"),
    ("LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ("PASSWORD_HASHERS", "django.contrib.auth.hashers.NoSuchHasher", "importable dotted paths"),
    ("REDIS_URL", "127.0.0.1:6379", "a URL starting redis://"),
    ("CELERY_BROKER_URL", "rabbit://guest@localhost", "a URL starting"),
    ("DATABASE_URL", "mysql://admin:hunter2@db/gatehouse", "a URL starting"),
    ("FOUNDRY_REGION", "us-west-2:cert", "a region name such as us-west-2"),
    ("FOUNDRY_ACCOUNT", "4418-9871", "an account number of 12 digits"),
]


def check(**variables) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("name", "value", "expected"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_a_value_that_cannot_be_parsed_stops_the_start_naming_the_variable(name, value, expected):
    result = check(**{name: value})
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"django.core.exceptions.ImproperlyConfigured: {name}: ")
    assert expected in message


def test_urls_that_cannot_be_parsed_are_named_without_echoing_their_passwords():
    result = check(DATABASE_URL="mysql://admin:hunter2@db/gatehouse")
    assert "DATABASE_URL" in result.stderr
    assert "hunter2" not in result.stderr


def test_values_in_every_accepted_spelling_start():
    result = check(
        RATE_LIMIT_WRITE="5/1",
        DEBUG="off",
        DEVICE_WRITE_QUEUE="0",
        TRUSTED_PROXIES="127.0.0.1, ::1,10.0.0.7",
        # Listing proxies needs their secret (gatehouse.E001).
        PROXY_SHARED_SECRET="a-proxy-secret-of-at-least-32-characters",
        LONG_POLL_INTERVAL_SECONDS="0.5",
        LOG_LEVEL="warning",
        TIME_ZONE="Europe/Berlin",
        CSRF_TRUSTED_ORIGINS="https://gatehouse.example.com",
        EVENT_RETENTION_DAYS="0",
    )
    assert result.returncode == 0, result.stderr


def test_the_settings_read_the_environment_only_through_the_parsing_readers():
    source = (settings.BASE_DIR / "portal" / "settings.py").read_text()
    assert re.findall(r"\benv\.(?:str|int|float|bool|list|db|url)\(", source) == []
