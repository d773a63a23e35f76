"""Proxy headers are believed only with the proxy's secret, on the processes operators run.

Each test starts gunicorn exactly as README.md's production section says (on a free
port, on the test database) and talks to it as another local process would: straight
to the app port, with headers of its choosing. The genuine path goes through
deploy/nginx/gatehouse.conf with the secret.
"""

import http.client
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from django.conf import settings

from audit.models import Event
from devices.models import Credential, DataPoint, Device
from tests.support.clients import DeviceClient, through_proxy
from tests.support.processes import Processes, free_port
from tests.support.production import PORTAL_NAME, ProductionNginx, readme_command
from tests.support.tls import make_certificate

pytestmark = pytest.mark.django_db(transaction=True)

START_SECONDS = 120
PROXY_SETTINGS = ("PROXY_SHARED_SECRET", "PROXY_SHARED_SECRET_FILE", "TRUSTED_PROXIES")


class AppServer:
    """A README production process on the test database, reached directly on its port."""

    def __init__(self, tmp_path, program="gunicorn", **environment):
        self.port = free_port()
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.processes = Processes(tmp_path, **environment)
        for name in PROXY_SETTINGS:
            if name not in environment:
                self.processes.env.pop(name, None)
        self.process = self.processes.start(program, readme_command(program, self.port))
        self.program = program

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert self.process.poll() is None, self.processes.logs()
            try:
                self.request("GET", "/healthz")
                return
            except OSError:
                assert time.monotonic() < deadline, f"not serving\n{self.processes.logs()}"
                time.sleep(0.2)

    def request(self, method, path, body=None, headers=None, host="localhost"):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        all_headers = {"Host": host, **(headers or {})}
        if body is not None:
            all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        self.processes.stop()


@pytest.fixture
def app_server(tmp_path):
    started = []

    def start(**environment) -> AppServer:
        server = AppServer(tmp_path / f"app{len(started)}", **environment)
        started.append(server)
        server.wait_until_serving()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def cert_device(make_connector, whitelist):
    """A device provisioned with its certificate through the proxy (the test client)."""
    connector = make_connector(
        auth_mode="certificate",
        identity_type="base10",
        identity_length=8,
        _resources={"myalias": "number"},
    )
    whitelist(connector, "00000001")
    issued = make_certificate("00000001")
    written = DeviceClient(connector).post(
        "/api:v1/stack/alias",
        "myalias=1",
        content_type="application/x-www-form-urlencoded",
        **through_proxy(HTTP_X_SSL_CLIENT_CERT=quote(issued.cert_pem)),
    )
    assert written.status_code == 204
    return connector, issued


def writes(connector) -> tuple[int, int]:
    return (
        DataPoint.objects.filter(device__connector=connector).count(),
        Event.objects.filter(connector=connector, kind=Event.WRITE).count(),
    )


def test_a_forged_certificate_header_sent_to_the_readme_gunicorn_writes_nothing(
    app_server, cert_device
):
    connector, issued = cert_device
    before = writes(connector)
    server = app_server()
    # A public certificate is all a local process needs to forge the header.
    forged = {"X-SSL-Client-Cert": quote(issued.cert_pem)}
    status, _, _ = server.request(
        "POST", f"/c/{connector.pk}/api:v1/stack/alias", "myalias=666", forged
    )
    assert status == 401
    # Guessing the secret header does not help either.
    forged["X-Gatehouse-Proxy-Secret"] = "guess"
    status, _, _ = server.request(
        "POST", f"/c/{connector.pk}/api:v1/stack/alias", "myalias=667", forged
    )
    assert status == 401
    assert writes(connector) == before
    assert not DataPoint.objects.filter(value__in=["666", "667"]).exists()


