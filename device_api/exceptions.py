"""The device API's one table: refusal → status. Answers are one line of text."""

from urllib.parse import urlencode

from connectors import content
from device_api.authentication import CHALLENGE
from device_api.base import exception_handler_for
from device_api.parsers import FORM_TYPE
from devices import services

STATUS_BY_ERROR = {
    services.ConnectorNotFound: 404,
    services.IdentityRejected: 400,
    services.InvalidData: 400,
    services.IpNotAllowed: 403,
    services.NotWhitelisted: 404,
    services.AlreadyProvisioned: 409,
    services.WindowExpired: 410,
    services.UnsupportedAuth: 415,
    services.AuthenticationFailed: 401,
    services.TooManyPoints: 413,
    services.RecordConflict: 409,
    content.ContentNotFound: 404,
    content.InvalidContent: 400,
}

_handle = exception_handler_for(STATUS_BY_ERROR, challenge=CHALLENGE)


def handle(exc, context):
    """The table's answer; a record's conflict names the timestamps, as Murano's did:
    `<alias>=<timestamp>,<timestamp>&<alias>=<timestamp>`."""
    response = _handle(exc, context)
    if isinstance(exc, services.RecordConflict):
        response.content = urlencode({alias: ",".join(ts) for alias, ts in exc.conflicts.items()})
        response["Content-Type"] = FORM_TYPE
    return response
