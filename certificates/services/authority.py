"""A connector's own certificate authority: created once, its sealed key, its CRL."""

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from audit.events import Actor
from certificates.models import (
    EC_P256,
    KEY_TYPES,
    RSA_2048,
    CertificateAuthority,
    IssuedCertificate,
)
from certificates.services.base import (
    Conflict,
    InvalidInput,
    KeyUnavailable,
    NoAuthority,
    log_certificate_event,
)
from connectors.models import Connector
from core import crypto

CA_DAYS = 3650
MAX_DAYS = 36500
CRL_LIFETIME = timedelta(days=7)
# Refresh a CRL this long before its nextUpdate so relying parties never see a stale one.
CRL_REFRESH_MARGIN = timedelta(days=1)
KEY_TYPE_NAMES = dict(KEY_TYPES)


def authority_of(connector: Connector) -> CertificateAuthority | None:
    return CertificateAuthority.objects.filter(connector=connector).first()


def require_authority(connector: Connector) -> CertificateAuthority:
    authority = authority_of(connector)
    if authority is None:
        raise NoAuthority()
    return authority


def check_days(days, default: int) -> int:
    if days in (None, ""):
        return default
    try:
        days = int(days)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("days must be a whole number") from exc
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}")
    return days


def check_key_type(key_type) -> str:
    key_type = key_type or EC_P256
    # A JSON body can hold anything here, and a list cannot even be looked up.
    if not isinstance(key_type, str) or key_type not in KEY_TYPE_NAMES:
        raise InvalidInput(f"key_type must be {EC_P256} (default) or {RSA_2048}")
    return key_type


def default_ca_subject(connector: Connector) -> x509.Name:
    name = f"{connector.name} device CA"[: crypto.MAX_COMMON_NAME].strip() or "Device CA"
    return crypto.parse_subject(f"/O=Gatehouse/CN={name.replace('/', '-')}")


def create_authority(
    connector: Connector,
    *,
    key_type: str = EC_P256,
    subject: str = "",
    days=None,
    actor: Actor | None = None,
    ip=None,
) -> CertificateAuthority:
    """Make the connector's root CA; one per connector."""
    key_type = check_key_type(key_type)
    days = check_days(days, CA_DAYS)
    try:
        name = crypto.parse_subject(subject) if subject else default_ca_subject(connector)
    except crypto.CryptoError as exc:
        raise InvalidInput(str(exc)) from exc
    if authority_of(connector) is not None:
        raise Conflict("this connector already has a certificate authority")
    private_key = crypto.generate_key(key_type)
    now = timezone.now()
    cert = crypto.build_ca_certificate(private_key, name, now, days)
    fingerprint = crypto.fingerprint(cert)
    sealed, key_id = crypto.seal_private_key(
        private_key, settings.CA_KEY_ENCRYPTION_KEY, _sealing_context(connector.pk, fingerprint)
    )
    try:
        with transaction.atomic():
            authority = CertificateAuthority.objects.create(
                connector=connector,
                key_type=key_type,
                certificate_pem=crypto.to_pem(cert),
                fingerprint=fingerprint,
                encrypted_key=sealed,
                key_encryption_id=key_id,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
            )
            write_crl(authority, now)
            log_certificate_event(
                connector.pk,
                "",
                f"certificate authority created ({KEY_TYPE_NAMES[key_type]}, "
                f"{cert.subject.rfc4514_string()})",
                actor=actor,
                ip=ip,
            )
    except IntegrityError as exc:
        raise Conflict("this connector already has a certificate authority") from exc
    return authority


def ensure_authority(
    connector: Connector, *, actor: Actor | None = None, ip=None
) -> CertificateAuthority:
    """The connector's CA, created with the defaults on first use.

    Of two callers racing to create it, the database's one-CA-per-connector
    constraint lets one insert; the other gets the winner's CA.
    """
    authority = authority_of(connector)
    if authority is not None:
        return authority
    try:
        return create_authority(connector, actor=actor, ip=ip)
    except Conflict:
        authority = authority_of(connector)
        if authority is None:
            raise
        return authority


def _sealing_context(connector_id: str, fingerprint: str) -> str:
    # Binds the sealed key to its CA: a key copied onto another CA row will not open.
    return f"{connector_id}:{fingerprint}"


def authority_certificate(authority: CertificateAuthority) -> x509.Certificate:
    return x509.load_pem_x509_certificate(authority.certificate_pem.encode("ascii"))


def authority_private_key(authority: CertificateAuthority):
    try:
        return crypto.unseal_private_key(
            bytes(authority.encrypted_key),
            authority.key_encryption_id,
            settings.CA_KEY_ENCRYPTION_KEY,
            _sealing_context(authority.connector_id, authority.fingerprint),
        )
    except crypto.SealingKeyMismatch as exc:
        raise KeyUnavailable(str(exc)) from exc


def write_crl(authority: CertificateAuthority, now: datetime) -> None:
    """Sign a fresh CRL listing every certificate revoked in this CA's ledger."""
    revoked = [
        (int(serial, 16), when)
        for serial, when in IssuedCertificate.objects.filter(
            authority=authority, state=IssuedCertificate.REVOKED
        )
        .order_by("revoked_at", "id")
        .values_list("serial", "revoked_at")
    ]
    locked = CertificateAuthority.objects.select_for_update().get(pk=authority.pk)
    number = locked.crl_number + 1
    next_update = min(now + CRL_LIFETIME, max(authority.not_after, now + timedelta(hours=1)))
    crl = crypto.build_crl(
        ca_cert=authority_certificate(authority),
        ca_key=authority_private_key(authority),
        number=number,
        now=now,
        next_update=next_update,
        revoked=revoked,
    )
    CertificateAuthority.objects.filter(pk=authority.pk).update(
        crl_der=crl.public_bytes(serialization.Encoding.DER),
        crl_number=number,
        crl_updated_at=now,
        crl_next_update=next_update,
    )


def current_crl(authority: CertificateAuthority) -> bytes:
    """The CA's CRL (DER), re-signed when a revocation is newer or nextUpdate nears."""
    now = timezone.now()
    latest = IssuedCertificate.objects.filter(
        authority=authority, state=IssuedCertificate.REVOKED
    ).aggregate(latest=Max("revoked_at"))["latest"]
    stale = (
        not authority.crl_der
        or authority.crl_next_update is None
        or authority.crl_next_update - now < CRL_REFRESH_MARGIN
        or (
            latest is not None
            and authority.crl_updated_at is not None
            and latest > authority.crl_updated_at
        )
    )
    if stale:
        with transaction.atomic():
            write_crl(authority, now)
        authority.refresh_from_db(fields=["crl_der", "crl_number", "crl_updated_at"])
    return bytes(authority.crl_der)
