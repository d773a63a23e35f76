"""Trust: uploaded vendor CAs (trust anchors) and whether a certificate chains to the
connector's CA or one of them."""

import hmac
import secrets

from cryptography import x509
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import Actor
from certificates.models import CertificateAuthority, TrustAnchor
from certificates.services.authority import authority_certificate, authority_of
from certificates.services.base import Conflict, InvalidInput, log_certificate_event
from certificates.services.revocation import is_revoked
from connectors.models import Connector
from core import crypto
from devices.services.credentials import credentials_changed


def add_trust_anchor(
    connector: Connector, pem: str, *, name: str = "", actor: Actor | None = None, ip=None
) -> TrustAnchor:
    """Upload a vendor CA certificate; trusted only after `verify_trust_anchor`."""
    try:
        cert = crypto.load_certificate(pem or "")
    except crypto.CryptoError as exc:
        raise InvalidInput(str(exc)) from exc
    if not crypto.is_ca_certificate(cert):
        raise InvalidInput(
            "not a CA certificate: it needs basicConstraints CA:TRUE (and keyCertSign if it "
            "has a key usage)"
        )
    try:
        crypto.check_public_key(cert.public_key())
    except (crypto.CryptoError, ValueError, TypeError) as exc:
        raise InvalidInput(str(exc)) from exc
    now = timezone.now()
    if cert.not_valid_after_utc <= now:
        raise InvalidInput(f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    name = (name or "").strip()[:100]
    fingerprint = crypto.fingerprint(cert)
    try:
        with transaction.atomic():
            # Serializes uploads to one connector so the limit holds under concurrency.
            Connector.objects.select_for_update().filter(pk=connector.pk).first()
            if TrustAnchor.objects.filter(connector=connector).count() >= (
                TrustAnchor.MAX_PER_CONNECTOR
            ):
                raise Conflict(
                    f"a connector holds at most {TrustAnchor.MAX_PER_CONNECTOR} trust anchors; "
                    "delete one first"
                )
            anchor = TrustAnchor.objects.create(
                connector=connector,
                name=name,
                certificate_pem=crypto.to_pem(cert),
                fingerprint=fingerprint,
                subject=cert.subject.rfc4514_string()[:500],
                subject_key=crypto.issuer_key(cert.subject),
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                verification_code=secrets.token_hex(16),
            )
            log_certificate_event(
                connector.pk,
                "",
                f"trust anchor {anchor.subject} ({fingerprint[:16]}…) uploaded, "
                f"awaiting proof of possession",
                actor=actor,
                ip=ip,
            )
    except IntegrityError as exc:
        raise Conflict("this CA certificate is already a trust anchor of the connector") from exc
    return anchor


def verify_trust_anchor(
    anchor: TrustAnchor, verification_pem: str, *, actor: Actor | None = None, ip=None
) -> TrustAnchor:
    """Trust the anchor once a certificate with CN = its code, signed by its key, is shown."""
    if anchor.verified_at is not None:
        raise Conflict("the trust anchor is already verified")
    try:
        reason = _verification_problem(anchor, verification_pem)
    except crypto.CryptoError as exc:
        reason = str(exc)
    if reason:
        log_certificate_event(
            anchor.connector_id,
            "",
            f"trust anchor {anchor.subject} verification failed: {reason}",
            actor=actor,
            ip=ip,
        )
        raise InvalidInput(f"verification failed: {reason}")
    now = timezone.now()
    with transaction.atomic():
        TrustAnchor.objects.filter(pk=anchor.pk).update(verified_at=now)
        log_certificate_event(
            anchor.connector_id,
            "",
            f"trust anchor {anchor.subject} verified and trusted",
            actor=actor,
            ip=ip,
        )
    anchor.verified_at = now
    return anchor


def _verification_problem(anchor: TrustAnchor, verification_pem: str) -> str:
    """Why a verification certificate does not prove possession, or "" when it does."""
    verification = crypto.load_certificate(verification_pem or "")
    try:
        common_name = crypto.common_name_of(verification.subject)
    except crypto.CryptoError as exc:
        return str(exc)
    if not hmac.compare_digest(common_name.encode(), anchor.verification_code.encode()):
        return f"its CN must be the verification code {anchor.verification_code}"
    anchor_cert = x509.load_pem_x509_certificate(anchor.certificate_pem.encode("ascii"))
    if not crypto.directly_issued_by(verification, anchor_cert):
        return "it was not signed by this CA's private key"
    if not crypto.valid_at(verification, timezone.now()):
        return "it is expired or not yet valid"
    return ""


def set_trust_anchor_enabled(
    anchor: TrustAnchor, enabled: bool, *, actor: Actor | None = None, ip=None
) -> TrustAnchor:
    with transaction.atomic():
        TrustAnchor.objects.filter(pk=anchor.pk).update(enabled=enabled)
        credentials_changed("trust_changed", anchor.connector_id)
        state = "enabled" if enabled else "disabled: its devices are refused until re-enabled"
        log_certificate_event(
            anchor.connector_id,
            "",
            f"trust anchor {anchor.subject} {state}",
            actor=actor,
            ip=ip,
        )
    anchor.enabled = enabled
    return anchor


def delete_trust_anchor(anchor: TrustAnchor, *, actor: Actor | None = None, ip=None) -> None:
    with transaction.atomic():
        log_certificate_event(
            anchor.connector_id,
            "",
            f"trust anchor {anchor.subject} ({anchor.fingerprint[:16]}…) deleted",
            actor=actor,
            ip=ip,
        )
        credentials_changed("trust_changed", anchor.connector_id)
        anchor.delete()


# --- chains ---------------------------------------------------------------------------------


def has_trust(connector: Connector) -> bool:
    """Whether the connector has a CA or a trusted anchor (device certificates must chain)."""
    return (
        CertificateAuthority.objects.filter(connector=connector).exists()
        or TrustAnchor.objects.filter(
            connector=connector, enabled=True, verified_at__isnull=False
        ).exists()
    )


def trusted_issuer(connector: Connector, cert: x509.Certificate, now=None) -> str | None:
    """Fingerprint of the connector CA or trusted anchor that signed `cert`, or None.

    Only direct issuance counts (nginx passes on the leaf alone): upload an
    intermediate CA as a trust anchor of its own.
    """
    now = now or timezone.now()
    authority = authority_of(connector)
    if authority is not None:
        ca_cert = authority_certificate(authority)
        if crypto.directly_issued_by(cert, ca_cert) and crypto.valid_at(ca_cert, now):
            return authority.fingerprint
    anchors = TrustAnchor.objects.filter(
        connector=connector,
        subject_key=crypto.issuer_key(cert.issuer),
        enabled=True,
        verified_at__isnull=False,
        not_before__lte=now,
        not_after__gt=now,
    ).only("certificate_pem", "fingerprint")
    for anchor in anchors:
        anchor_cert = x509.load_pem_x509_certificate(anchor.certificate_pem.encode("ascii"))
        if crypto.directly_issued_by(cert, anchor_cert):
            return anchor.fingerprint
    return None


def issuer_still_trusted(connector_id: str, issuer_fingerprint: str, now=None) -> bool:
    """Whether a CA or anchor that once vouched for a device still does."""
    now = now or timezone.now()
    if CertificateAuthority.objects.filter(
        connector_id=connector_id, fingerprint=issuer_fingerprint, not_after__gt=now
    ).exists():
        return True
    return TrustAnchor.objects.filter(
        connector_id=connector_id,
        fingerprint=issuer_fingerprint,
        enabled=True,
        verified_at__isnull=False,
        not_after__gt=now,
    ).exists()


def chains_to_connector(connector: Connector, cert: x509.Certificate) -> bool:
    """True when `cert` is valid now, not revoked, and signed by the connector's CA or a
    verified, enabled trust anchor (for secure registration)."""
    now = timezone.now()
    if not crypto.valid_at(cert, now):
        return False
    if is_revoked(connector, crypto.fingerprint(cert)):
        return False
    return trusted_issuer(connector, cert, now) is not None
