"""A connector's device host reached the two ways devices reach it in production:
straight at gunicorn started as the README says, and through nginx running
deploy/nginx/gatehouse.conf (TLS, optional client certificates) in front of it.

No DNS names a device host here. `resolve_device_hosts` makes the names under
DEVICE_DOMAIN resolve to loopback in this process, as `curl --resolve` does, so
a client (http.client, requests, murano-client) connects by the name itself:
it sends it as Host and, over TLS, as SNI and the name the server certificate
must hold (nginx's certificate holds the wildcard, as in production).
"""

import http.client
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.production import PORTAL_NAME, ProductionNginx

FRONT_SECRET = "5e1f" * 16
FORM = "application/x-www-form-urlencoded"


def resolve_device_hosts(monkeypatch) -> None:
    """Names under DEVICE_DOMAIN resolve to 127.0.0.1 in this process."""
    real = socket.getaddrinfo
    suffix = f".{settings.DEVICE_DOMAIN}"

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(suffix):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@dataclass
class Front:
    """Where a device sends its requests: gunicorn itself, or nginx before it."""

    name: str  # "direct" or "nginx"
    port: int
    ca_file: Path | None = None  # nginx's server certificate's CA

    @property
    def scheme(self) -> str:
        return "https" if self.ca_file else "http"

    def url(self, connector) -> str:
        """The device host's base URL, as murano-client's `murano_host` takes it."""
        return f"{self.scheme}://{connector.device_host}:{self.port}/"

    def send(self, connector, method, path, body=None, headers=None, chunked=False, cert=None):
        """One request by the device host's name; (status, headers, body). A body
        that is a list of bytes goes out chunked (no Content-Length)."""
        host = connector.device_host
        if self.ca_file:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            if cert is not None:
                context.load_cert_chain(*(str(path) for path in cert))
            connection = http.client.HTTPSConnection(host, self.port, timeout=90, context=context)
        else:
            connection = http.client.HTTPConnection(host, self.port, timeout=90)
        all_headers = dict(headers or {})
        if body is not None:
            all_headers.setdefault("Content-Type", FORM)
        try:
            # An iterable body without Content-Length goes out chunked.
            connection.request(
                method, path, body=iter(body) if chunked else body, headers=all_headers
            )
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()


def start_front(name: str, app_server, tmp_path) -> tuple[Front, ProductionNginx | None]:
    """gunicorn (with the proxy's secret when nginx stands before it) and the front."""
    if name == "direct":
        return Front("direct", app_server().port), None
    server = app_server(PROXY_SHARED_SECRET=FRONT_SECRET)
    names = (PORTAL_NAME, "localhost", f"*.{settings.DEVICE_DOMAIN}")
    nginx = ProductionNginx(tmp_path / "nginx", server.port, FRONT_SECRET, names=names)
    proxy = nginx.start()
    return Front("nginx", proxy.port, proxy.ca_file), nginx


@pytest.fixture(params=["direct", "nginx"])
def device_front(request, app_server, tmp_path, monkeypatch):
    """Each test that takes it runs once straight at gunicorn and once through nginx."""
    resolve_device_hosts(monkeypatch)
    front, nginx = start_front(request.param, app_server, tmp_path)
    yield front
    if nginx is not None:
        nginx.stop()


@pytest.fixture
def nginx_front(app_server, tmp_path, monkeypatch):
    """nginx (deploy/nginx/gatehouse.conf) before gunicorn, by the device host's name."""
    resolve_device_hosts(monkeypatch)
    front, nginx = start_front("nginx", app_server, tmp_path)
    yield front
    nginx.stop()
