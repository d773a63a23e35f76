"""Run a whole Gatehouse on one machine until Ctrl-C: the processes of the Procfile.

`make run` migrates, collects static files and creates the first administrator,
then calls this. It picks the Procfile's processes the settings call for (web,
asgi, worker, beat; ingest with DEVICE_WRITE_QUEUE; https when nginx is
installed; the MQTT broker with its sync and ingest when Mosquitto and its
dynamic-security plugin are), fills in their variables, and runs them under
core.processes.Supervisor, which restarts one that dies and stops them all on
Ctrl-C. Once the web server answers it prints the URLs and how to sign in.
"""

import socket
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from certificates import devproxy
from core import processes
from mqtt import local as local_mqtt
from mqtt.management.commands import mqtt_ingest
from portal import setup_local


class Command(BaseCommand):
    help = "Run the Procfile's processes (web, asgi, worker, beat, …); Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address the web server binds")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=3, help="gunicorn processes")
        parser.add_argument("--threads", type=int, default=8, help="threads per web process")
        parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery processes")
        parser.add_argument(
            "--asgi-port", type=int, default=8001, help="WebSocket (ASGI) server port; 0: none"
        )
        parser.add_argument(
            "--https-port", type=int, default=8443, help="nginx with client certificates; 0: off"
        )
        parser.add_argument(
            "--mqtt-port",
            type=int,
            default=8883,
            help="Mosquitto's TLS port for devices with a token or password; 0: no broker",
        )
        parser.add_argument(
            "--mqtt-cert-port",
            type=int,
            default=8884,
            help="Mosquitto's TLS port for devices with client certificates; 0: off",
        )

    def commands(self, options) -> tuple[dict[str, str], dict[str, str]]:
        """The Procfile lines to run and the variables they read."""
        wanted = {"web", "worker", "beat"}
        env = {
            "HOST": options["host"],
            "WEB_PORT": str(options["port"]),
            "WEB_WORKERS": str(options["web_workers"]),
            "WEB_THREADS": str(options["threads"]),
            "WORKER_CONCURRENCY": str(options["worker_concurrency"]),
            "ASGI_PORT": str(options["asgi_port"]),
        }
        if settings.DEVICE_WRITE_QUEUE:
            wanted.add("ingest")
        if options["asgi_port"]:
            wanted.add("asgi")
        self.proxy = None
        if options["https_port"]:
            self.proxy = devproxy.local_front_end(
                settings.VAR_DIR,
                port=options["https_port"],
                upstream=f"{options['host']}:{options['port']}",
                device_domain=settings.DEVICE_DOMAIN,
                # PROXY_SHARED_SECRET, else the one portal.setup_local made in var/.
                proxy_secret=setup_local.read_key(
                    setup_local.read_env(), settings.VAR_DIR, "PROXY_SHARED_SECRET"
                ),
                websocket_upstream=(
                    f"{options['host']}:{options['asgi_port']}" if options["asgi_port"] else None
                ),
            )
        if self.proxy is not None:
            wanted.add("https")
            env["NGINX_BINARY"] = self.proxy.argv[0]
            env["NGINX_DIR"] = str(self.proxy.config_file.parent)
            # The web processes believe the certificate header only with nginx's secret.
            env["PROXY_SHARED_SECRET"] = self.proxy.proxy_secret
        self.mqtt = None
        if options["mqtt_port"] and local_mqtt.available():
            self.mqtt = local_mqtt.prepare(
                settings.VAR_DIR,
                host=options["host"],
                tls_port=options["mqtt_port"],
                cert_port=options["mqtt_cert_port"],
            )
            wanted |= {"mqtt", "mqtt_sync", "mqtt_ingest", "mqtt_presence"}
            env.update(self.mqtt.environment())
        lines = processes.procfile()
        return {name: line for name, line in lines.items() if name in wanted}, env

    def handle(self, *args, **options):
        # make run prepared them; a runner started by hand on a fresh var/ needs them too.
        setup_local.create_folders()
        commands, env = self.commands(options)
        supervisor = processes.Supervisor(commands, env, output=sys.stdout)

        # Running means serving devices: the web process answers and, with a broker, the
        # ingest has subscribed (what a device publishes before that has no reader).
        ingest_subscribed = supervisor.watch("mqtt_ingest", mqtt_ingest.SUBSCRIBED)
        if "mqtt_ingest" not in commands:
            ingest_subscribed.set()

        def ready() -> bool:
            if not ingest_subscribed.is_set():
                return False
            try:
                with socket.create_connection((options["host"], options["port"]), timeout=1):
                    return True
            except OSError:
                return False

        failed = supervisor.run(ready=ready, banner=lambda: self.banner(options))
        if failed:
            raise CommandError(
                f"{failed.name} exited {failed.quick_exits} times within "
                f"{processes.QUICK_EXIT_SECONDS:g} s of starting "
                f"(last status {failed.process.returncode}); stopped the others"
            )

    def banner(self, options) -> list[str]:
        port = options["port"]
        base = f"http://localhost:{port}"
        asgi = []
        if options["asgi_port"]:
            asgi = [
                f"  WebSockets:      ws://localhost:{options['asgi_port']}/v1.1/websocket"
                "   (secure devices, behind the HTTPS front end)"
            ]
        return [
            "",
            "Gatehouse is running.",
            f"  Portal:          {base}/   (sign in as admin with the password printed on the",
            "                   first run; reset it with: python manage.py changepassword admin)",
            f"  Admin console:   {base}/admin/",
            f"  Management API:  {base}/api/v1/   (docs at {base}/api/docs/)",
            f"  Device API:      http://<connector-id>.{settings.DEVICE_DOMAIN}:{port}/"
            f"   or {base}/c/<connector-id>/",
            *asgi,
            *devproxy.banner_lines(self.proxy, settings.DEVICE_DOMAIN),
            *(self.mqtt.banner_lines() if self.mqtt else []),
            "Press Ctrl-C to stop.",
            "",
        ]
