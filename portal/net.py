"""Where a request really came from, believing proxy headers only from our proxy.

A request comes from the proxy when its peer address is in TRUSTED_PROXIES and,
if PROXY_SHARED_SECRET is set, it carries that secret in X-Gatehouse-Proxy-Secret
(nginx sets it; deploy/nginx/). Only then are X-Real-IP / X-Forwarded-For and the
client-certificate header believed. The address alone is enough where nothing
else can reach the app port; the secret covers hosts where other processes can
(a shared host, or loopback on a laptop).
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
# A PEM certificate is a few KB; anything far larger is not one.
MAX_CERT_HEADER_CHARS = 64 * 1024


def is_trusted_proxy(address: str | None) -> bool:
    return bool(address) and address in settings.TRUSTED_PROXIES


def from_trusted_proxy(request) -> bool:
    """True when the request was forwarded by our proxy (address, then secret)."""
    if not is_trusted_proxy(request.META.get("REMOTE_ADDR")):
        return False
    secret = settings.PROXY_SHARED_SECRET
    if not secret:
        return True
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
