"""Management API for a connector's CA, issued certificates and trust anchors."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from certificates import services
from certificates.api.serializers import (
    AuthoritySerializer,
    ChangeTrustAnchorSerializer,
    CreateAuthoritySerializer,
    IssuedCertificateSerializer,
    IssueSerializer,
    TrustAnchorSerializer,
    UploadTrustAnchorSerializer,
    VerifyTrustAnchorSerializer,
)
from certificates.models import IssuedCertificate, TrustAnchor
from connectors.api.views import ConnectorScopedMixin
from core.errors import Refused, status_for
from core.pagination import IdCursorPagination

# One table for every caller of the certificate services over JSON.
STATUS_BY_ERROR = {
    services.InvalidInput: 400,
    services.NotFound: 404,
    services.Conflict: 409,
    services.NoAuthority: 409,
    services.KeyUnavailable: 503,
}


def status_of(error: services.CertificateError) -> int:
    return status_for(error, STATUS_BY_ERROR)


class CertificateViewMixin(ConnectorScopedMixin):
    def handle_exception(self, exc):
        if isinstance(exc, services.CertificateError):
            exc = Refused(exc, STATUS_BY_ERROR)
        return super().handle_exception(exc)

    def valid(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class AuthorityView(CertificateViewMixin, APIView):
    """The connector's CA: read it, or create it once (EC P-256 unless RSA is asked for)."""

    @extend_schema(
        responses={
            200: AuthoritySerializer,
            409: OpenApiResponse(description="The connector has no certificate authority yet."),
        }
    )
    def get(self, request, connector_id):
        authority = services.require_authority(self.get_connector())
        return Response(AuthoritySerializer(authority, context={"request": request}).data)

    @extend_schema(request=CreateAuthoritySerializer, responses={201: AuthoritySerializer})
    def post(self, request, connector_id):
        data = self.valid(CreateAuthoritySerializer)
        authority = services.create_authority(
            self.get_connector(),
            key_type=data.get("key_type") or "ec-p256",
            subject=data.get("subject", ""),
            days=data.get("days"),
            **self.audit(),
        )
        return Response(
            AuthoritySerializer(authority, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class IssueView(CertificateViewMixin, APIView):
    """Issue a device certificate by name (CN) and serial; from a CSR, or with a new key."""

    @extend_schema(request=IssueSerializer, responses={201: IssuedCertificateSerializer})
    def post(self, request, connector_id):
        data = self.valid(IssueSerializer)
        issued = services.issue_certificate(
            services.require_authority(self.get_connector()),
            common_name=data.get("name", ""),
            serial=data.get("serial"),
            csr=data.get("csr", ""),
            key_type=data.get("key_type") or "ec-p256",
            days=data.get("days"),
            **self.audit(),
        )
        body = IssuedCertificateSerializer(issued.certificate).data
        if issued.private_key_pem:
            # Shown this once; Gatehouse keeps no copy.
            body["private_key_pem"] = issued.private_key_pem
        return Response(body, status=status.HTTP_201_CREATED)


class IssuedListView(CertificateViewMixin, generics.ListAPIView):
    """Every certificate the connector's CA issued, newest first."""

    serializer_class = IssuedCertificateSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return IssuedCertificate.objects.none()
        return IssuedCertificate.objects.filter(
            authority__connector=self.get_connector()
        ).select_related("device")


class RevokeView(CertificateViewMixin, APIView):
    """Revoke any certificate the connector knows, by SHA-256 fingerprint, for good."""

    @extend_schema(request=None, responses={200: dict})
    def post(self, request, connector_id, fingerprint):
        identities = services.revoke_certificate(self.get_connector(), fingerprint, **self.audit())
        return Response(
            {"fingerprint": fingerprint.lower(), "state": "revoked", "devices": identities}
        )


class TrustAnchorListView(CertificateViewMixin, APIView):
    """Uploaded vendor CA certificates (at most 100); trusted after proof of possession."""

    @extend_schema(responses=TrustAnchorSerializer(many=True))
    def get(self, request, connector_id):
        anchors = TrustAnchor.objects.filter(connector=self.get_connector())
        return Response(TrustAnchorSerializer(anchors, many=True).data)

    @extend_schema(request=UploadTrustAnchorSerializer, responses={201: TrustAnchorSerializer})
    def post(self, request, connector_id):
        data = self.valid(UploadTrustAnchorSerializer)
        anchor = services.add_trust_anchor(
            self.get_connector(), data["certificate"], name=data.get("name", ""), **self.audit()
        )
        return Response(TrustAnchorSerializer(anchor).data, status=status.HTTP_201_CREATED)


class TrustAnchorDetailView(CertificateViewMixin, APIView):
    """One trust anchor: read, enable or disable, delete."""

    def get_anchor(self) -> TrustAnchor:
        return get_object_or_404(
            TrustAnchor, connector=self.get_connector(), pk=self.kwargs["anchor_id"]
        )

    @extend_schema(responses=TrustAnchorSerializer)
    def get(self, request, connector_id, anchor_id):
        return Response(TrustAnchorSerializer(self.get_anchor()).data)

    @extend_schema(request=ChangeTrustAnchorSerializer, responses=TrustAnchorSerializer)
    def patch(self, request, connector_id, anchor_id):
        anchor = self.get_anchor()
        data = self.valid(ChangeTrustAnchorSerializer)
        anchor = services.set_trust_anchor_enabled(anchor, data["enabled"], **self.audit())
        return Response(TrustAnchorSerializer(anchor).data)

    @extend_schema(responses={204: None})
    def delete(self, request, connector_id, anchor_id):
        services.delete_trust_anchor(self.get_anchor(), **self.audit())
        return Response(status=status.HTTP_204_NO_CONTENT)


class VerifyTrustAnchorView(TrustAnchorDetailView):
    """Prove possession of the anchor's key: a certificate with CN = the code, signed by it."""

    http_method_names = ["post", "options"]

    @extend_schema(request=VerifyTrustAnchorSerializer, responses=TrustAnchorSerializer)
    def post(self, request, connector_id, anchor_id):
        anchor = self.get_anchor()
        data = self.valid(VerifyTrustAnchorSerializer)
        anchor = services.verify_trust_anchor(anchor, data["certificate"], **self.audit())
        return Response(TrustAnchorSerializer(anchor).data)
