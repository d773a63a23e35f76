"""Fixtures every test folder shares: people, connectors, clients, and a clean slate.

Fixtures that live with their helpers (real TLS, processes, secure registration, the
audit trail) are plugins, listed in `pytest_plugins`; a folder's own fixtures are in
its conftest.py.
"""

import gc
import itertools
import warnings

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings

from accounts.services import grant_device_maker
from connectors.models import Connector, Resource
from devices import services
from tests.support.clients import TEST_PROXY_SECRET, DeviceClient, bearer_client

# Dependencies first: a plugin imported by another before its own turn could not
# have its asserts rewritten.
pytest_plugins = [
    "tests.support.tls",
    "tests.support.processes",
    "tests.support.secure_devices",
    "tests.support.audit",
]

_names = itertools.count(1)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Tests create many users and device passwords; production keeps slow hashers
    (test_device_passwords_are_stored_with_the_slow_salted_hash checks them)."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True, scope="session")
def _no_stray_database_sessions(django_db_setup, django_db_blocker):
    """Threads the tests start (WebSocket consumers' executor, MQTT and device-library
    clients) keep their database connections open after their test; PostgreSQL drops
    the test database only once no session uses it, so end theirs first."""
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


def pytest_sessionfinish(session, exitstatus):
    """Threads the tests started (WebSocket executors, MQTT and device-library clients)
    leave their database and Redis connections behind when they end. Collected now,
    after the last fixture, each would otherwise warn that it was deleted while open,
    and the warning would be raised after the last test, where it names no test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate-limit counters and credential verifications live in the shared cache.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _proxy_in_front(settings):
    """The test client stands where nginx stands (tests.support.clients.through_proxy)."""
    settings.PROXY_SHARED_SECRET = TEST_PROXY_SECRET
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1"]


def device_maker(user):
    """`user`, granted the device maker role as an admin would."""
    grant_device_maker(user)
    return user


@pytest.fixture
def owner(django_user_model):
    """A device maker who owns the connectors the fixtures make."""
    return device_maker(
        django_user_model.objects.create_user("owner", "owner@example.com", "owner-pass-123")
    )


@pytest.fixture
def other_user(django_user_model):
    """Another device maker, who owns and manages nothing here (sees 404s)."""
    return device_maker(
        django_user_model.objects.create_user("other", "other@example.com", "other-pass-123")
    )


@pytest.fixture
def end_user(django_user_model):
    """A plain user, not a device maker: pairing and their own devices, nothing else."""
    return django_user_model.objects.create_user("enduser", "enduser@example.com", "end-pass-123")


@pytest.fixture
def make_connector(owner):
    def make(**fields):
        resources = fields.pop("_resources", {})
        fields.setdefault("name", f"Connector {next(_names)}")
        fields.setdefault("owner", owner)
        connector = Connector.objects.create(**fields)
        for alias, fmt in resources.items():
            Resource.objects.create(connector=connector, alias=alias, format=fmt)
        return connector

    return make


@pytest.fixture
def connector(make_connector):
    """The connector of docs/device-api.md's walkthrough: base10 identities of length 8,
    token auth, `myalias` defined."""
    connector = make_connector(identity_type="base10", identity_length=8)
    Resource.objects.create(connector=connector, alias="myalias", format="number")
    return connector


@pytest.fixture
def cert_connector(make_connector):
    """The walkthrough's connector switched to TLS client certificates (no CA yet)."""
    return make_connector(
        auth_mode="certificate",
        identity_type="base10",
        identity_length=8,
        _resources={"myalias": "number"},
    )


@pytest.fixture
def device_client(connector):
    return DeviceClient(connector)


@pytest.fixture
def whitelist():
    def add(connector, identity, **kwargs):
        return services.whitelist_device(connector, identity, **kwargs)

    return add


@pytest.fixture
def api_client(owner):
    """The management API as the connector owner."""
    return bearer_client(owner)


@pytest.fixture
def other_api_client(other_user):
    """The management API as a user who owns and manages nothing here."""
    return bearer_client(other_user)


@pytest.fixture
def owner_client(owner):
    """The portal in a browser signed in as the connector owner."""
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def other_browser(other_user):
    """The portal in a browser signed in as a maker who owns and manages nothing here."""
    client = Client()
    client.force_login(other_user)
    return client


@pytest.fixture
def end_user_client(end_user):
    """The management API as a plain user, with a token issued before the role existed."""
    return bearer_client(end_user)


@pytest.fixture
def end_user_browser(end_user):
    """The portal in a browser signed in as a plain user."""
    browser = Client()
    browser.force_login(end_user)
    return browser


def pytest_collection_modifyitems(config, items):
    """Skip tests marked for a service this run was not given (markers in pyproject)."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    missing = {
        "postgres": None if "postgresql" in engine else "needs DATABASE_URL=postgres://…",
        "redis": None if settings.REDIS_URL else "needs REDIS_URL=redis://…",
        "worker": "tasks run eagerly (CELERY_TASK_ALWAYS_EAGER)"
        if settings.CELERY_TASK_ALWAYS_EAGER
        else None,
    }
    for item in items:
        for marker, reason in missing.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))
