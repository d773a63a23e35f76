"""Where a request really came from, believing proxy headers only from our proxies."""

import ipaddress
from urllib.parse import unquote

from cryptography import x509
from django.conf import settings

# nginx sets this on every request it forwards ($ssl_client_escaped_cert: the
# URL-encoded PEM, empty without a certificate), overwriting anything a client sent.
CLIENT_CERT_META = "HTTP_X_SSL_CLIENT_CERT"


def is_trusted_proxy(address: str | None) -> bool:
    return bool(address) and address in settings.TRUSTED_PROXIES


def _valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    if is_trusted_proxy(remote):
        forwarded = request.META.get("HTTP_X_REAL_IP") or request.META.get(
            "HTTP_X_FORWARDED_FOR", ""
        ).split(",")[-1]
        if forwarded and _valid_ip(forwarded):
            return _valid_ip(forwarded)
    return remote


def client_certificate(request) -> x509.Certificate | None:
    """The TLS client certificate the proxy saw, or None.

    The header is believed only from TRUSTED_PROXIES: sent straight to the app
    port by anyone else it is ignored, so it can never authenticate.
    """
    if not is_trusted_proxy(request.META.get("REMOTE_ADDR")):
        return None
    raw = request.META.get(CLIENT_CERT_META, "")
    if not raw:
        return None
    try:
        return x509.load_pem_x509_certificate(unquote(raw).encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
