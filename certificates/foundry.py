"""Certificate self-provisioning for owner apps and factory tools, in Foundry's dialect.

A thin adapter over `certificates.services`: Foundry's field names and formats in
and out (docs/foundry.md), its own table of refusal → status, and its error shape
`{"error": {"code", "message"}}`. Served on the connector's device host at
/foundry/certificates/…, under /c/<connector-id>/foundry/certificates/… and under
/api/v1/connectors/<connector-id>/certificates/…; authenticated by an API token.
"""

import base64
import json

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiTokenAuthentication
from certificates import services
from certificates.models import RSA_2048
from connectors.api.views import ConnectorScopedMixin
from core import crypto
from core.errors import status_for
from core.outage import MESSAGE, RETRY_AFTER_SECONDS, is_backend_outage
from core.parsers import JSONParser

# One table for the Foundry dialect.
STATUS_BY_ERROR = {
    services.InvalidInput: 400,
    services.NotFound: 404,
    services.Conflict: 409,
    services.TooManyRequests: 429,
    services.KeyUnavailable: 503,
}
# Documented as JSON: a form body (which Foundry clients may still send) cannot carry
# the schema's types, so a client reading the schema should send JSON.
FOUNDRY_BODY = {"application/json": OpenApiTypes.OBJECT}
TOPICS = OpenApiParameter(
    "topics",
    str,
    description='URL-encoded JSON list of MQTT topic filters, e.g. ["1/+/1","a/#"]; '
    "activates the certificate",
)
TOPICS_EXPECTED = 'topics is a JSON list of MQTT topic filters, e.g. ["1/+/1","a/#"]'


def certificate_arn(certificate_id: str) -> str:
    """The certificate's name as Foundry gives it: arn:aws:iot:<region>:<account>:cert/<id>."""
    return f"arn:aws:iot:{settings.FOUNDRY_REGION}:{settings.FOUNDRY_ACCOUNT}:cert/{certificate_id}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("ascii")).decode("ascii")


class FoundryRenderer(JSONRenderer):
    """JSON laid out as Foundry's answers are: two-space indents, keys in the order given."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")


class FoundryView(ConnectorScopedMixin, APIView):
    """Connector from the path or the device host; errors as {"error": {"code", "message"}}."""

    # Foundry clients send JSON or forms.
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    renderer_classes = [FoundryRenderer]

    def get_connector(self):
        if "connector_id" not in self.kwargs:
            self.kwargs["connector_id"] = getattr(self.request, "connector_id", "")
        return super().get_connector()

    def handle_exception(self, exc):
        if isinstance(exc, services.CertificateError):
            code = status_for(exc, STATUS_BY_ERROR)
            response = Response({"error": {"code": code, "message": exc.message}}, status=code)
            if isinstance(exc, services.TooManyRequests):
                response["Retry-After"] = str(exc.retry_after)
            return response
        if is_backend_outage(exc):
            # Redis or the database away: a 503 in Foundry's shape, to be retried.
            response = Response({"error": {"code": 503, "message": MESSAGE}}, status=503)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            response["Cache-Control"] = "no-store"
            return response
        response = super().handle_exception(exc)
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        message = str(detail) if detail is not None else _flatten(response.data)
        response.data = {"error": {"code": response.status_code, "message": message}}
        return response

    def field(self, name):
        """A field of the JSON (or form) body, else of the query string."""
        data = self.request.data
        if not hasattr(data, "get"):
            # A JSON list or scalar: the fields the schema names live in an object.
            raise exceptions.ParseError("the body is a JSON object or a form")
        if name in data:
            return data.get(name)
        return self.request.query_params.get(name)

    def topics(self) -> list | None:
        """`topics` as a list: JSON sends one, a query string or a form a JSON text."""
        topics = self.field("topics")
        if isinstance(topics, str):
            try:
                topics = json.loads(topics)
            except ValueError:
                raise services.InvalidInput(TOPICS_EXPECTED) from None
        if topics is not None and not isinstance(topics, list):
            raise services.InvalidInput(TOPICS_EXPECTED)
        return topics

    def certificate_id(self) -> str:
        try:
            return services.check_fingerprint(self.field("certId"))
        except services.InvalidInput as exc:
            raise services.InvalidInput(f"certId: {exc.message}") from None

    def device_id(self) -> str:
        device_id = self.field("deviceId")
        if not isinstance(device_id, str) or not device_id:
            raise services.InvalidInput("deviceId is required")
        return device_id


def _flatten(errors) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in errors.items())
    if isinstance(errors, list):
        return " ".join(_flatten(value) for value in errors)
    return str(errors)


class GenerateView(FoundryView):
    """A new certificate and private key; inactive unless `topics` is given."""

    @extend_schema(
        parameters=[TOPICS],
        responses={200: dict},
        description="Kept for firmware written against GET: API token only, never a session.",
    )
    def get(self, request, connector_id=None):
        if not isinstance(request.successful_authenticator, ApiTokenAuthentication):
            raise exceptions.MethodNotAllowed(
                "GET",
                detail="GET generates only with an API token; "
                "from a browser session use POST with the CSRF token",
            )
        return self.generate()

    @extend_schema(request=FOUNDRY_BODY, responses={200: dict})
    def post(self, request, connector_id=None):
        return self.generate()

    def generate(self) -> Response:
        connector = self.get_connector()
        issued = services.generate_certificate(
            connector,
            topics=self.topics(),
            # Foundry's keys are RSA; EC P-256 on request (key_type=ec-p256).
            key_type=self.field("key_type") or RSA_2048,
            **self.audit(),
        )
        certificate = issued.certificate
        key = crypto.private_key_pem(issued.private_key, traditional=True)
        return Response(
            {
                "arn": certificate_arn(certificate.fingerprint),
                "id": certificate.fingerprint,
                "cert": _b64(certificate.certificate_pem),
                "private": _b64(key),
            }
        )


class ProvisionView(FoundryView):
    """Attach the topic list, activate the certificate and bind it to the device."""

    @extend_schema(request=FOUNDRY_BODY, responses={200: dict})
    def post(self, request, connector_id=None):
        connector = self.get_connector()
        certificate_id = self.certificate_id()
        arn = self.field("arn")
        if arn not in (None, "") and arn != certificate_arn(certificate_id):
            raise services.InvalidInput(
                f"arn does not name that certificate; its arn is {certificate_arn(certificate_id)}"
            )
        device_id = self.device_id()
        topics = self.topics()
        certificate = services.provision_certificate(
            connector,
            fingerprint=certificate_id,
            identity=device_id,
            topics=topics,
            **self.audit(),
        )
        return Response(
            {
                "arn": certificate_arn(certificate.fingerprint),
                "id": certificate.fingerprint,
                "deviceId": certificate.device.identity,
                "topics": certificate.topics,
                "status": certificate.state,
            }
        )


class RevokeView(FoundryView):
    """Revoke and unbind the device's certificate; its next request with it fails."""

    @extend_schema(request=FOUNDRY_BODY, responses={200: dict})
    def delete(self, request, connector_id=None):
        connector = self.get_connector()
        certificate_id, device_id = self.certificate_id(), self.device_id()
        services.revoke_device_certificate(
            connector, fingerprint=certificate_id, identity=device_id, **self.audit()
        )
        return Response({"id": certificate_id, "deviceId": device_id, "status": "revoked"})
