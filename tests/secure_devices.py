"""Fixtures for secure registration tests: a vendor CA trusted by a connector, device
certificates, a device client that presents its certificate the way the TLS proxy
forwards it, and a signed-in user who pairs devices in the browser."""

import json
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client

from certificates import services as certificate_services
from certificates.models import TrustAnchor
from connectors.models import Connector
from registrations.models import Registration
from tests.tls import make_ca, make_certificate

REGISTRATIONS = "/v1.1/cert/devices/registrations"
# The serial number's last four hex digits are what the user types next to the PIN.
DEVICE_SERIAL = 0x5EC0_0000_00C0_FFEE


class SecureDeviceClient(Client):
    """A device with a client certificate, as the TLS proxy forwards it to the app."""

    def __init__(self, issued=None, **defaults):
        super().__init__(**defaults)
        self.issued = issued

    def _extra(self, extra: dict) -> dict:
        headers = {}
        if self.issued is not None:
            headers["HTTP_X_SSL_CLIENT_CERT"] = quote(self.issued.cert_pem)
        if settings.PROXY_SHARED_SECRET:
            headers["HTTP_X_GATEHOUSE_PROXY_SECRET"] = settings.PROXY_SHARED_SECRET
        return {**headers, **extra}

    def send_json(self, method: str, path: str, body=None, **extra):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.generic(
            method, path, data, content_type="application/json", **self._extra(extra)
        )

    def initiate(self, connector, vendor_device_id: str, **extra):
        body = {"deviceTypeId": connector.pk, "vendorDeviceId": vendor_device_id}
        return self.send_json("POST", REGISTRATIONS, body, **extra)

    def status(self, rid: str, **extra):
        return self.get(f"{REGISTRATIONS}/{rid}/status", **self._extra(extra))

    def complete(self, rid: str, nonce, **extra):
        return self.send_json("PUT", f"{REGISTRATIONS}/{rid}", {"nonce": nonce}, **extra)

    def message(self, token: str, sdid, data, **extra):
        return self.send_json(
            "POST",
            "/v1.1/message",
            {"sdid": sdid, "data": data},
            HTTP_AUTHORIZATION=f"bearer {token}",
            **extra,
        )


def trust(connector, ca) -> TrustAnchor:
    """Make `ca` a verified trust anchor of `connector`, proving possession of its key."""
    anchor = certificate_services.add_trust_anchor(connector, ca.cert_pem, name="Vendor CA")
    proof = make_certificate(anchor.verification_code, issuer=ca)
    return certificate_services.verify_trust_anchor(anchor, proof.cert_pem)


@pytest.fixture(scope="session")
def device_ca():
    return make_ca("Thermostat vendor CA")


@pytest.fixture(scope="session")
def device_certificate(device_ca):
    return make_certificate("thermostat-a1b2c3d4", issuer=device_ca, serial=DEVICE_SERIAL)


@pytest.fixture
def vendor(django_user_model):
    """The admin who owns the secure connector (no password: nobody signs in as them)."""
    return django_user_model.objects.create_user("vendor", "vendor@example.com")


@pytest.fixture
def secure_connector(vendor, device_ca):
    """A connector whose devices register securely with certificates from `device_ca`."""
    connector = Connector.objects.create(
        name="Acme Thermostat", owner=vendor, auth_mode=Connector.CERTIFICATE
    )
    trust(connector, device_ca)
    return connector


@pytest.fixture
def secure_client(device_certificate):
    return SecureDeviceClient(device_certificate)


@pytest.fixture
def alice(django_user_model):
    # No password: the test client signs her in directly, without a slow hash.
    return django_user_model.objects.create_user("alice", "alice@example.com")


@pytest.fixture
def alice_browser(alice):
    browser = Client()
    browser.force_login(alice)
    return browser


def pair(browser, connector, pin: str, serial_suffix: str, name: str = "Hall thermostat"):
    """A user's two steps in the browser: find the device by PIN, then confirm it."""
    found = browser.post(
        "/pair/", {"device_type": connector.pk, "pin": pin, "serial_suffix": serial_suffix}
    )
    if found.status_code != 302:
        return found
    return browser.post("/pair/confirm/", {"name": name})


def serial_suffix_of(issued) -> str:
    return format(issued.cert.serial_number, "X")[-4:]


def register(client, browser, connector, vendor_device_id: str = "a1b2c3d4") -> dict:
    """The whole flow of seed 000; returns the device's rid, accessToken, uid and did."""
    started = client.initiate(connector, vendor_device_id).json()["data"]
    paired = pair(browser, connector, started["pin"], serial_suffix_of(client.issued))
    assert paired.status_code == 302, paired.content.decode()
    done = client.complete(started["rid"], started["nonce"]).json()["data"]
    return {"rid": started["rid"], **done}


def registration(rid: str) -> Registration:
    return Registration.objects.get(rid=rid)
