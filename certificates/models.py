from django.db import models
from django.db.models import Q

from connectors.models import Connector
from core.crypto import EC_P256, RSA_2048
from devices.models import Credential, Device

KEY_TYPES = [(EC_P256, "EC P-256"), (RSA_2048, "RSA 2048")]


class CertificateAuthority(models.Model):
    """A connector's own CA: its certificate, its private key encrypted at rest, its CRL."""

    connector = models.OneToOneField(
        Connector, on_delete=models.CASCADE, related_name="certificate_authority"
    )
    key_type = models.CharField(max_length=8, choices=KEY_TYPES, default=EC_P256)
    certificate_pem = models.TextField()
    fingerprint = models.CharField(max_length=64, unique=True)
    # AES-256-GCM of the PKCS#8 DER key under a key derived from CA_KEY_ENCRYPTION_KEY.
    encrypted_key = models.BinaryField()
    # Which CA_KEY_ENCRYPTION_KEY sealed it, so a wrong key is named, not guessed at.
    key_encryption_id = models.CharField(max_length=16)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    crl_der = models.BinaryField(blank=True, default=b"")
    crl_number = models.PositiveBigIntegerField(default=0)
    crl_updated_at = models.DateTimeField(null=True, blank=True)
    crl_next_update = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "certificate authority"
        verbose_name_plural = "certificate authorities"

    def __str__(self):
        return f"CA of {self.connector_id}"


class IssuedCertificate(models.Model):
    """A certificate the connector's CA signed: the CA's ledger and the source of its CRL."""

    INACTIVE = Credential.INACTIVE
    ACTIVE = Credential.ACTIVE
    REVOKED = Credential.REVOKED

    authority = models.ForeignKey(
        CertificateAuthority, on_delete=models.CASCADE, related_name="issued"
    )
    serial = models.CharField(max_length=40)  # lower-case hex, as Credential.serial
    common_name = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, unique=True)
    certificate_pem = models.TextField()
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    state = models.CharField(max_length=8, choices=Credential.STATES, default=ACTIVE)
    # MQTT topics the certificate may use, pushed to the broker later.
    topics = models.JSONField(default=list, blank=True)
    device = models.ForeignKey(
        Device,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="issued_certificates",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["authority", "serial"], name="issued_serial_unique"),
        ]
        indexes = [
            models.Index(
                fields=["authority", "revoked_at"],
                condition=Q(state="revoked"),
                name="issued_revoked",
            ),
        ]

    def __str__(self):
        return f"{self.common_name} ({self.serial})"


class TrustAnchor(models.Model):
    """An uploaded vendor CA certificate, trusted once the uploader proved they hold its key."""

    MAX_PER_CONNECTOR = 100

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="trust_anchors")
    name = models.CharField(max_length=100, blank=True)
    certificate_pem = models.TextField()
    fingerprint = models.CharField(max_length=64)
    subject = models.CharField(max_length=500)
    # crypto.issuer_key(subject): finds the anchors that may have signed a certificate.
    subject_key = models.CharField(max_length=64)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    # The uploader signs a certificate whose subject CN is this code with the
    # anchor's key; not secret, it only proves possession of that key.
    verification_code = models.CharField(max_length=64)
    verified_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "fingerprint"], name="trust_anchor_unique_per_connector"
            ),
        ]
        indexes = [
            models.Index(fields=["connector", "subject_key"], name="trust_anchor_by_subject"),
        ]

    def __str__(self):
        return self.name or self.subject

    @property
    def trusted(self) -> bool:
        return self.enabled and self.verified_at is not None

    @property
    def status(self) -> str:
        if self.verified_at is None:
            return "pending verification"
        return "trusted" if self.enabled else "disabled"


class RevokedCertificate(models.Model):
    """A certificate the connector refuses for good, whoever issued it."""

    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="revoked_certificates"
    )
    fingerprint = models.CharField(max_length=64)
    serial = models.CharField(max_length=40, blank=True)
    revoked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "fingerprint"], name="revoked_certificate_unique"
            ),
        ]

    def __str__(self):
        return f"revoked {self.fingerprint[:16]}"
