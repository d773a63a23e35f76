from django.apps import AppConfig


class PortalConfig(AppConfig):
    """Project-wide commands and system checks."""

    name = "portal"

    def ready(self):
        from portal import checks  # noqa: F401 - registers the checks
