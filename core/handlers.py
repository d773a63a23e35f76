"""handler400 and handler404: the management API (under /api/) answers JSON, pages get a page.

handler500 is `core.outage.server_error`, which answers an outage with a 503.
"""

from django.http import JsonResponse
from django.views import defaults


def not_found(request, exception=None):
    """handler404: the management API answers JSON, as its schema says; pages get a page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    """handler400 (e.g. more form fields than DATA_UPLOAD_MAX_NUMBER_FIELDS): JSON for the API."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)
