"""Requests to `<connector-id>.<DEVICE_DOMAIN>` are served by the device API."""

import re

from django.conf import settings

from connectors.models import CONNECTOR_ID_PATTERN

_CONNECTOR_ID = re.compile(CONNECTOR_ID_PATTERN)


class DeviceHostMiddleware:
    """Route `<connector-id>.<DEVICE_DOMAIN>` to the device API.

    request.get_host() validates the Host against ALLOWED_HOSTS first, so an
    unknown host is a 400 before anything else runs.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.suffix = "." + settings.DEVICE_DOMAIN

    def __call__(self, request):
        host = request.get_host().lower().rsplit(":", 1)[0]
        if host.endswith(self.suffix):
            label = host[: -len(self.suffix)]
            request.urlconf = "device_api.urls"
            # An unknown label still lands in the device API, where it is a 404.
            request.connector_id = label if _CONNECTOR_ID.fullmatch(label) else ""
        return self.get_response(request)
