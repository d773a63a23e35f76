"""Clients that talk to Gatehouse as its callers do: firmware on a connector's device
host, the management API with a bearer token, anything behind the proxy."""

import base64

from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken

# The test client stands where nginx stands: on loopback, sending the proxy secret
# with the headers only the proxy may set (core/net.py). Requests without it
# are direct ones, whose proxy headers are dropped.
TEST_PROXY_SECRET = "test-proxy-secret-5f0c2b9e7d41a3c8e6b2d9f4a1c7e3b5"


def through_proxy(**meta) -> dict:
    """Request META as the proxy forwards it: its secret beside what it saw."""
    return {"HTTP_X_GATEHOUSE_PROXY_SECRET": settings.PROXY_SHARED_SECRET, **meta}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer_client(user) -> APIClient:
    """A management API client speaking JSON with a fresh API token of `user`."""
    _, token = ApiToken.issue(user, "tests")
    client = APIClient()
    client.default_format = "json"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


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
