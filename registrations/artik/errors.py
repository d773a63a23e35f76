"""The ARTIK dialect's one table of refusal -> status, and its error body.

Refusals answer `{"error": {"code": <status>, "message": "..."}}`, as ARTIK's
documents show and its SDK reads; the WebSocket's error frames use the same table.
"""

from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from core.errors import status_for
from registrations import services

STATUS_BY_ERROR = {
    services.InvalidRequest: 400,
    services.InvalidToken: 401,
    services.CertificateRequired: 403,
    services.CertificateNotTrusted: 403,
    services.CertificateMismatch: 403,
    services.WrongNonce: 403,
    services.WrongDevice: 403,
    services.NotAHub: 403,
    services.MissingScope: 403,
    services.WrongUser: 403,
    services.UnknownDevice: 404,
    services.InvalidPairingInput: 400,
    services.WrongPairingCode: 404,
    services.PairingUnavailable: 409,
    services.PairingExpired: 410,
    services.PairingLocked: 410,
    services.UnknownDeviceType: 404,
    services.RegistrationNotFound: 404,
    services.AlreadyRegistered: 409,
    services.NotConfirmed: 409,
    services.EndNodeLimit: 409,
    services.RegistrationClosed: 410,
    services.RateLimited: 429,
}
AUTHENTICATE = 'Bearer realm="device"'
# An app's token refused (RFC 6750).
AUTHENTICATE_APP = 'Bearer realm="apps", error="invalid_token"'


def refusal(exc: Exception) -> tuple[int, str] | None:
    """The status and message for `exc`, or None when it is no refusal (a 500 or an
    outage, which the outage middleware answers)."""
    if isinstance(exc, services.RateLimited):
        return 429, f"too many requests; retry after {exc.retry_after} s"
    if isinstance(exc, services.RegistrationError):
        return status_for(exc, STATUS_BY_ERROR), exc.message
    if isinstance(exc, exceptions.APIException):
        return exc.status_code, _text(exc.detail)
    if isinstance(exc, Http404):
        return 404, "not found"
    return None


def _text(detail) -> str:
    """DRF's error detail (a string, or a list or dict of them) as one line."""
    if isinstance(detail, dict):
        return "; ".join(f"{field}: {_text(value)}" for field, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_text(item) for item in detail)
    return str(detail)


def error_response(status: int, message: str) -> Response:
    return Response({"error": {"code": status, "message": message}}, status=status)


def exception_handler(exc, context):
    """DRF's exception handler for the ARTIK views."""
    answer = refusal(exc)
    if answer is None:
        return None
    response = error_response(*answer)
    if isinstance(exc, services.RateLimited):
        response["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, services.MessagesRateLimited):
            quota_headers(response, exc.quota)
    elif response.status_code == 401:
        response["WWW-Authenticate"] = AUTHENTICATE
    return response


def app_exception_handler(exc, context):
    """The same answers for the calls of apps, whose 401s name the apps' realm."""
    response = exception_handler(exc, context)
    if response is not None and response.status_code == 401:
        response["WWW-Authenticate"] = AUTHENTICATE_APP
    return response


def quota_headers(response, quota: services.Quota) -> None:
    """X-Rate-Limit-*: per minute / per day, as ARTIK answers a message."""
    response["X-Rate-Limit-Limit"] = "/".join(map(str, quota.limits))
    response["X-Rate-Limit-Remaining"] = "/".join(map(str, quota.remaining))
    response["X-Rate-Limit-Reset"] = "/".join(map(str, quota.resets))
