"""Hubs and end nodes: a hub device type, two hubs of it (alice's and bob's), a sensor
type that trusts hubs of that type, and a hub's calls as the TLS proxy forwards them."""

from dataclasses import dataclass

import pytest
from django.test import Client

from connectors.models import Connector
from registrations.models import HubPolicy
from tests.support.secure_devices import SecureDeviceClient, register, trust
from tests.support.tls import make_certificate

# The hub's own certificate is the session's device certificate (CN a1b2c3d4).
OTHER_HUB_SERIAL = 0x5EC0_0000_00B0_B0B0


@dataclass
class Hub:
    """A registered hub: its client (with its certificate), access token and did."""

    client: SecureDeviceClient
    token: str
    did: str
    uid: str

    def call(self, method: str, path: str, body=None, **extra):
        extra.setdefault("HTTP_AUTHORIZATION", f"bearer {self.token}")
        if method in ("GET", "DELETE") and body is None:
            return self.client.generic(method, path, **self.client._extra(extra))
        return self.client.send_json(method, path, body, **extra)

    def create_node(self, name: str = "Porch light", **fields):
        return self.call("POST", "/v1.1/devices", {"name": name, **fields})

    def send(self, sdid, data):
        return self.call("POST", "/v1.1/messages", {"sdid": sdid, "data": data})


@pytest.fixture
def hub_type(secure_connector):
    """The secure connector, made a hub type: its registered devices are hubs."""
    HubPolicy.objects.create(connector=secure_connector, acts_as_hub=True)
    return secure_connector


@pytest.fixture
def hub(hub_type, secure_client, alice_browser) -> Hub:
    """Alice's hub."""
    done = register(secure_client, alice_browser, hub_type)
    return Hub(secure_client, done["accessToken"], done["did"], done["uid"])


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com")


@pytest.fixture
def bob_browser(bob):
    browser = Client()
    browser.force_login(bob)
    return browser


@pytest.fixture
def other_hub(hub_type, device_ca, bob_browser) -> Hub:
    """Bob's hub, of the same hub type."""
    client = SecureDeviceClient(
        make_certificate("b0b0b0b0", issuer=device_ca, serial=OTHER_HUB_SERIAL)
    )
    done = register(client, bob_browser, hub_type, "b0b0b0b0")
    return Hub(client, done["accessToken"], done["did"], done["uid"])


@pytest.fixture
def sensor_type(vendor, device_ca, hub_type):
    """Another device type, whose end nodes hubs of the hub type may create."""
    connector = Connector.objects.create(
        name="Acme Sensor", owner=vendor, auth_mode=Connector.CERTIFICATE
    )
    trust(connector, device_ca)
    policy = HubPolicy.objects.create(connector=connector)
    policy.trusted_hub_types.add(hub_type)
    return connector
