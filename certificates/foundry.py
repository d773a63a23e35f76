"""Certificate self-provisioning for owner apps and factory tools.

A thin adapter: the seed's field names in and out, the certificate services
underneath. Served on the connector's device host at /foundry/certificates/…,
under /c/<connector-id>/foundry/certificates/… and under
/api/v1/connectors/<connector-id>/certificates/…; authenticated by an API token.
"""

import base64

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiTokenAuthentication
from certificates import services
from certificates.api.views import CertificateViewMixin, status_of
from certificates.models import EC_P256
from connectors.api.parsers import JSONParser

# Documented as JSON: a form body (which Foundry clients may still send) cannot carry
# the schema's types, so a client reading the schema should send JSON.
FOUNDRY_BODY = {"application/json": OpenApiTypes.OBJECT}
TOPICS = OpenApiParameter(
    "topics", str, description='URL-encoded JSON list, e.g. ["1/#/1"]; activates the certificate'
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("ascii")).decode("ascii")


class FoundryView(CertificateViewMixin, APIView):
    """Connector from the path or the device host; errors as {"error": {"code", "message"}}."""

    # Foundry clients send JSON or forms.
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_connector(self):
        if "connector_id" not in self.kwargs:
            self.kwargs["connector_id"] = getattr(self.request, "connector_id", "")
        return super().get_connector()

    def handle_exception(self, exc):
        if isinstance(exc, services.CertificateError):
            return Response(
                {"error": {"code": status_of(exc), "message": exc.message}},
                status=status_of(exc),
            )
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
        issued = services.generate_certificate(
            self.get_connector(),
            topics=self.field("topics"),
            key_type=self.field("key_type") or EC_P256,
            **self.audit(),
        )
        certificate = issued.certificate
        return Response(
            {
                "id": certificate.fingerprint,
                "arn": services.certificate_arn(certificate),
                "cert": _b64(certificate.certificate_pem),
                "private": _b64(issued.private_key_pem),
            }
        )


class ProvisionView(FoundryView):
    """Attach the topic list, activate the certificate and bind it to the device."""

    @extend_schema(request=FOUNDRY_BODY, responses={200: dict})
    def post(self, request, connector_id=None):
        certificate = services.provision_certificate(
            self.get_connector(),
            cert_id=self.field("certId"),
            device_id=self.field("deviceId"),
            topics=self.field("topics"),
            arn=self.field("arn"),
            **self.audit(),
        )
        return Response(
            {
                "id": certificate.fingerprint,
                "arn": services.certificate_arn(certificate),
                "deviceId": certificate.device.identity,
                "topics": certificate.topics,
                "status": certificate.state,
            }
        )


class RevokeView(FoundryView):
    """Revoke and unbind the device's certificate; its next request with it fails."""

    @extend_schema(request=FOUNDRY_BODY, responses={200: dict})
    def delete(self, request, connector_id=None):
        cert_id, device_id = self.field("certId"), self.field("deviceId")
        services.revoke_device_certificate(
            self.get_connector(), cert_id=cert_id, device_id=device_id, **self.audit()
        )
        return Response({"id": str(cert_id).lower(), "deviceId": device_id, "status": "revoked"})
