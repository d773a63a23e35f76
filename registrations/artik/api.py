"""The DRF pieces every ARTIK view shares: a JSON parser and a compact JSON renderer,
the bearer-token authentication of a secure device and of a companion app, the CORS
and Allow headers ARTIK answers with, and the dialect's exception handler.

Devices and apps call some of the same paths (`/devices/<did>`, `/messages`, …):
`by_token` sends each call to the device's view or the app's by the kind of its
token, in one place."""

import json

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.views.decorators.csrf import csrf_exempt
from rest_framework import authentication, parsers, permissions, renderers
from rest_framework.response import Response

from accounts import oauth
from core import inputs
from core.net import client_certificate, client_ip
from device_api.base import DeviceAPIView
from registrations import services
from registrations.artik import errors
from registrations.services import apps

# What ARTIK answers on every /v1.1/ call, preflights included.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": (
        "Origin, X-Requested-With, Content-Type, Accept, Referer, User-Agent, Authorization"
    ),
    "Access-Control-Allow-Methods": "POST, GET, PUT, DELETE, OPTIONS",
}


class JsonRenderer(renderers.JSONRenderer):
    """Compact JSON (`{"data":{...}}`), declared as UTF-8."""

    charset = "utf-8"


class JsonObjectParser(parsers.BaseParser):
    """The body as a JSON object, whatever Content-Type the device named.

    At most DEVICE_MAX_BODY_BYTES, and nothing PostgreSQL cannot store (NUL, lone
    surrogates) or nested absurdly deep: each a 400 saying what is wrong.
    """

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DEVICE_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise services.InvalidRequest(f"the body must be JSON of at most {limit} bytes")
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise services.InvalidRequest(
                "the body is not valid JSON (or nests too deeply)"
            ) from exc
        if not isinstance(body, dict):
            raise services.InvalidRequest("the body must be a JSON object")
        problem = inputs.json_problem(body)
        if problem:
            raise services.InvalidRequest(f"the body cannot be accepted: {problem}")
        return body


class SecureDeviceAuthentication(authentication.BaseAuthentication):
    """`Authorization: bearer <accessToken>` with the device's own client certificate.

    `request.auth` is the device. A missing or wrong token, or the right token with
    another certificate, is refused by the service (401 or 403); a preflight
    (OPTIONS) carries no credentials and needs none.
    """

    def authenticate(self, request):
        if request.method == "OPTIONS":
            return None
        device = services.authenticate_secure_device(
            request.META.get("HTTP_AUTHORIZATION", ""),
            client_certificate(request),
            client_ip(request),
        )
        return AnonymousUser(), device

    def authenticate_header(self, request):
        return errors.AUTHENTICATE


class IsSecureDevice(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.method == "OPTIONS" or request.auth is not None


class ArtikView(DeviceAPIView):
    """Base of the /v1.1/ views: the certificate (and for most, the token) decide;
    a route's /c/<connector-id>/ prefix or device host only routes.

    The device API's lean view (no negotiation: JSON whatever `Accept` says), plus
    the preflights and HEAD that ARTIK's clients and browsers send."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    authentication_classes = ()
    parser_classes = (JsonObjectParser,)
    renderer_classes = (JsonRenderer,)
    dialect_exception_handler = errors.exception_handler
    # Not part of the management API's schema; docs/artik.md documents the dialect.
    schema = None

    @property
    def default_response_headers(self):
        return {**CORS_HEADERS, "Allow": "*"}

    def options(self, request, *args, **kwargs):
        """A CORS preflight: the headers above, no body."""
        return Response(status=200)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code == 405:
            response["Allow"] = ", ".join(self.allowed_methods)
        return response

    @property
    def ip(self):
        return client_ip(self.request)

    @property
    def certificate(self):
        return client_certificate(self.request)


class DeviceView(ArtikView):
    """A call a registered secure device makes with its access token."""

    authentication_classes = (SecureDeviceAuthentication,)
    permission_classes = (IsSecureDevice,)


class AppAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <access token>` an app got from Gatehouse's OAuth 2.0
    server: `request.user` is the user who allowed the app, `request.auth` the grant
    (`accounts.oauth.AppAccess`). No certificate: an app is no device."""

    def authenticate(self, request):
        if request.method == "OPTIONS":
            return None
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        access = apps.authenticate_app(authorization, client_ip(request))
        return access.user, access

    def authenticate_header(self, request):
        return errors.AUTHENTICATE_APP


class IsApp(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.method == "OPTIONS" or request.auth is not None


class AppView(ArtikView):
    """A call an app makes for the user who allowed it (docs/apps-and-hubs.md)."""

    authentication_classes = (AppAuthentication,)
    permission_classes = (IsApp,)
    dialect_exception_handler = errors.app_exception_handler


def is_app_call(request) -> bool:
    """Whether the call carries an app's access token rather than a device's."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and oauth.is_app_token(token.strip())


def by_token(device_view, app_view):
    """One path that devices and apps both call: an app's access token goes to
    `app_view`, anything else (a device's token, none) to `device_view`."""
    devices, apps_ = device_view.as_view(), app_view.as_view()

    @csrf_exempt
    def view(request, *args, **kwargs):
        return (apps_ if is_app_call(request) else devices)(request, *args, **kwargs)

    return view
