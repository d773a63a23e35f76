"""The broker `make run` starts: a Mosquitto with its dynamic-security plugin in var/mqtt/.

`manage.py runlocal` calls `prepare()` when Debian's mosquitto and its plugin are
installed, then runs the broker, `mqtt_sync`, `mqtt_ingest` and `mqtt_presence` with the other
processes. What stays in var/mqtt/ from one run to the next:

- `admin-password`: the password of the broker's admin client, made on the first
  run (only its salted hash is in the plugin's file); the processes read it
  through MQTT_ADMIN_PASSWORD_FILE;
- `dynamic-security.json`: the plugin's clients and roles, which mqtt_sync keeps
  in step with the devices;
- `tls/`: the server certificate of the TLS listeners and `server-ca.pem`, the CA
  devices trust for it; made again when it expires within a week;
- `trust/`: the connectors' CAs and CRLs for the certificate listener, rewritten
  by mqtt_sync (MQTT_TRUST_DIR), which makes the broker reread them (SIGHUP).

The certificate listener needs at least one CA to start with: on a fresh setup
it opens at the first run after a connector has one.
"""

import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from django.utils import timezone

from mqtt import broker, tls

RENEW_BEFORE = timedelta(days=7)


@dataclass
class LocalBroker:
    broker: broker.Broker
    server_ca: Path

    def environment(self) -> dict[str, str]:
        """What the Procfile's mqtt, mqtt_sync, mqtt_ingest and web processes read."""
        return {
            "MOSQUITTO_BINARY": broker.MOSQUITTO,
            "MQTT_DIR": str(self.broker.folder),
            "MQTT_BROKER_URL": self.broker.url,
            "MQTT_ADMIN_USERNAME": self.broker.admin_username,
            "MQTT_ADMIN_PASSWORD_FILE": str(self.broker.folder / "admin-password"),
            "MQTT_TRUST_DIR": str(self.broker.folder / "trust"),
            "MQTT_BROKER_PID_FILE": str(self.broker.pid_file),
            "MQTT_BROKER_LOG": str(self.broker.log_path),
        }

    def banner_lines(self) -> list[str]:
        lines = [
            f"  MQTT:            mqtts://localhost:{self.broker.tls_port}"
            f"   (username and token or password; server CA {self.server_ca})"
        ]
        if self.broker.cert_port:
            lines.append(
                f"                   mqtts://localhost:{self.broker.cert_port}"
                "   (client certificates of the connectors' CAs)"
            )
        else:
            lines.append(
                "                   client certificates: from the next start after a "
                "connector has a CA"
            )
        return lines


def available() -> bool:
    return broker.installed() and broker.plugin_path() is not None


def prepare(var_dir: Path, *, host: str, tls_port: int, cert_port: int) -> LocalBroker:
    """Write the broker's folder (configuration, keys, plugin file) for this run."""
    folder = Path(var_dir) / "mqtt"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    files, server_ca = _server_files(folder / "tls", host)
    trust = folder / "trust"
    cafile, crlfile = trust / "device-cas.pem", trust / "device-crls.pem"
    tls.write_trust(cafile, crlfile)
    if cert_port and cafile.read_bytes().strip():
        files.cafile = cafile
        # Mosquitto refuses an empty CRL file; a CA without revocations has an empty CRL.
        files.crlfile = crlfile if crlfile.read_bytes().strip() else None
    running = broker.Broker(
        folder,
        tls=files,
        host=host,
        admin_password=_admin_password(folder / "admin-password"),
        tls_port=tls_port,
        cert_port=cert_port if files.cafile else None,
    )
    running.write()
    return LocalBroker(running, server_ca)


def _admin_password(path: Path) -> str:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _server_files(folder: Path, host: str) -> tuple[broker.TlsFiles, Path]:
    files = broker.TlsFiles(certfile=folder / "server.pem", keyfile=folder / "server.key")
    server_ca = folder / "server-ca.pem"
    try:
        certificate = x509.load_pem_x509_certificate(files.certfile.read_bytes())
        fresh = certificate.not_valid_after_utc - RENEW_BEFORE > timezone.now()
    except (OSError, ValueError):
        fresh = False
    if fresh and files.keyfile.exists() and server_ca.exists():
        return files, server_ca
    names = ["localhost", "127.0.0.1", socket.gethostname()]
    if host not in names and not _unspecified(host):
        names.append(host)
    return tls.server_files(folder, hostnames=tuple(names))


def _unspecified(host: str) -> bool:
    """An address that means every interface, which no certificate names."""
    try:
        return ip_address(host).is_unspecified
    except ValueError:
        return False
