import re

from django.conf import settings
from django.http import HttpResponseBadRequest, HttpResponseNotFound

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
            request.urlconf = "devices.device_urls"
            # An unknown label still lands in the device API, where it is a 404.
            request.connector_id = label if _CONNECTOR_ID.fullmatch(label) else ""
        return self.get_response(request)


class RejectNulMiddleware:
    """Refuse a URL holding a NUL character (raw or %00) before anything runs.

    No Gatehouse URL or query parameter may hold one, and PostgreSQL refuses them
    in text, so a NUL that reached a lookup (an admin list filter, a connector id
    in a path) would be a 500. In the path it names nothing (404); in the query
    string it is a bad parameter (400). Parsers of request bodies check their own
    fields.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path_info:
            return HttpResponseNotFound(
                "NUL characters are not allowed in URLs\n", content_type="text/plain"
            )
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            return HttpResponseBadRequest(
                "NUL characters are not allowed in URLs\n", content_type="text/plain"
            )
        return self.get_response(request)
