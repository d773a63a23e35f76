from django.contrib import admin

from certificates.models import (
    CertificateAuthority,
    IssuedCertificate,
    RevokedCertificate,
    TrustAnchor,
)


@admin.register(CertificateAuthority)
class CertificateAuthorityAdmin(admin.ModelAdmin):
    list_display = ["connector", "key_type", "fingerprint", "not_after", "crl_number"]
    search_fields = ["connector__id", "connector__name", "fingerprint"]
    # The sealed key is never shown, not even encrypted.
    exclude = ["encrypted_key", "crl_der"]
    readonly_fields = [
        "connector",
        "key_type",
        "certificate_pem",
        "fingerprint",
        "key_encryption_id",
        "not_before",
        "not_after",
        "crl_number",
        "crl_updated_at",
        "crl_next_update",
    ]

    def has_add_permission(self, request):
        # A CA needs a generated, sealed key: create it in the portal, API or create_ca.
        return False


@admin.register(IssuedCertificate)
class IssuedCertificateAdmin(admin.ModelAdmin):
    list_display = ["common_name", "serial", "state", "not_after", "device", "authority"]
    list_filter = ["state"]
    search_fields = ["common_name", "serial", "fingerprint"]
    raw_id_fields = ["device", "authority"]
    readonly_fields = ["certificate_pem", "fingerprint", "serial", "not_before", "not_after"]


@admin.register(TrustAnchor)
class TrustAnchorAdmin(admin.ModelAdmin):
    list_display = ["subject", "connector", "enabled", "verified_at", "not_after"]
    list_filter = ["enabled"]
    search_fields = ["subject", "fingerprint", "connector__id"]
    raw_id_fields = ["connector"]
    readonly_fields = ["certificate_pem", "fingerprint", "subject", "subject_key", "verified_at"]


@admin.register(RevokedCertificate)
class RevokedCertificateAdmin(admin.ModelAdmin):
    list_display = ["fingerprint", "serial", "connector", "revoked_at"]
    search_fields = ["fingerprint", "serial", "connector__id"]
    raw_id_fields = ["connector"]
