"""Fixtures for secure registration tests: a vendor CA trusted by a connector, device
certificates, a device client that presents its certificate the way the TLS proxy
forwards it, and a signed-in user who pairs devices in the browser."""

import json
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import urllib3
import uvicorn
from django.conf import settings
from django.db import connections
from django.test import Client

from accounts.services import grant_device_maker
from certificates import devproxy
from certificates import services as certificate_services
from certificates.models import TrustAnchor
from connectors.models import Connector
from registrations.models import Registration
from tests.support.tls import PROXY_SOURCE_ADDRESS, make_ca, make_certificate

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
        headers = {"HTTP_AUTHORIZATION": f"bearer {token}", **extra}
        return self.send_json("POST", "/v1.1/message", {"sdid": sdid, "data": data}, **headers)


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
    return make_certificate("a1b2c3d4", issuer=device_ca, serial=DEVICE_SERIAL)


@pytest.fixture
def vendor(django_user_model):
    """The device maker who owns the secure connector (no password: nobody signs in as them)."""
    vendor = django_user_model.objects.create_user("vendor", "vendor@example.com")
    grant_device_maker(vendor)
    return vendor


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
def started(secure_client, secure_connector):
    """A registration the device started over the device API, waiting for a user: its
    rid, PIN and the rest of the device API's answer."""
    response = secure_client.initiate(secure_connector, "a1b2c3d4")
    assert response.status_code == 200, response.content
    return response.json()["data"]


@pytest.fixture
def suffix(device_certificate):
    """The serial digits a user types with the PIN."""
    return serial_suffix_of(device_certificate)


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
    found = browser.post("/pair/", {"pin": pin, "serial_suffix": serial_suffix})
    if found.status_code != 302:
        return found
    return browser.post("/pair/confirm/", {"name": name})


def serial_suffix_of(issued) -> str:
    return format(issued.cert.serial_number, "X")[-4:]


def register(client, browser, connector, vendor_device_id: str = "a1b2c3d4") -> dict:
    """The whole secure-registration flow (docs/secure-registration.md); returns the
    device's rid, accessToken, uid and did."""
    started = client.initiate(connector, vendor_device_id).json()["data"]
    paired = pair(browser, connector, started["pin"], serial_suffix_of(client.issued))
    assert paired.status_code == 302, paired.content.decode()
    done = client.complete(started["rid"], started["nonce"]).json()["data"]
    return {"rid": started["rid"], **done}


class TlsDevice:
    """A secure device over real TLS with its client certificate (urllib3, as the SDK uses)."""

    def __init__(self, frontend, cert_file, key_file):
        self.base = frontend.url
        self.http = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(frontend.ca_file),
            cert_file=str(cert_file),
            key_file=str(key_file),
        )

    def call(self, method: str, path: str, body=None, headers=None):
        headers = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        return self.http.request(method, self.base + path, body=body, headers=headers)

    def register(self, connector, browser, issued, vendor_device_id="a1b2c3d4") -> dict:
        """The whole secure registration: initiate, the user pairs, complete."""
        body = {"deviceTypeId": connector.pk, "vendorDeviceId": vendor_device_id}
        started = self.call("POST", REGISTRATIONS, body).json()["data"]
        assert pair(browser, connector, started["pin"], serial_suffix_of(issued)).status_code == 302
        done = self.call("PUT", f"{REGISTRATIONS}/{started['rid']}", {"nonce": started["nonce"]})
        return done.json()["data"]


def registration(rid: str) -> Registration:
    return Registration.objects.get(rid=rid)


def in_thread(function, timeout: float = 120.0):
    """Run `function` in a thread of its own and return its result or raise its error.

    For event-loop code (asgiref's async_to_sync, Playwright's sync API): the main
    thread may already run a loop for the whole session (tests/browser keeps one
    Chromium open there), and a thread has at most one.
    """
    outcome = {}

    def target():
        try:
            outcome["result"] = function()
        except BaseException as exc:  # noqa: BLE001 (handed to the caller as it was)
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name=getattr(function, "__name__", "in-thread"))
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{thread.name} did not finish within {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


# --- the ASGI application over real TLS ---------------------------------------------------


@dataclass
class Frontend:
    """nginx with TLS and optional client certificates before the ASGI application."""

    url: str  # https://localhost:<port>
    ca_file: Path  # verifies nginx's server certificate


# Generous: only a broken server takes this long, a busy machine may take a while.
SERVER_SECONDS = 60


@contextmanager
def serving(application):
    """`application` served by uvicorn on a free loopback port, in a thread of this process."""
    port = devproxy.free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            ws="wsproto",
            log_level="warning",
            # As in production: Gatehouse judges proxy headers itself (core/net.py).
            proxy_headers=False,
        )
    )
    thread = threading.Thread(target=server.run, name="asgi-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_SECONDS)
        if thread.is_alive():
            pytest.fail("uvicorn did not stop")


@pytest.fixture
def asgi_server(transactional_db):
    """portal.asgi (HTTP and WebSockets) served by uvicorn on a free loopback port.

    In a thread of this process, so it uses the test database and settings.
    """
    from portal.asgi import application

    database = connections["default"].settings_dict
    kept_age = database["CONN_MAX_AGE"]
    # The server's threads close their connections after each request, so the test
    # database can be flushed (and on PostgreSQL dropped) when the test ends.
    database["CONN_MAX_AGE"] = 0
    try:
        with serving(application) as address:
            yield address
    finally:
        database["CONN_MAX_AGE"] = kept_age


@pytest.fixture
def secure_frontend(asgi_server, tmp_path, settings):
    """nginx (deploy/nginx/local.conf.template) in front of `asgi_server`, believed by the
    app as its proxy: the whole device path of production, WebSockets included."""
    if devproxy.nginx_binary() is None:
        pytest.fail("nginx is not installed (.ci/run installs it with apt)")
    port = devproxy.free_port()
    local = devproxy.prepare(
        tmp_path / "nginx",
        port=port,
        upstream=asgi_server,
        hostnames=["localhost", "127.0.0.1"],
        proxy_bind=PROXY_SOURCE_ADDRESS,
    )
    settings.TRUSTED_PROXIES = [PROXY_SOURCE_ADDRESS]
    settings.PROXY_SHARED_SECRET = local.proxy_secret
    log_file = tmp_path / "nginx.log"
    with log_file.open("w") as log:
        process = subprocess.Popen(local.argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            devproxy.wait_until_listening(process, "127.0.0.1", port)
            yield Frontend(url=f"https://localhost:{port}", ca_file=local.server.ca_file)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}: {log_file.read_text()}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
