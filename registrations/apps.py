from django.apps import AppConfig


class RegistrationsConfig(AppConfig):
    name = "registrations"
    verbose_name = "Secure registration"

    def ready(self):
        from devices import signals
        from registrations.services import hubs

        signals.credentials_changed.connect(
            hubs.hub_credentials_changed, dispatch_uid="registrations-hubs"
        )
