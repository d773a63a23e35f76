"""Admin views of certificate authorities, issued certificates, trust anchors and revocations.

Changes that decide which certificates are trusted go through
`certificates.services`, so each leaves a line naming the admin in the
connector's log; the rows that record revocations are never edited or deleted
here (deleting one would quietly trust a revoked certificate again).
"""

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename

from audit.events import Actor, record_event
from audit.models import Event
from certificates import services
from certificates.models import (
    CertificateAuthority,
    IssuedCertificate,
    RevokedCertificate,
    TrustAnchor,
)
from core.net import client_ip
from devices.admin import NoDirectDeleteMixin
from devices.services.credentials import credentials_changed


def _audit(request) -> dict:
    return {"actor": Actor.of(request, "admin"), "ip": client_ip(request)}


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

    def delete_model(self, request, obj):
        audit = _audit(request)
        record_event(
            obj.connector_id,
            "",
            Event.CERTIFICATE,
            f"certificate authority {obj.fingerprint[:16]}… deleted with the certificates "
            f"it issued by {audit['actor']}",
            audit["ip"],
            actor=audit["actor"],
        )
        credentials_changed("trust_changed", obj.connector_id)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for authority in queryset:
            self.delete_model(request, authority)


@admin.register(IssuedCertificate)
class IssuedCertificateAdmin(NoDirectDeleteMixin, admin.ModelAdmin):
    """The CA's ledger: read-only; revoke with the action, which also updates the CRL.

    The CRL is built from these rows, so one deleted alone would be trusted again.
    """

    list_display = ["common_name", "serial", "state", "not_after", "device", "authority"]
    list_filter = ["state"]
    search_fields = ["common_name", "serial", "fingerprint"]
    list_select_related = ["device", "authority"]
    actions = ["revoke_certificates"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request):
        # Rows are never edited by hand here, so the model's "change" permission is the
        # one that revoking (an irreversible change, published in the CRL) asks for.
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.action(description="Revoke for good (published in the CRL)", permissions=["revoke"])
    def revoke_certificates(self, request, queryset):
        revoked = 0
        for issued in queryset.select_related("authority__connector"):
            if issued.state == IssuedCertificate.REVOKED:
                continue
            services.revoke_certificate(
                issued.authority.connector, issued.fingerprint, **_audit(request)
            )
            revoked += 1
        messages.success(request, f"Revoked {revoked} certificate(s).")


@admin.register(TrustAnchor)
class TrustAnchorAdmin(admin.ModelAdmin):
    """Uploaded in the portal or API, where the uploader proves they hold the key."""

    list_display = ["subject", "connector", "enabled", "verified_at", "not_after"]
    list_filter = ["enabled"]
    search_fields = ["subject", "fingerprint", "connector__id"]
    list_select_related = ["connector"]
    fields = [
        "connector",
        "name",
        "enabled",
        "subject",
        "fingerprint",
        "certificate_pem",
        "verified_at",
        "not_after",
    ]
    readonly_fields = [
        "connector",
        "subject",
        "fingerprint",
        "certificate_pem",
        "verified_at",
        "not_after",
    ]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        enabled = TrustAnchor.objects.values_list("enabled", flat=True).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        if obj.enabled != enabled:
            services.set_trust_anchor_enabled(obj, obj.enabled, **_audit(request))

    def delete_model(self, request, obj):
        services.delete_trust_anchor(obj, **_audit(request))

    def delete_queryset(self, request, queryset):
        for anchor in queryset:
            services.delete_trust_anchor(anchor, **_audit(request))


@admin.register(RevokedCertificate)
class RevokedCertificateAdmin(NoDirectDeleteMixin, admin.ModelAdmin):
    """Revocations are for good: shown, never edited, gone only with their connector."""

    list_display = ["fingerprint", "serial", "connector", "revoked_at"]
    search_fields = ["fingerprint", "serial", "connector__id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
