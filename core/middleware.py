"""Middleware every request passes: proxy headers, TLS cookies and HSTS, NUL refusal."""

import re

from django.core.exceptions import DisallowedHost
from django.http import HttpResponseBadRequest, HttpResponseNotFound, JsonResponse

from core import net

# Where the management API lives; it answers in JSON, refusals included.
API_PREFIX = "/api/"
NUL_MESSAGE = "NUL characters are not allowed in URLs"
# The ARTIK device API, under the site's root, /c/<connector-id>/ or a device host.
_ARTIK_PATH = re.compile(r"(/c/[^/]*)?/v1\.1/")
FOUNDRY_CALLS = ("/certificates/generate", "/certificates/provision", "/certificates/revoke")
# Names a laptop serves over plain HTTP too (make run: http://localhost:8000 beside
# https://localhost:8443). Browsers keep HSTS per name, not per port, so HSTS sent
# from the HTTPS port would lock the browser out of the HTTP one.
_LOOPBACK_NAME = re.compile(r"(.+\.)?localhost\.?", re.IGNORECASE)


class ProxyHeadersMiddleware:
    """Drop the headers only our proxy may set from requests that did not come through it.

    First in MIDDLEWARE, so nothing after it (HTTPS detection, the device API, the
    portal) ever sees a forged client certificate, address or scheme.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not net.from_trusted_proxy(request):
            meta = request.META
            forged_scheme = any(name in meta for name in net.SCHEME_HEADERS_META)
            for name in net.PROXY_HEADERS_META:
                meta.pop(name, None)
            if forged_scheme and "wsgi.url_scheme" in meta:
                # gunicorn already turned such a header from loopback into the WSGI
                # scheme; Gatehouse's app servers speak plain HTTP behind the proxy.
                meta["wsgi.url_scheme"] = "http"
        return self.get_response(request)


class TlsResponseMiddleware:
    """On responses to requests that came over TLS: every cookie Secure, no HSTS on localhost.

    Before SessionMiddleware and CsrfViewMiddleware, so it sees the cookies they
    set; before SecurityMiddleware, which adds HSTS to every TLS response.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
            if _LOOPBACK_NAME.fullmatch(_hostname(request)):
                del response["Strict-Transport-Security"]
        return response


def _hostname(request) -> str:
    try:
        return request.get_host().rsplit(":", 1)[0]
    except DisallowedHost:
        # Answered 400 already; get_host() raises again for the same Host.
        return ""


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
            return self._refuse(request, HttpResponseNotFound)
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            return self._refuse(request, HttpResponseBadRequest)
        return self.get_response(request)

    @staticmethod
    def _refuse(request, response_class):
        # The management API answers every refusal as JSON, as its schema documents;
        # devices and the portal get the plain text they always had. No device URL
        # starts with /api/.
        status = response_class.status_code
        if request.path_info.endswith(FOUNDRY_CALLS) or _ARTIK_PATH.match(request.path_info):
            # Certificate self-provisioning and the ARTIK API, wherever they are served,
            # word refusals their own way.
            return JsonResponse({"error": {"code": status, "message": NUL_MESSAGE}}, status=status)
        if request.path_info.startswith(API_PREFIX):
            return JsonResponse({"detail": NUL_MESSAGE}, status=status)
        return response_class(NUL_MESSAGE + "\n", content_type="text/plain; charset=utf-8")
