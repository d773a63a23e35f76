"""How the CA, issued certificates and trust anchors read and are written in the API."""

from rest_framework import serializers

from certificates.models import KEY_TYPES, CertificateAuthority, IssuedCertificate, TrustAnchor
from core.fields import StrictBooleanField, StrictCharField, StrictModelSerializer


class AuthoritySerializer(StrictModelSerializer):
    crl_url = serializers.SerializerMethodField()
    certificate_url = serializers.SerializerMethodField()

    class Meta:
        model = CertificateAuthority
        fields = [
            "key_type",
            "certificate_pem",
            "fingerprint",
            "not_before",
            "not_after",
            "certificate_url",
            "crl_url",
            "crl_number",
            "crl_updated_at",
            "created_at",
        ]

    def get_crl_url(self, authority) -> str:
        return self.context["request"].build_absolute_uri(f"/pki/{authority.connector_id}/crl")

    def get_certificate_url(self, authority) -> str:
        return self.context["request"].build_absolute_uri(f"/pki/{authority.connector_id}/ca.pem")


class CreateAuthoritySerializer(serializers.Serializer):
    key_type = serializers.ChoiceField(choices=KEY_TYPES, required=False)
    subject = StrictCharField(
        required=False, allow_blank=True, max_length=500, help_text="/C=US/O=My Org/CN=My CA"
    )
    days = serializers.IntegerField(required=False, min_value=1, max_value=36500)


class IssueSerializer(serializers.Serializer):
    name = StrictCharField(
        required=False, allow_blank=True, max_length=200, help_text="subject CN: the identity"
    )
    serial = StrictCharField(
        required=False, allow_blank=True, max_length=64, help_text="decimal, or hex with 0x"
    )
    csr = StrictCharField(
        required=False, allow_blank=True, max_length=64 * 1024, trim_whitespace=False
    )
    key_type = serializers.ChoiceField(choices=KEY_TYPES, required=False)
    days = serializers.IntegerField(required=False, min_value=1, max_value=36500)


class IssuedCertificateSerializer(StrictModelSerializer):
    # Null until the certificate is provisioned to a device.
    device = serializers.SlugRelatedField(slug_field="identity", read_only=True, allow_null=True)

    class Meta:
        model = IssuedCertificate
        fields = [
            "serial",
            "common_name",
            "fingerprint",
            "state",
            "not_before",
            "not_after",
            "topics",
            "device",
            "created_at",
            "revoked_at",
            "certificate_pem",
        ]


class TrustAnchorSerializer(StrictModelSerializer):
    class Meta:
        model = TrustAnchor
        fields = [
            "id",
            "name",
            "subject",
            "fingerprint",
            "not_before",
            "not_after",
            "status",
            "verification_code",
            "verified_at",
            "enabled",
            "created_at",
            "certificate_pem",
        ]
        read_only_fields = fields


class UploadTrustAnchorSerializer(serializers.Serializer):
    certificate = StrictCharField(max_length=64 * 1024, trim_whitespace=False)
    name = StrictCharField(required=False, allow_blank=True, max_length=100)


class VerifyTrustAnchorSerializer(serializers.Serializer):
    certificate = StrictCharField(
        max_length=64 * 1024,
        trim_whitespace=False,
        help_text="a certificate whose CN is the verification code, signed by the anchor's key",
    )


class ChangeTrustAnchorSerializer(serializers.Serializer):
    enabled = StrictBooleanField()
