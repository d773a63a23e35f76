"""The production recipe, run for real: the README's commands and the shipped nginx config.

`readme_command` reads a command from README.md's "Production" section, so a test
starts gunicorn or uvicorn exactly as operators are told to (only the port is
moved to a free one). `ProductionNginx` renders deploy/nginx/gatehouse.conf with
the paths and ports of one test (certificate, snippet, secret file, upstream)
and nothing else changed, and runs it in front of such a process.
"""

import getpass
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from certificates import devproxy
from tests.support.tls import Proxy

README = Path(settings.BASE_DIR) / "README.md"
NGINX_DIR = Path(settings.BASE_DIR) / "deploy" / "nginx"
PORTAL_NAME = "gatehouse.example.com"


def readme_command(program: str, port: int) -> list[str]:
    """The README's production command line for `program`, on `port`, from this venv."""
    text = README.read_text()
    production = text[text.index("## Production") :]
    found = re.search(rf"`({re.escape(program)} portal\.[^`]+)`", production)
    assert found, f"README.md's Production section has no `{program} portal.…` command"
    argv = shlex.split(found.group(1))
    argv[0] = str(Path(sys.executable).parent / program)
    for index, word in enumerate(argv):
        if word == "--bind":
            argv[index + 1] = f"127.0.0.1:{port}"
        elif word == "--port":
            argv[index + 1] = str(port)
    assert str(port) in " ".join(argv), argv
    return argv


def proxy_secret_line(secret: str) -> str:
    """/etc/nginx/gatehouse-proxy-secret.conf, as gatehouse.conf's comment makes it."""
    return f'proxy_set_header X-Gatehouse-Proxy-Secret "{secret}";\n'


@dataclass
class ProductionNginx:
    """deploy/nginx/gatehouse.conf in front of `upstream`, on a free loopback port."""

    run_dir: Path
    upstream_port: int
    secret: str
    # The names its server certificate holds (a wildcard under DEVICE_DOMAIN, as in
    # production, for clients that verify the device host's name).
    names: tuple[str, ...] = (PORTAL_NAME, "localhost")

    def __post_init__(self):
        self.port = devproxy.free_port()
        self.server = devproxy.ensure_server_certificate(self.run_dir / "tls", list(self.names))
        self.process = None
        self.log = None

    def render(self) -> Path:
        secret_file = self.run_dir / "gatehouse-proxy-secret.conf"
        secret_file.write_text(proxy_secret_line(self.secret))
        secret_file.chmod(0o600)
        replacements = [
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{self.upstream_port};"),
            ("server 127.0.0.1:8001;", f"server 127.0.0.1:{self.upstream_port};"),
            ("listen 80;", f"listen 127.0.0.1:{devproxy.free_port()};"),
            ("listen [::]:80;", ""),
            ("listen 443 ssl;", f"listen 127.0.0.1:{self.port} ssl;"),
            ("listen [::]:443 ssl;", ""),
            ("/etc/ssl/gatehouse/fullchain.pem", str(self.server.cert_file)),
            ("/etc/ssl/gatehouse/privkey.pem", str(self.server.key_file)),
            ("/etc/nginx/snippets/gatehouse-proxy.conf", str(NGINX_DIR / "gatehouse-proxy.conf")),
            ("/etc/nginx/gatehouse-proxy-secret.conf", str(secret_file)),
        ]
        site = (NGINX_DIR / "gatehouse.conf").read_text()
        for old, new in replacements:
            assert old in site, f"deploy/nginx/gatehouse.conf no longer has {old!r}"
            site = site.replace(old, new)
        (self.run_dir / "gatehouse.conf").write_text(site)
        run = self.run_dir
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        main = f"""{user}
worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {run}/gatehouse.conf;
}}
"""
        config = run / "nginx.conf"
        config.write_text(main)
        return config

    def start(self) -> Proxy:
        binary = devproxy.nginx_binary()
        if binary is None:
            pytest.fail("nginx is not installed (.ci/run installs it with apt)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.render()
        self.log = (self.run_dir / "nginx.log").open("w")
        self.process = subprocess.Popen(
            [binary, "-e", "stderr", "-p", str(self.run_dir), "-c", str(config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            devproxy.wait_until_listening(self.process, "127.0.0.1", self.port, timeout=30)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            pytest.fail(f"{exc}: {(self.run_dir / 'nginx.log').read_text()}")
        return Proxy(
            url=f"https://127.0.0.1:{self.port}",
            ca_file=self.server.ca_file,
            port=self.port,
            app_url=f"http://127.0.0.1:{self.upstream_port}",
            secret=self.secret,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
