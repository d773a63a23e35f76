from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"

    def ready(self):
        from core import health
        from devices.health import ingest

        health.register("ingest", ingest)
