"""The secure device API under /v1.1/ (§3.3, seed 000): registration and messages.

Answers the way seed 000 shows: JSON wrapped as {"data": {...}}, refusals as
{"error": {"code": N, "message": "..."}}, mapped from the services' exceptions
by one table. Every call carries the client certificate through the TLS proxy.
"""

import json

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from portal import inputs
from portal.errors import status_for
from portal.net import client_certificate, client_ip
from registrations import secure_devices, services
from registrations.models import Message, Registration

STATUS_BY_ERROR = {
    services.InvalidRequest: 400,
    services.InvalidToken: 401,
    services.CertificateRequired: 403,
    services.CertificateNotTrusted: 403,
    services.CertificateMismatch: 403,
    services.WrongNonce: 403,
    services.WrongDevice: 403,
    services.UnknownDeviceType: 404,
    services.RegistrationNotFound: 404,
    services.AlreadyRegistered: 409,
    services.NotConfirmed: 409,
    services.RegistrationClosed: 410,
}


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": status, "message": message}}, status=status)


def _data(payload: dict, status: int = 200) -> JsonResponse:
    return JsonResponse({"data": payload}, status=status)


def _refusal(exc: Exception) -> JsonResponse:
    if isinstance(exc, services.RateLimited):
        response = _error(429, "too many requests")
        response["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, secure_devices.MessagesRateLimited):
            _quota_headers(response, exc.quota)
        return response
    status = status_for(exc, STATUS_BY_ERROR)
    response = _error(status, exc.message)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="device"'
    return response


def _quota_headers(response, quota: secure_devices.Quota) -> None:
    response["X-Rate-Limit-Limit"] = "/".join(map(str, quota.limits))
    response["X-Rate-Limit-Remaining"] = "/".join(map(str, quota.remaining))
    response["X-Rate-Limit-Reset"] = "/".join(map(str, quota.resets))


def _json_body(request) -> dict:
    """The body as a JSON object, or InvalidRequest saying what is wrong with it."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > settings.DEVICE_MAX_BODY_BYTES:
        raise services.InvalidRequest(
            f"the body must be JSON of at most {settings.DEVICE_MAX_BODY_BYTES} bytes"
        )
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise services.InvalidRequest("the body is not valid JSON (or nests too deeply)") from exc
    if not isinstance(body, dict):
        raise services.InvalidRequest("the body must be a JSON object")
    problem = inputs.json_problem(body)
    if problem:
        raise services.InvalidRequest(f"the body cannot be accepted: {problem}")
    return body


def _secure_endpoint(*methods):
    """CSRF-exempt (devices hold no cookies), method-checked, refusals mapped by the table."""

    def wrap(view):
        @csrf_exempt
        def handle(request, *args, connector_id=None, **kwargs):
            # Under /c/<connector-id>/ (or the connector's device host) the prefix only
            # routes: the certificate, the registration and the access token decide.
            if request.method not in methods:
                response = _error(405, f"use {' or '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except (services.RegistrationError, services.RateLimited) as exc:
                return _refusal(exc)

        return handle

    return wrap


@_secure_endpoint("POST")
def registrations(request):
    body = _json_body(request)
    registration, pin, nonce = services.initiate_registration(
        body.get("deviceTypeId"),
        body.get("vendorDeviceId"),
        client_certificate(request),
        client_ip(request),
    )
    return _data(
        {
            "rid": registration.rid,
            "pin": pin,
            "nonce": nonce,
            "expiresOn": int(registration.expires_at.timestamp() * 1000),
        }
    )


@_secure_endpoint("GET")
def registration_status(request, rid):
    registration = services.registration_status(
        rid, client_certificate(request), client_ip(request)
    )
    payload = {"status": registration.status}
    secure = getattr(registration.device, "secure", None)
    if registration.status == Registration.REGISTERED and secure is not None:
        payload["did"] = secure.did
    return _data(payload)


@_secure_endpoint("PUT")
def complete_registration(request, rid):
    body = _json_body(request)
    registration, secure, token = services.complete_registration(
        rid, body.get("nonce"), client_certificate(request), client_ip(request)
    )
    uid = services.public_user_id(registration.user) if registration.user else None
    return _data({"accessToken": token, "uid": uid, "did": secure.did})


@_secure_endpoint("POST")
def message(request):
    ip = client_ip(request)
    device = secure_devices.authenticate_secure_device(
        request.META.get("HTTP_AUTHORIZATION", ""), client_certificate(request), ip
    )
    body = _json_body(request)
    stored, quota = secure_devices.post_message(
        device, body.get("sdid"), body.get("data"), Message.REST, ip
    )
    response = _data({"mid": stored.mid})
    _quota_headers(response, quota)
    return response
