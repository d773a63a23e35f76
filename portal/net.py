"""Where a request really came from, believing forwarded headers only from our proxies."""

from django.conf import settings


def is_trusted_proxy(address: str) -> bool:
    return address in settings.TRUSTED_PROXIES


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    if remote and is_trusted_proxy(remote):
        forwarded = (
            request.META.get("HTTP_X_REAL_IP")
            or request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        )
        if forwarded:
            return forwarded
    return remote
