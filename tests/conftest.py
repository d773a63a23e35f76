import base64
import itertools

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import grant_device_maker
from connectors.models import Connector, Resource
from devices import services

_names = itertools.count(1)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Tests create many users and device passwords; production keeps slow hashers
    (test_device_passwords_are_stored_with_the_slow_salted_hash checks them)."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate-limit counters and credential verifications live in the shared cache.
    cache.clear()
    yield
    cache.clear()


# The test client stands where nginx stands: on loopback, sending the proxy secret
# with the headers only the proxy may set (portal/net.py). Requests without it
# are direct ones, whose proxy headers are dropped.
TEST_PROXY_SECRET = "test-proxy-secret-5f0c2b9e7d41a3c8e6b2d9f4a1c7e3b5"


@pytest.fixture(autouse=True)
def _proxy_in_front(settings):
    settings.PROXY_SHARED_SECRET = TEST_PROXY_SECRET
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1"]


def through_proxy(**meta) -> dict:
    """Request META as the proxy forwards it: its secret beside what it saw."""
    return {"HTTP_X_GATEHOUSE_PROXY_SECRET": django_settings.PROXY_SHARED_SECRET, **meta}


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
    """Seed 002's connector: base10 identities of length 8, token auth, `myalias` defined."""
    connector = make_connector(identity_type="base10", identity_length=8)
    Resource.objects.create(connector=connector, alias="myalias", format="number")
    return connector


class DeviceClient(Client):
    """Talks to one connector's device host, as firmware does."""

    def __init__(self, connector, **defaults):
        super().__init__(HTTP_HOST=connector.device_host, **defaults)
        self.connector = connector

    def activate(self, identity, password=None, **extra):
        body = f"id={identity}" + (f"&password={password}" if password is not None else "")
        return self.post(
            "/provision/activate", body, content_type="application/x-www-form-urlencoded", **extra
        )

    def write(self, body, authorization, **extra):
        return self.post(
            "/api:v1/stack/alias",
            body,
            content_type="application/x-www-form-urlencoded; charset=utf-8",
            HTTP_AUTHORIZATION=authorization,
            **extra,
        )

    def read(self, query, authorization, **extra):
        return self.get(f"/api:v1/stack/alias?{query}", HTTP_AUTHORIZATION=authorization, **extra)


@pytest.fixture
def device_client(connector):
    return DeviceClient(connector)


@pytest.fixture
def whitelist():
    def add(connector, identity, **kwargs):
        return services.whitelist_device(connector, identity, **kwargs)

    return add


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer_client(user) -> APIClient:
    """A management API client speaking JSON with a fresh API token of `user`."""
    _, token = ApiToken.issue(user, "tests")
    client = APIClient()
    client.default_format = "json"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def api_client(owner):
    """The management API as the connector owner."""
    return bearer_client(owner)


@pytest.fixture
def other_client(other_user):
    """The management API as a user who owns and manages nothing here."""
    return bearer_client(other_user)


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


# Secure registration (tests/secure_devices.py): a trusted vendor CA, device certificates,
# a device client presenting its certificate as the proxy forwards it, a pairing user, and
# the ASGI application behind nginx (secure_frontend) for WebSockets over real TLS.
# The audit trail (tests/audit.py): a connector with a log, one with a PKI.
from tests.audit import busy, owner_browser, pki  # noqa: E402, F401
from tests.secure_devices import (  # noqa: E402, F401
    alice,
    alice_browser,
    asgi_server,
    device_ca,
    device_certificate,
    secure_client,
    secure_connector,
    secure_frontend,
    vendor,
)

# Real TLS through nginx (tests/tls.py): nginx_proxy yields its https URL and CA file.
from tests.tls import nginx_proxy, nginx_server  # noqa: E402, F401
