"""The local HTTPS front end: nginx with client certificates before the app.

`make run` (through `runlocal`) and the test suite use it; production runs
nginx with deploy/nginx/gatehouse.conf instead. Everything it needs is made on
first use in a directory under var/: a development CA and a server certificate
signed by it (so curl can verify the server with `--cacert`), a proxy secret
shared with the app, and the rendered nginx configuration.
"""

import getpass
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core import crypto

NGINX_DIR = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
TEMPLATE = NGINX_DIR / "local.conf.template"
PROXY_PARAMS = NGINX_DIR / "gatehouse-proxy.conf"
SERVER_CERT_DAYS = 825


def nginx_binary() -> str | None:
    """nginx on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/opt/homebrew/bin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass(frozen=True)
class ServerCertificate:
    """The files of the development server certificate."""

    cert_file: Path
    key_file: Path
    ca_file: Path


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _names_of(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(name) for name in san.get_values_for_type(x509.DNSName)}


def ensure_server_certificate(directory: Path, hostnames: list[str]) -> ServerCertificate:
    """A development CA and a server certificate for `hostnames`, made once and reused.

    Remade when a name is missing (DEVICE_DOMAIN changed) or it is about to expire.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = ServerCertificate(
        directory / "server-cert.pem", directory / "server-key.pem", directory / "server-ca.pem"
    )
    now = datetime.now(UTC)
    if files.cert_file.exists() and files.key_file.exists() and files.ca_file.exists():
        current = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        fresh = current.not_valid_after_utc - now > timedelta(days=30)
        if fresh and set(hostnames) <= _names_of(current):
            return files

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gatehouse"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"Gatehouse development CA ({socket.gethostname()})"
            ),
        ]
    )
    ca_cert = crypto.build_ca_certificate(ca_key, ca_name, now, SERVER_CERT_DAYS)

    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_CERT_DAYS - 1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    _write_private(
        files.key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return files


def ensure_proxy_secret(path: Path) -> str:
    """The secret nginx sends and the app checks, made once (like SECRET_KEY)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Private from the first byte, and only if absent: a concurrent run keeps the first.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
    return path.read_text().strip()


def render_config(
    *,
    run_dir: Path,
    listen: str,
    upstream: str,
    server: ServerCertificate,
    proxy_secret: str,
    proxy_bind: str | None = None,
    websocket_upstream: str | None = None,
) -> str:
    """The nginx configuration for one local front end.

    With `websocket_upstream`, /v1.1/websocket goes to that ASGI server and
    everything else to `upstream`.
    """
    # A master started as root would otherwise hand its workers to "nobody",
    # who cannot write the temporary directories under run_dir.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    replacements = {
        # First: the block it inserts holds placeholders of its own.
        "@WEBSOCKET_LOCATION@": _websocket_location(websocket_upstream, proxy_bind),
        "@USER@": user,
        "@RUN_DIR@": str(run_dir),
        "@LISTEN@": listen,
        "@UPSTREAM@": upstream,
        "@SERVER_CERT@": str(server.cert_file),
        "@SERVER_KEY@": str(server.key_file),
        "@PROXY_PARAMS@": str(PROXY_PARAMS),
        "@PROXY_SECRET@": proxy_secret,
        # Connecting upstream from an address of its own lets the app tell the
        # proxy apart from every other local process (TRUSTED_PROXIES).
        "@PROXY_BIND@": f"proxy_bind {proxy_bind};" if proxy_bind else "",
    }
    text = TEMPLATE.read_text()
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, value)
    return text


def _websocket_location(upstream: str | None, proxy_bind: str | None) -> str:
    if not upstream:
        return ""
    bind = f"proxy_bind {proxy_bind};" if proxy_bind else ""
    return f"""        location /v1.1/websocket {{
            proxy_pass http://{upstream};
            {bind}
            include @PROXY_PARAMS@;
            proxy_set_header X-Gatehouse-Proxy-Secret "@PROXY_SECRET@";
        }}
"""


@dataclass
class LocalProxy:
    """A rendered local front end: how to start it and what clients need to know."""

    argv: list[str]
    config_file: Path
    server: ServerCertificate
    proxy_secret: str
    proxy_secret_file: Path
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"


def prepare(
    run_dir: Path,
    *,
    port: int,
    upstream: str,
    hostnames: list[str],
    listen_host: str = "127.0.0.1",
    proxy_bind: str | None = None,
    certificate_dir: Path | None = None,
    proxy_secret: str | None = None,
    websocket_upstream: str | None = None,
) -> LocalProxy:
    """Write everything nginx needs under `run_dir`; return the command that runs it.

    Without `proxy_secret`, one is made once in run_dir/proxy-secret.
    """
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed")
    run_dir.mkdir(parents=True, exist_ok=True)
    server = ensure_server_certificate(certificate_dir or run_dir, hostnames)
    secret_file = run_dir / "proxy-secret"
    secret = proxy_secret or ensure_proxy_secret(secret_file)
    config_file = run_dir / "nginx.conf"
    listen = f"[{listen_host}]:{port}" if ":" in listen_host else f"{listen_host}:{port}"
    config_file.write_text(
        render_config(
            run_dir=run_dir,
            listen=listen,
            upstream=upstream,
            server=server,
            proxy_secret=secret,
            proxy_bind=proxy_bind,
            websocket_upstream=websocket_upstream,
        )
    )
    config_file.chmod(0o600)
    argv = [binary, "-e", "stderr", "-p", str(run_dir), "-c", str(config_file)]
    return LocalProxy(argv, config_file, server, secret, secret_file, listen_host, port)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until_listening(process: subprocess.Popen, host: str, port: int, timeout=10.0) -> None:
    """Return once `host:port` accepts connections; raise if nginx exits or never listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nginx did not listen on {host}:{port} within {timeout} s")


def local_front_end(
    var_dir: Path,
    *,
    port: int,
    upstream: str,
    device_domain: str,
    proxy_secret: str = "",
    websocket_upstream: str | None = None,
) -> LocalProxy | None:
    """The HTTPS port of `make run`, or None when nginx is not installed."""
    if nginx_binary() is None:
        return None
    return prepare(
        var_dir / "nginx",
        port=port,
        upstream=upstream,
        hostnames=["localhost", f"*.{device_domain}", "127.0.0.1", "::1"],
        proxy_secret=proxy_secret or None,
        websocket_upstream=websocket_upstream,
    )


def banner_lines(proxy: LocalProxy | None, device_domain: str) -> list[str]:
    """What `make run` says about HTTPS and client certificates."""
    if proxy is None:
        return [
            "  HTTPS:           off (nginx is not installed; apt install nginx or brew install",
            "                   nginx for TLS with client certificates on a second port)",
        ]
    return [
        f"  HTTPS:           https://localhost:{proxy.port}/   TLS with client certificates,",
        f"                   devices at https://<connector-id>.{device_domain}:{proxy.port}/;",
        f"                   verify the server with --cacert {proxy.server.ca_file}",
    ]
