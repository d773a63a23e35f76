from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"

    def ready(self):
        from core import health
        from devices.health import ingest

        health.register("ingest", ingest)

        from django.db.models.signals import pre_delete

        from devices.services.credentials import connector_deleting

        # Inside the delete's transaction, for the portal, the API, the admin and code alike.
        pre_delete.connect(
            connector_deleting, sender="connectors.Connector", dispatch_uid="connector_deleting"
        )
