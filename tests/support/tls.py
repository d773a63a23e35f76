"""Real TLS for tests: CAs, certificates and CSRs made with `cryptography`, and nginx.

`nginx_proxy` starts nginx (deploy/nginx/local.conf.template, the same config
`make run` uses) on a free loopback port in front of the Django live server and
yields a `Proxy`: its https URL, the CA file of its server certificate, and
helpers that make real HTTPS requests with or without a client certificate.

nginx connects upstream from 127.0.0.2 and sends a proxy secret; the fixture
sets TRUSTED_PROXIES and PROXY_SHARED_SECRET to match, so a request sent
straight to the app port from 127.0.0.1 is not believed to come from the proxy.
"""

import http.client
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings

from certificates import devproxy

PROXY_SOURCE_ADDRESS = "127.0.0.2"


# --- certificates -------------------------------------------------------------


def new_key(kind: str = "ec"):
    """An EC P-256 key, or RSA-2048 with kind="rsa"."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name: str, organization: str = "") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


@dataclass
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: object = field(repr=False)

    @property
    def cert_pem(self) -> str:
        return pem(self.cert)

    @property
    def key_pem(self) -> str:
        return key_pem(self.key)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write `<stem>-cert.pem` and `<stem>-key.pem`; return their paths."""
        cert_file, key_file = directory / f"{stem}-cert.pem", directory / f"{stem}-key.pem"
        cert_file.write_text(self.cert_pem)
        key_file.write_text(self.key_pem)
        return cert_file, key_file


def make_ca(
    common_name: str = "Test device CA", *, kind: str = "ec", issuer: Issued | None = None
) -> Issued:
    """A CA certificate, self-signed or (with `issuer`) an intermediate."""
    key = new_key(kind)
    now = datetime.now(UTC)
    subject = name(common_name, "Test vendor")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def make_certificate(
    common_name: str,
    *,
    issuer: Issued | None = None,
    key=None,
    kind: str = "ec",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    serial: int | None = None,
) -> Issued:
    """A client certificate for `common_name`: signed by `issuer`, else self-signed."""
    key = key or new_key(kind)
    now = datetime.now(UTC)
    subject = name(common_name, "Test vendor")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(minutes=5))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(issuer.key if issuer else key, hashes.SHA256())
    )
    return Issued(cert, key)


def make_csr(common_name: str, key=None, kind: str = "ec"):
    """A certificate signing request; returns (csr, key)."""
    key = key or new_key(kind)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name(common_name))
        .sign(key, hashes.SHA256())
    )
    return csr, key


def pem(obj) -> str:
    """PEM text of a certificate or CSR."""
    return obj.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


# --- HTTPS through nginx ----------------------------------------------------------


@dataclass
class Response:
    """What an HTTPS request got back."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


class _Connection(http.client.HTTPSConnection):
    """Connects to the proxy's address while naming (and verifying) another host."""

    def __init__(self, address, port, server_name, context, timeout):
        super().__init__(address, port, timeout=timeout)
        self.server_name = server_name
        self.tls_context = context

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.server_name)


@dataclass
class Proxy:
    """nginx in front of the live server, as a device or browser reaches it."""

    url: str  # https://127.0.0.1:<port>
    ca_file: Path  # verifies nginx's server certificate
    port: int
    app_url: str  # the live server itself, bypassing nginx
    secret: str = field(repr=False)
    host: str = "127.0.0.1"

    def device_host(self, connector) -> str:
        return connector.device_host

    def device_url(self, connector, path: str) -> str:
        return f"https://{connector.device_host}:{self.port}{path}"

    def curl_resolve(self, connector) -> list[str]:
        """curl arguments that reach the connector's device host at this proxy, no DNS."""
        return ["--resolve", f"{connector.device_host}:{self.port}:{self.host}"]

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str | None = None,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        timeout: float = 30.0,
    ) -> Response:
        """One real HTTPS request to nginx; `host` is the name sent as SNI and Host."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if cert_file is not None:
            context.load_cert_chain(str(cert_file), str(key_file))
        server_name = host or "localhost"
        connection = _Connection(self.host, self.port, server_name, context, timeout)
        if isinstance(body, str):
            body = body.encode()
        all_headers = {"Host": f"{server_name}:{self.port}", **(headers or {})}
        if body is not None and "Content-Type" not in all_headers:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=all_headers)
            answer = connection.getresponse()
            return Response(answer.status, dict(answer.getheaders()), answer.read())
        finally:
            connection.close()

    def device_request(self, connector, method: str, path: str, **kwargs) -> Response:
        return self.request(method, path, host=connector.device_host, **kwargs)


def curl(*args: str, timeout: float = 30.0, cwd=None) -> subprocess.CompletedProcess:
    """Run the real curl (in `cwd`); returns the finished process (text output)."""
    binary = shutil.which("curl")
    if binary is None:
        pytest.fail("curl is not installed (.ci/run installs it)")
    return subprocess.run(
        [binary, "--silent", "--show-error", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


@pytest.fixture(scope="session")
def nginx_server(live_server, tmp_path_factory):
    """One nginx for the whole session, in front of the session's live server."""
    if devproxy.nginx_binary() is None:
        pytest.fail("nginx is not installed (.ci/run installs it with apt)")
    run_dir = tmp_path_factory.mktemp("nginx")
    app = live_server.url.removeprefix("http://")
    app_port = app.rsplit(":", 1)[1]
    port = devproxy.free_port()
    local = devproxy.prepare(
        run_dir,
        port=port,
        upstream=f"127.0.0.1:{app_port}",
        hostnames=["localhost", f"*.{settings.DEVICE_DOMAIN}", "127.0.0.1"],
        proxy_bind=PROXY_SOURCE_ADDRESS,
    )
    log = (run_dir / "nginx.log").open("w")
    process = subprocess.Popen(local.argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        devproxy.wait_until_listening(process, "127.0.0.1", port)
    except (RuntimeError, TimeoutError) as exc:
        process.kill()
        process.wait()
        log.close()
        pytest.fail(f"{exc}: {(run_dir / 'nginx.log').read_text()}")
    yield Proxy(
        url=f"https://127.0.0.1:{port}",
        ca_file=local.server.ca_file,
        port=port,
        app_url=live_server.url,
        secret=local.proxy_secret,
    )
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture
def nginx_proxy(nginx_server, settings):
    """nginx before the live server, and the app set to believe only that nginx."""
    settings.TRUSTED_PROXIES = [PROXY_SOURCE_ADDRESS]
    settings.PROXY_SHARED_SECRET = nginx_server.secret
    return nginx_server
