"""A Mosquitto 2 with its dynamic-security plugin, configured the way Gatehouse drives it.

`make run`, the test suite and bench/mqtt.py start one with `Broker`: a config
folder of its own, free loopback ports, an admin client whose password is made
for that run. deploy/mosquitto/ holds the production configuration, which uses
the same listeners and plugin options.

Listeners:
- plain MQTT (loopback only in production: Gatehouse's own sync and ingest);
- TLS for devices that log in with username and token or password;
- TLS with client certificates for certificate devices: the certificate's CN is
  the broker username (`use_identity_as_username`), the CA list and CRL are the
  connectors' (`mqtt.tls.write_trust`).
"""

import base64
import getpass
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PLUGIN_PATHS = [
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
]
# The plugin's own defaults (Mosquitto 2.0): a 12-byte salt, PBKDF2-HMAC-SHA512.
SALT_BYTES = 12
ITERATIONS = 101
ADMIN_ROLE = "admin"
CONTROL_TOPIC = "$CONTROL/dynamic-security/#"
MAX_QUEUED_MESSAGES = 1_000_000


def installed() -> bool:
    return Path(MOSQUITTO).exists() and plugin_path() is not None


def plugin_path() -> str | None:
    return next((path for path in PLUGIN_PATHS if Path(path).exists()), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def hash_password(password: str, *, salt: bytes | None = None) -> dict:
    """The password as the plugin stores it in its file: salted PBKDF2, never the clear text."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS, 64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": ITERATIONS,
    }


def initial_dynsec(admin_username: str, admin_password: str) -> dict:
    """A plugin file with one admin client and default deny for everything else."""
    allow = [
        ("publishClientSend", CONTROL_TOPIC),
        ("publishClientReceive", CONTROL_TOPIC),
        ("subscribePattern", CONTROL_TOPIC),
        ("publishClientReceive", "$SYS/#"),
        ("subscribePattern", "$SYS/#"),
        ("publishClientReceive", "#"),
        ("subscribePattern", "#"),
        ("unsubscribePattern", "#"),
    ]
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": False,
        },
        "clients": [
            {
                "username": admin_username,
                "textname": "Gatehouse control plane",
                "roles": [{"rolename": ADMIN_ROLE}],
                **hash_password(admin_password),
            }
        ],
        "groups": [],
        "roles": [
            {
                "rolename": ADMIN_ROLE,
                "acls": [{"acltype": kind, "topic": topic, "allow": True} for kind, topic in allow],
            }
        ],
    }


@dataclass
class TlsFiles:
    """What the TLS listeners read: the server's certificate and key, the device CAs and CRLs."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    crlfile: Path | None = None


def render_config(
    *,
    folder: Path,
    port: int,
    tls_port: int | None = None,
    cert_port: int | None = None,
    tls: TlsFiles | None = None,
    bind: str = "127.0.0.1",
    persistence: bool = False,
) -> str:
    lines = [
        "# Written by Gatehouse (mqtt/broker.py).",
        "per_listener_settings false",
        "allow_anonymous false",
        # Started as root (CI, containers) Mosquitto would switch to its own user,
        # who cannot read this folder; it keeps the user that started it instead.
        f"user {getpass.getuser()}",
        f"plugin {plugin_path()}",
        f"plugin_opt_config_file {folder / 'dynamic-security.json'}",
        # A file, written line by line (stdout to a file would be buffered).
        f"log_dest file {folder / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        f"persistence {'true' if persistence else 'false'}",
        f"pid_file {folder / 'mosquitto.pid'}",
        # The ingest's session holds what arrives while it restarts or falls behind:
        # past Mosquitto's default of 1,000 queued messages it would drop them.
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
    ]
    if persistence:
        lines.append(f"persistence_location {folder}/")
    lines += ["", f"listener {port} {bind}"]
    if tls_port and tls:
        lines += [
            "",
            f"listener {tls_port} {bind}",
            f"certfile {tls.certfile}",
            f"keyfile {tls.keyfile}",
            "tls_version tlsv1.2",
        ]
    if cert_port and tls and tls.cafile:
        lines += [
            "",
            f"listener {cert_port} {bind}",
            f"certfile {tls.certfile}",
            f"keyfile {tls.keyfile}",
            f"cafile {tls.cafile}",
            "require_certificate true",
            "use_identity_as_username true",
            "tls_version tlsv1.2",
        ]
        if tls.crlfile:
            lines.append(f"crlfile {tls.crlfile}")
    return "\n".join(lines) + "\n"


@dataclass
class Broker:
    """One Mosquitto process with its own folder, ports and admin password."""

    folder: Path
    tls: TlsFiles | None = None
    host: str = "127.0.0.1"
    admin_username: str = "gatehouse"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    tls_port: int | None = None
    cert_port: int | None = None
    process: subprocess.Popen | None = None

    def __post_init__(self):
        self.folder = Path(self.folder)
        if self.tls is not None:
            self.tls_port = self.tls_port or free_port()
            if self.tls.cafile is not None:
                self.cert_port = self.cert_port or free_port()

    @property
    def config_path(self) -> Path:
        return self.folder / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.folder / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        dynsec = self.folder / "dynamic-security.json"
        if not dynsec.exists():
            dynsec.write_text(json.dumps(initial_dynsec(self.admin_username, self.admin_password)))
            dynsec.chmod(0o600)
        self.config_path.write_text(
            render_config(
                folder=self.folder,
                port=self.port,
                tls_port=self.tls_port,
                cert_port=self.cert_port,
                tls=self.tls,
                bind=self.host,
            )
        )

    def start(self, timeout: float = 30.0) -> "Broker":
        self.write()
        # What it says before its log file is open (a bad configuration) goes there too.
        with open(self.folder / "mosquitto.out", "a") as early:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config_path)],
                stdout=early,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_until_listening(timeout)
        return self

    def wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ports = [port for port in (self.port, self.tls_port, self.cert_port) if port]
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited:\n{self.log()}")
            if all(_listening(self.host, port) for port in ports):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto is not listening on {ports}:\n{self.log()}")
            time.sleep(0.05)

    def reload(self) -> None:
        """SIGHUP: Mosquitto rereads its configuration, CA list and CRL; sessions stay."""
        self.process.send_signal(signal.SIGHUP)

    @property
    def pid_file(self) -> Path:
        return self.folder / "mosquitto.pid"

    def reloads(self) -> int:
        """How many times it has reread its configuration (SIGHUP)."""
        return self.log().count("Reloading config")

    def log(self) -> str:
        text = ""
        for path in (self.folder / "mosquitto.out", self.log_path):
            try:
                text += path.read_text(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def settings(self) -> dict:
        """The Gatehouse settings that point the sync and the ingest at this broker."""
        return {
            "MQTT_BROKER_URL": self.url,
            "MQTT_ADMIN_USERNAME": self.admin_username,
            "MQTT_ADMIN_PASSWORD": self.admin_password,
        }


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0
