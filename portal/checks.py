"""System checks for how Gatehouse trusts its TLS proxy (`manage.py check --deploy`).

The error also stops the web processes at start (portal/wsgi.py, portal/asgi.py):
a process told to trust proxies but given no secret to recognise them by would
otherwise believe nobody, and the operator would find out from refused devices.
"""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

# A secret that nginx and the app share; 32 random bytes as hex is what the docs generate.
MIN_PROXY_SECRET_CHARS = 32

PROXIES_WITHOUT_SECRET = (
    "TRUSTED_PROXIES is set but PROXY_SHARED_SECRET is not. Gatehouse believes its "
    "proxy's headers (client certificate, client address, X-Forwarded-Proto) only "
    "with the secret: set PROXY_SHARED_SECRET (or PROXY_SHARED_SECRET_FILE) to the "
    "value nginx sends in X-Gatehouse-Proxy-Secret (deploy/nginx/gatehouse.conf), "
    "or unset TRUSTED_PROXIES when no proxy is in front."
)


@checks.register(checks.Tags.security)
def check_trusted_proxies_have_a_secret(app_configs, **kwargs):
    if settings.TRUSTED_PROXIES and not settings.PROXY_SHARED_SECRET:
        return [checks.Error(PROXIES_WITHOUT_SECRET, id="gatehouse.E001")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def check_proxy_secret(app_configs, **kwargs):
    secret = settings.PROXY_SHARED_SECRET
    if not secret:
        return [
            checks.Warning(
                "PROXY_SHARED_SECRET is not set, so no proxy is trusted: behind nginx, "
                "client certificates do not authenticate, every client has nginx's "
                "address and HTTPS is not recognised (no HSTS, redirects to http).",
                hint="Generate one (openssl rand -hex 32), give it to nginx as "
                "X-Gatehouse-Proxy-Secret and to Gatehouse as PROXY_SHARED_SECRET_FILE.",
                id="gatehouse.W001",
            )
        ]
    if len(secret) < MIN_PROXY_SECRET_CHARS:
        return [
            checks.Warning(
                f"PROXY_SHARED_SECRET has {len(secret)} characters; use at least "
                f"{MIN_PROXY_SECRET_CHARS} random ones (openssl rand -hex 32).",
                id="gatehouse.W002",
            )
        ]
    return []


def refuse_unsafe_proxy_settings() -> None:
    """Stop a web process whose proxy settings the error above describes."""
    if settings.TRUSTED_PROXIES and not settings.PROXY_SHARED_SECRET:
        raise ImproperlyConfigured(PROXIES_WITHOUT_SECRET)


@checks.register()
def check_content_storage(app_configs, **kwargs):
    """A settings module that adds a storage alias must name one that exists."""
    if settings.CONTENT_STORAGE not in settings.STORAGES:
        return [
            checks.Error(
                f"CONTENT_STORAGE names {settings.CONTENT_STORAGE!r}, which STORAGES "
                "does not define.",
                hint="Add the alias to STORAGES or set CONTENT_STORAGE to one of: "
                + ", ".join(sorted(settings.STORAGES)),
                id="gatehouse.E002",
            )
        ]
    return []
