"""Where a request really came from, believing proxy headers only from our proxy.

A request comes from the proxy when it carries PROXY_SHARED_SECRET in
X-Gatehouse-Proxy-Secret (compared in constant time) and its peer address is in
TRUSTED_PROXIES. nginx sets both (deploy/nginx/). Only then are the headers the
proxy writes believed: the client certificate, X-Real-IP / X-Forwarded-For and
X-Forwarded-Proto. Without a secret nothing is believed, so a process that can
reach the app port (loopback on a laptop, a neighbour on a shared host) cannot
pose as the proxy by sending those headers itself.
"""

import hmac
import ipaddress
from urllib.parse import unquote

from cryptography import x509
from django.conf import settings

# nginx sets this on every request it forwards ($ssl_client_escaped_cert: the
# URL-encoded PEM, empty without a certificate), overwriting anything a client sent.
CLIENT_CERT_META = "HTTP_X_SSL_CLIENT_CERT"
PROXY_SECRET_META = "HTTP_X_GATEHOUSE_PROXY_SECRET"
# Headers only the proxy may set. From anyone else they are dropped (ProxyHeadersMiddleware).
# X-Forwarded-Protocol and X-Forwarded-Ssl are not ours, but gunicorn believes them
# (with X-Forwarded-Proto) from loopback by itself.
SCHEME_HEADERS_META = (
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_PROTOCOL",
    "HTTP_X_FORWARDED_SSL",
)
PROXY_HEADERS_META = (
    CLIENT_CERT_META,
    "HTTP_X_REAL_IP",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_FORWARDED",
    *SCHEME_HEADERS_META,
)
# A PEM certificate is a few KB; anything far larger is not one.
MAX_CERT_HEADER_CHARS = 64 * 1024


def is_trusted_proxy(address: str | None) -> bool:
    return bool(address) and address in settings.TRUSTED_PROXIES


def from_trusted_proxy(request) -> bool:
    """True when the request was forwarded by our proxy: its secret, from its address."""
    secret = settings.PROXY_SHARED_SECRET
    if not secret or not is_trusted_proxy(request.META.get("REMOTE_ADDR")):
        return False
    presented = request.META.get(PROXY_SECRET_META, "")
    return hmac.compare_digest(presented.encode("latin-1", "replace"), secret.encode())


def _valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    if from_trusted_proxy(request):
        forwarded = (
            request.META.get("HTTP_X_REAL_IP")
            or request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1]
        )
        if forwarded and _valid_ip(forwarded):
            return _valid_ip(forwarded)
    return remote


def client_certificate(request) -> x509.Certificate | None:
    """The TLS client certificate the proxy saw, or None.

    The header is believed only from the proxy: sent straight to the app port by
    anyone else it is ignored, so it can never authenticate.
    """
    raw = request.META.get(CLIENT_CERT_META, "")
    if not raw or len(raw) > MAX_CERT_HEADER_CHARS or not from_trusted_proxy(request):
        return None
    try:
        return x509.load_pem_x509_certificate(unquote(raw).encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
