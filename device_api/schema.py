"""How the device API's views appear in its OpenAPI document (docs_urls.py)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

TEXT = "text/plain"
FORM = "application/x-www-form-urlencoded"


def _text(description: str) -> OpenApiResponse:
    return OpenApiResponse(OpenApiTypes.STR, description=description)


REFUSALS = {
    400: _text("The request is malformed; the text says why."),
    404: _text("No such connector."),
    413: _text("The body is larger than DEVICE_MAX_BODY_BYTES."),
    415: _text("The body is not application/x-www-form-urlencoded."),
    429: _text("Too many requests; Retry-After says when to try again."),
    503: _text("A backend is away; retry after Retry-After seconds."),
}
UNAUTHORIZED = {401: _text("Missing, unknown or revoked credentials (WWW-Authenticate).")}

activate = extend_schema(
    summary="Activate a whitelisted device",
    description="Token mode answers the device's token (40 characters); password mode "
    "stores the password sent and answers 204. Certificate mode provisions on the "
    "first request made with the certificate instead.",
    request={FORM: {"type": "object", "properties": {
        "id": {"type": "string", "description": "the device's identity"},
        "password": {"type": "string", "description": "password mode: 20 to 1024 bytes"},
    }, "required": ["id"]}},
    responses={
        (200, TEXT): _text("The device's token."),
        204: OpenApiResponse(description="Provisioned with the password sent."),
        403: _text("The source address is outside the connector's allow-list."),
        409: _text("Already provisioned (or revoked)."),
        410: _text("The activation window has passed."),
        **REFUSALS,
    },
    auth=[],
)  # fmt: skip

alias_read = extend_schema(
    summary="Read the latest values, or wait for one to change",
    description="The query names aliases (?a&b). With Request-Timeout (milliseconds) "
    "the request waits for any of the aliases named to change after If-Modified-Since, "
    "and answers those that did.",
    parameters=[
        OpenApiParameter("Request-Timeout", OpenApiTypes.INT, OpenApiParameter.HEADER),
        OpenApiParameter("If-Modified-Since", OpenApiTypes.STR, OpenApiParameter.HEADER),
    ],
    responses={
        (200, FORM): _text("alias=value pairs (a long poll's carries Last-Modified)."),
        204: OpenApiResponse(description="None of the aliases has a value."),
        304: OpenApiResponse(description="The long poll timed out without a change."),
        **UNAUTHORIZED,
        **REFUSALS,
    },
)

alias_write = extend_schema(
    summary="Write values",
    description="alias=value pairs; undefined aliases are logged, not stored.",
    request={FORM: {"type": "object", "additionalProperties": {"type": "string"}}},
    responses={
        204: OpenApiResponse(description="Accepted."),
        **UNAUTHORIZED,
        **REFUSALS,
    },
)

record = extend_schema(
    summary="Record values at the device's timestamps",
    description="`alias=<a>&<ts>=<v>&<ts>=<v>&alias=<b>&<ts>=<v>`, timestamps in unix "
    "seconds, whole or with decimals (stored to the microsecond). A point already stored "
    "with the same value is skipped; "
    "with another value the record is refused (409) and nothing is stored.",
    request={FORM: {"type": "object", "additionalProperties": {"type": "string"}}},
    responses={
        204: OpenApiResponse(description="Stored."),
        (409, FORM): _text("Timestamps stored with another value: `<alias>=<ts>,<ts>`."),
        **UNAUTHORIZED,
        **REFUSALS,
    },
)

download = extend_schema(
    summary="The content area: list, download, or describe a file",
    description="Without `id`: the connector's file names, one a line (CRLF), as "
    "text/csv (204 when there are none). With `id`: the file's bytes and its content "
    "type; `Range: bytes=…` (one range) answers 206 with Content-Range, a range past the "
    "end 416; `If-None-Match` with the ETag answers 304; `If-Range` serves the range "
    "only while the ETag (or Last-Modified) still matches. With `id` and `info=true`: "
    "`<content-type>,<size>,<updated unix seconds>,<description>` as text/csv.",
    parameters=[
        OpenApiParameter("id", OpenApiTypes.STR, description="A file's name."),
        OpenApiParameter("info", OpenApiTypes.STR, enum=["true", "false"]),
        OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER),
        OpenApiParameter("If-Range", OpenApiTypes.STR, OpenApiParameter.HEADER),
        OpenApiParameter("If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER),
        OpenApiParameter("If-Modified-Since", OpenApiTypes.STR, OpenApiParameter.HEADER),
    ],
    responses={
        (200, "text/csv"): _text("File names one a line, or a file's info line."),
        (200, "application/octet-stream"): OpenApiResponse(
            OpenApiTypes.BINARY, description="The file (in its own content type), with "
            "ETag (its SHA-256), Last-Modified and Accept-Ranges: bytes."
        ),
        (206, "application/octet-stream"): OpenApiResponse(
            OpenApiTypes.BINARY, description="The range asked for, with Content-Range."
        ),
        204: OpenApiResponse(description="The content area is empty."),
        304: OpenApiResponse(description="If-None-Match names the file's ETag."),
        (416, TEXT): _text("The range starts past the end (Content-Range: bytes */<size>)."),
        **UNAUTHORIZED,
        400: REFUSALS[400],
        404: _text("No such connector, or no file of that name."),
        429: REFUSALS[429],
        503: REFUSALS[503],
    },
)  # fmt: skip

timestamp = extend_schema(
    summary="The server's time", responses={(200, TEXT): _text("Unix seconds.")}, auth=[]
)


def _security(name: str, description: str):
    return {"type": "apiKey", "in": "header", "name": "Authorization", "description": description}


class _Token(OpenApiAuthenticationExtension):
    target_class = "device_api.authentication.TokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema):
        return _security(self.name, "`Token <token>`: the token activation answered.")


class _Cik(_Token):
    target_class = "device_api.authentication.CikAuthentication"
    name = "deviceCik"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Exosite-CIK",
            "description": "`<token>`: the token activation answered (Murano libraries).",
        }


class _BasicToken(_Token):
    target_class = "device_api.authentication.BasicTokenAuthentication"
    name = "deviceBasicToken"

    def get_security_definition(self, auto_schema):
        return _security(self.name, "`Basic base64(:<token>)`: the token, with no user.")


class _Password(_Token):
    target_class = "device_api.authentication.BasicPasswordAuthentication"
    name = "devicePassword"

    def get_security_definition(self, auto_schema):
        return _security(
            self.name,
            "`Basic base64(<identity>:<password>)` (password mode); a MAC address "
            "identity keeps its colons.",
        )


class _Certificate(_Token):
    target_class = "device_api.authentication.CertificateAuthentication"
    name = "deviceCertificate"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "mutual-tls",
            "description": "A TLS client certificate, no Authorization header (certificate "
            "mode; the first request of a whitelisted device provisions it).",
        }


class _NoCredentials(_Token):
    target_class = "device_api.authentication.NoCredentials"
    name = "none"

    def get_security_requirement(self, auto_schema):
        return None

    def get_security_definition(self, auto_schema):
        return None


def without_device_api(endpoints):
    """Preprocessing hook of the management API's document: the device API has its own."""
    from device_api.base import DeviceAPIView

    return [
        endpoint
        for endpoint in endpoints
        if not issubclass(getattr(endpoint[3], "cls", object), DeviceAPIView)
    ]