def test_forged_client_addresses_pass_neither_an_allow_list_nor_a_per_address_limit(
    app_server, make_connector, whitelist
):
    connector = make_connector(
        identity_type="base10", identity_length=8, ip_allowlist=["192.0.2.0/24"]
    )
    device = whitelist(connector, "00000001")
    server = app_server(RATE_LIMIT_ACTIVATE_IP="3/3600")
    inside = {"X-Real-IP": "192.0.2.7", "X-Forwarded-For": "192.0.2.7"}
    status, _, _ = server.request(
        "POST", f"/c/{connector.pk}/provision/activate", "id=00000001", inside
    )
    assert status == 403
    device.refresh_from_db()
    assert device.status == Device.WHITELISTED
    assert not Credential.objects.filter(device=device).exists()

    open_connector = make_connector(identity_type="base10", identity_length=8)
    statuses = []
    for number in range(5):
        # A fresh address per attempt would reset a per-address limit, if believed.
        forged = {"X-Real-IP": f"198.51.100.{number}", "X-Forwarded-For": f"198.51.100.{number}"}
        status, _, _ = server.request(
            "POST", f"/c/{open_connector.pk}/provision/activate", f"id=0000009{number}", forged
        )
        statuses.append(status)
    assert statuses == [404, 404, 404, 429, 429]
    sources = set(
        Event.objects.filter(connector=open_connector).values_list("source_ip", flat=True)
    )
    assert {str(source) for source in sources} == {"127.0.0.1"}


def test_a_forged_forwarded_proto_does_not_make_a_direct_request_https(app_server):
    server = app_server()
    # gunicorn itself turns these into the WSGI scheme when they come from loopback.
    forgeries = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Protocol": "ssl",
        "X-Forwarded-Ssl": "on",
    }
    for header, value in forgeries.items():
        status, headers, _ = server.request("GET", "/login/", headers={header: value})
        assert status == 200
        assert "Strict-Transport-Security" not in headers
        cookie = headers["Set-Cookie"]
        assert cookie.startswith("csrftoken=") and "Secure" not in cookie, (header, cookie)


def test_the_shipped_nginx_config_with_the_secret_reaches_the_readme_gunicorn(
    app_server, cert_device, tmp_path
):
    connector, issued = cert_device
    secret = "0" * 8 + "f3a1c9e2b7d4058e6a3f1c2b9d8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"
    server = app_server(PROXY_SHARED_SECRET=secret, ALLOWED_HOSTS=PORTAL_NAME)
    nginx = ProductionNginx(tmp_path / "nginx", server.port, secret)
    proxy = nginx.start()
    try:
        cert_file, key_file = issued.write(tmp_path, "device")
        answer = proxy.request(
            "POST",
            f"/c/{connector.pk}/api:v1/stack/alias",
            host=PORTAL_NAME,
            body="myalias=42",
            cert_file=cert_file,
            key_file=key_file,
        )
        assert answer.status == 204, answer.text
        assert DataPoint.objects.filter(device__connector=connector, value="42").exists()

        # Over TLS through nginx: HSTS, and the cookies only travel over HTTPS.
        page = proxy.request("GET", "/login/", host=PORTAL_NAME)
        assert page.status == 200
        assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert "Secure" in page.headers["Set-Cookie"]
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    finally:
        nginx.stop()

    # The same gunicorn, reached directly without the secret, believes no header.
    status, _, _ = server.request(
        "POST",
        f"/c/{connector.pk}/api:v1/stack/alias",
        "myalias=666",
        {"X-SSL-Client-Cert": quote(issued.cert_pem)},
        host=PORTAL_NAME,
    )
    assert status == 401
    assert not DataPoint.objects.filter(value="666").exists()


@pytest.mark.parametrize("program", ["gunicorn", "uvicorn"])
def test_a_web_process_told_to_trust_proxies_without_a_secret_refuses_to_start(tmp_path, program):
    server = AppServer(tmp_path, program, TRUSTED_PROXIES="127.0.0.1")
    try:
        server.process.wait(timeout=START_SECONDS)
    except subprocess.TimeoutExpired:
        server.stop()
        pytest.fail(f"{program} started\n{server.processes.logs()}")
    server.stop()
    assert server.process.returncode != 0
    assert "TRUSTED_PROXIES is set but PROXY_SHARED_SECRET is not" in server.processes.logs()


def test_check_reports_trusted_proxies_without_a_secret(tmp_path):
    processes = Processes(tmp_path, TRUSTED_PROXIES="10.0.0.5")
    for name in ("PROXY_SHARED_SECRET", "PROXY_SHARED_SECRET_FILE"):
        processes.env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=settings.BASE_DIR,
        env=processes.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "gatehouse.E001" in result.stderr
