"""Who a device request comes from: token (`Authorization: Token` or Murano's
`X-Exosite-CIK`), Basic token, Basic identity:password or a TLS client
certificate, as DRF authentication classes.

Each class answers only for the credential it knows and leaves the others to the
next; `NoCredentials`, last, refuses a request none of them took (and logs why).
`request.user` is then a `Caller`. A write whose Token or Basic credential this
process verified before is not looked up here at all: the write service queues
it in one Redis round trip and asks `Caller.device` (the database) only when the
queue cannot take it (devices.services.write_queue).
"""

from rest_framework.authentication import BaseAuthentication

from certificates.device_auth import authenticate_certificate
from core.net import client_certificate, client_ip
from devices import services
from devices.services import write_queue
from devices.services.authentication import Caller

CHALLENGE = 'Token, Basic realm="device"'


def connector_id_of(request) -> str:
    """The connector a device request names: its host or its /c/<id>/ prefix."""
    http = request._request
    named = request.parser_context["kwargs"].get("connector_id")
    return named if named is not None else getattr(http, "connector_id", "")


def _authorization(request) -> tuple[str, str]:
    """(scheme, value) of the Authorization header, scheme lower-cased."""
    header = request._request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.strip().partition(" ")
    return scheme.lower(), value.strip()


def _queues_writes(request) -> bool:
    view = request.parser_context.get("view")
    return getattr(view, "queues_writes", False) and request._request.method == "POST"


def _token_caller(request, token: str) -> Caller:
    connector_id = connector_id_of(request)
    key = services.token_key(connector_id, token)
    ip = client_ip(request._request)

    def load():
        device = services.authenticate_token(connector_id, token, ip)
        device.presented_credential = key
        return device

    if _queues_writes(request) and write_queue.remembers(key):
        return Caller(connector_id, key, load=load)
    return Caller(connector_id, key, device=load())


class TokenAuthentication(BaseAuthentication):
    """`Authorization: Token <token>`."""

    def authenticate(self, request):
        scheme, value = _authorization(request)
        if scheme != "token" or not value:
            return None
        caller = _token_caller(request, value)
        return caller, caller.presented

    def authenticate_header(self, request):
        return CHALLENGE


class CikAuthentication(TokenAuthentication):
    """`X-Exosite-CIK: <token>`, the header Murano's device libraries send the token in;
    an Authorization header, when one came too, is the one that counts."""

    def authenticate(self, request):
        meta = request._request.META
        value = meta.get("HTTP_X_EXOSITE_CIK", "").strip()
        if not value or meta.get("HTTP_AUTHORIZATION"):
            return None
        caller = _token_caller(request, value)
        return caller, caller.presented


class BasicTokenAuthentication(TokenAuthentication):
    """`Authorization: Basic base64(":" token)`: the token as password, no user."""

    def authenticate(self, request):
        scheme, value = _authorization(request)
        if scheme != "basic" or not value:
            return None
        decoded = _decoded_basic(request, value)
        if not decoded.startswith(":") or len(decoded) == 1:
            return None
        caller = _token_caller(request, decoded[1:])
        return caller, caller.presented


class BasicPasswordAuthentication(TokenAuthentication):
    """`Authorization: Basic base64(identity ":" password)`; an identity holding
    colons (a MAC address) is split where the connector's identity format ends."""

    def authenticate(self, request):
        scheme, value = _authorization(request)
        if scheme != "basic" or not value:
            return None
        decoded = _decoded_basic(request, value)
        if decoded.startswith(":") or decoded.endswith(":"):
            return None
        connector_id = connector_id_of(request)
        ip = client_ip(request._request)
        if _queues_writes(request):
            key = services.password_cache_key(connector_id, decoded)
            if write_queue.remembers(key):

                def load():
                    device, _ = services.authenticate_password(connector_id, decoded, ip)
                    device.presented_credential = key
                    return device

                return Caller(connector_id, key, load=load), key
        device, key = services.authenticate_password(connector_id, decoded, ip)
        device.presented_credential = key
        return Caller(connector_id, key, device=device), key


def _decoded_basic(request, value: str) -> str:
    http = request._request
    decoded = getattr(http, "_device_basic", None)
    if decoded is None:
        try:
            decoded = services.decode_basic(value)
        except services.AuthenticationFailed as exc:
            services.refuse(connector_id_of(request), "", exc.message, client_ip(http))
        http._device_basic = decoded
    return decoded


class CertificateAuthentication(TokenAuthentication):
    """The TLS client certificate the proxy saw, when no Authorization or
    X-Exosite-CIK header came; in certificate mode it provisions the device on
    first use."""

    def authenticate(self, request):
        http = request._request
        if http.META.get("HTTP_AUTHORIZATION") or http.META.get("HTTP_X_EXOSITE_CIK"):
            return None
        certificate = client_certificate(http)
        if certificate is None:
            return None
        connector_id = connector_id_of(request)
        if not services.CONNECTOR_ID.fullmatch(connector_id or ""):
            raise services.ConnectorNotFound()
        device = authenticate_certificate(connector_id, certificate, client_ip(http))
        return Caller(connector_id, None, device=device), None


class NoCredentials(TokenAuthentication):
    """Last: a request no class above took is refused, and the refusal logged."""

    def authenticate(self, request):
        connector_id = connector_id_of(request)
        if not services.CONNECTOR_ID.fullmatch(connector_id or ""):
            raise services.ConnectorNotFound()
        scheme, _ = _authorization(request)
        presented = scheme or request._request.META.get("HTTP_X_EXOSITE_CIK")
        reason = "unsupported or malformed credentials" if presented else "no credentials presented"
        services.refuse(connector_id, "", reason, client_ip(request._request))


DEVICE_AUTHENTICATION = (
    TokenAuthentication,
    CikAuthentication,
    BasicTokenAuthentication,
    BasicPasswordAuthentication,
    CertificateAuthentication,
    NoCredentials,
)
