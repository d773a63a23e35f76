"""Connector CAs, device certificates, trust anchors and their revocation.

Plain functions raising `CertificateError`s; the management API, the
self-provisioning API, the portal and the management commands map those to
what their callers expect. Every change writes an event on the connector.
"""

import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from certificates import crypto
from certificates.models import (
    EC_P256,
    KEY_TYPES,
    RSA_2048,
    CertificateAuthority,
    IssuedCertificate,
    RevokedCertificate,
    TrustAnchor,
)
from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from devices.models import Credential, Device, Event
from devices.services import record_event
from devices.services.events import Actor
from portal.errors import Refusal

CA_DAYS = 3650
DEVICE_CERTIFICATE_DAYS = 3650
MAX_DAYS = 36500
CRL_LIFETIME = timedelta(days=7)
# Refresh a CRL this long before its nextUpdate so relying parties never see a stale one.
CRL_REFRESH_MARGIN = timedelta(days=1)
# Certificates made by the self-provisioning API are bound to a device explicitly;
# a name with spaces can never be mistaken for a device identity.
GENERATED_COMMON_NAME = "Gatehouse device certificate"
MAX_TOPICS = 100
MAX_TOPIC_LENGTH = 256
KEY_TYPE_NAMES = dict(KEY_TYPES)


class CertificateError(Refusal):
    """Base of every refusal of the certificate services; the message says why."""


class InvalidInput(CertificateError):
    default_message = "invalid input"


class NotFound(CertificateError):
    default_message = "not found"


class Conflict(CertificateError):
    default_message = "conflicts with the current state"


class NoAuthority(Conflict):
    default_message = "this connector has no certificate authority; create one first"


class KeyUnavailable(CertificateError):
    default_message = "the CA key cannot be used with the configured CA_KEY_ENCRYPTION_KEY"


# --- certificate authority ------------------------------------------------------------


def authority_of(connector: Connector) -> CertificateAuthority | None:
    return CertificateAuthority.objects.filter(connector=connector).first()


def require_authority(connector: Connector) -> CertificateAuthority:
    authority = authority_of(connector)
    if authority is None:
        raise NoAuthority()
    return authority


def _check_days(days, default: int) -> int:
    if days in (None, ""):
        return default
    try:
        days = int(days)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("days must be a whole number") from exc
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}")
    return days


def _check_key_type(key_type) -> str:
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
    key_type = _check_key_type(key_type)
    days = _check_days(days, CA_DAYS)
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
            _write_crl(authority, now)
            record_event(
                connector.pk,
                "",
                Event.CERTIFICATE,
                f"certificate authority created ({KEY_TYPE_NAMES[key_type]}, "
                f"{cert.subject.rfc4514_string()}){_by(actor)}",
                ip,
                actor=actor,
            )
    except IntegrityError as exc:
        raise Conflict("this connector already has a certificate authority") from exc
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


def _by(actor: Actor | None) -> str:
    return f" by {actor}" if actor else ""


# --- issuing --------------------------------------------------------------------------


@dataclass
class Issued:
    """A certificate just issued; `private_key_pem` only when Gatehouse made the key."""

    certificate: IssuedCertificate
    private_key_pem: str | None = None


def parse_serial(value) -> int | None:
    """A serial number as decimal digits or 0x-prefixed hex; None picks a random one."""
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower()
        try:
            number = int(text[2:], 16) if text.startswith("0x") else int(text, 10)
        except ValueError as exc:
            raise InvalidInput(
                "serial is a positive number: decimal digits, or hex starting 0x"
            ) from exc
    if not 0 < number < 2**159:
        raise InvalidInput("serial must be positive and fit in 20 bytes")
    return number


def issue_certificate(
    authority: CertificateAuthority,
    *,
    common_name: str = "",
    serial=None,
    csr: str = "",
    key_type: str = EC_P256,
    days=None,
    state: str = IssuedCertificate.ACTIVE,
    topics: list | None = None,
    actor: Actor | None = None,
    ip=None,
) -> Issued:
    """Issue a device certificate by serial number and name (the CN).

    With `csr` the device keeps its private key and only its public key is
    signed; without, a key is generated here (EC P-256 unless RSA is asked for)
    and returned once, never stored.
    """
    serial_number = parse_serial(serial)
    days = _check_days(days, DEVICE_CERTIFICATE_DAYS)
    private_key = None
    if csr:
        try:
            request = crypto.load_csr(csr)
        except crypto.CryptoError as exc:
            raise InvalidInput(str(exc)) from exc
        public_key = request.public_key()
        requested = ""
        if request.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME):
            try:
                requested = crypto.common_name_of(request.subject)
            except crypto.CryptoError as exc:
                raise InvalidInput(f"CSR: {exc}") from exc
        if common_name and requested and common_name.strip() != requested:
            raise InvalidInput(f'the CSR asks for CN "{requested}", not "{common_name.strip()}"')
        common_name = common_name or requested
    else:
        private_key = crypto.generate_key(_check_key_type(key_type))
        public_key = private_key.public_key()
    try:
        common_name = crypto.check_common_name(common_name)
    except crypto.CryptoError as exc:
        raise InvalidInput(str(exc)) from exc

    ca_cert = authority_certificate(authority)
    ca_key = authority_private_key(authority)
    now = timezone.now()
    if authority.not_after <= now:
        raise Conflict("the certificate authority has expired")
    not_after = min(now + timedelta(days=days), authority.not_after)
    cert = crypto.build_device_certificate(
        ca_cert=ca_cert,
        ca_key=ca_key,
        public_key=public_key,
        common_name=common_name,
        serial=serial_number or x509.random_serial_number(),
        not_before=max(now - crypto.BACKDATE, authority.not_before),
        not_after=not_after,
    )
    try:
        with transaction.atomic():
            issued = IssuedCertificate.objects.create(
                authority=authority,
                serial=crypto.serial_hex(cert),
                common_name=common_name,
                fingerprint=crypto.fingerprint(cert),
                certificate_pem=crypto.to_pem(cert),
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                state=state,
                topics=topics or [],
            )
            how = "from a CSR" if private_key is None else "with a generated key"
            record_event(
                authority.connector_id,
                common_name if common_name != GENERATED_COMMON_NAME else "",
                Event.CERTIFICATE,
                f"issued certificate serial {issued.serial} for CN={common_name} {how}{_by(actor)}",
                ip,
                actor=actor,
            )
    except IntegrityError as exc:
        raise Conflict(f"serial {crypto.serial_hex(cert)} was already issued by this CA") from exc
    return Issued(issued, crypto.private_key_pem(private_key) if private_key else None)


# --- revocation and the CRL -------------------------------------------------------------


def revoke_certificate(
    connector: Connector, fingerprint: str, *, actor: Actor | None = None, ip=None
) -> list[str]:
    """Revoke a certificate known to the connector, by its SHA-256 fingerprint, for good.

    Every device credential made from it is revoked, so the next request with it
    fails, and it is never accepted again on this connector (not even after a
    device reset). When the connector's CA issued it, it goes on the CRL.
    Returns the identities of the devices it belonged to.
    """
    fingerprint = (fingerprint or "").strip().lower()
    now = timezone.now()
    with transaction.atomic():
        issued = (
            IssuedCertificate.objects.select_for_update()
            .select_related("authority")
            .filter(authority__connector=connector, fingerprint=fingerprint)
            .first()
        )
        credentials = Credential.objects.filter(
            device__connector=connector, kind=Connector.CERTIFICATE, fingerprint=fingerprint
        )
        identities = sorted(set(credentials.values_list("device__identity", flat=True)))
        if issued is None and not identities:
            raise NotFound("no certificate with that fingerprint on this connector")
        serial = issued.serial if issued else credentials.values_list("serial", flat=True)[0]
        try:
            with transaction.atomic():
                RevokedCertificate.objects.create(
                    connector=connector, fingerprint=fingerprint, serial=serial
                )
        except IntegrityError as exc:
            raise Conflict("the certificate is already revoked") from exc
        credentials.exclude(state=Credential.REVOKED).update(
            state=Credential.REVOKED, revoked_at=now
        )
        Device.objects.filter(connector=connector, identity__in=identities).update(
            credential_version=F("credential_version") + 1
        )
        if issued is not None:
            IssuedCertificate.objects.filter(pk=issued.pk).update(
                state=IssuedCertificate.REVOKED, revoked_at=now, device=None
            )
            _write_crl(issued.authority, now)
        label = f"certificate serial {serial} ({fingerprint[:16]}…) revoked{_by(actor)}"
        for identity in identities or [""]:
            record_event(connector.pk, identity, Event.CERTIFICATE, label, ip, actor=actor)
    return identities


def _write_crl(authority: CertificateAuthority, now: datetime) -> None:
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
            _write_crl(authority, now)
        authority.refresh_from_db(fields=["crl_der", "crl_number", "crl_updated_at"])
    return bytes(authority.crl_der)


# --- trust anchors ------------------------------------------------------------------------


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
            record_event(
                connector.pk,
                "",
                Event.CERTIFICATE,
                f"trust anchor {anchor.subject} ({fingerprint[:16]}…) uploaded, "
                f"awaiting proof of possession{_by(actor)}",
                ip,
                actor=actor,
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
        record_event(
            anchor.connector_id,
            "",
            Event.CERTIFICATE,
            f"trust anchor {anchor.subject} verification failed: {reason}{_by(actor)}",
            ip,
            actor=actor,
        )
        raise InvalidInput(f"verification failed: {reason}")
    now = timezone.now()
    with transaction.atomic():
        TrustAnchor.objects.filter(pk=anchor.pk).update(verified_at=now)
        record_event(
            anchor.connector_id,
            "",
            Event.CERTIFICATE,
            f"trust anchor {anchor.subject} verified and trusted{_by(actor)}",
            ip,
            actor=actor,
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
        state = "enabled" if enabled else "disabled: its devices are refused until re-enabled"
        record_event(
            anchor.connector_id,
            "",
            Event.CERTIFICATE,
            f"trust anchor {anchor.subject} {state}{_by(actor)}",
            ip,
            actor=actor,
        )
    anchor.enabled = enabled
    return anchor


def delete_trust_anchor(anchor: TrustAnchor, *, actor: Actor | None = None, ip=None) -> None:
    with transaction.atomic():
        record_event(
            anchor.connector_id,
            "",
            Event.CERTIFICATE,
            f"trust anchor {anchor.subject} ({anchor.fingerprint[:16]}…) deleted{_by(actor)}",
            ip,
            actor=actor,
        )
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


def is_revoked(connector: Connector, fingerprint: str) -> bool:
    """Whether the certificate was revoked on this connector (one indexed lookup)."""
    return RevokedCertificate.objects.filter(connector=connector, fingerprint=fingerprint).exists()


def chains_to_connector(connector: Connector, cert: x509.Certificate) -> bool:
    """True when `cert` is valid now, not revoked, and signed by the connector's CA or a
    verified, enabled trust anchor (for secure registration)."""
    now = timezone.now()
    if not crypto.valid_at(cert, now):
        return False
    if is_revoked(connector, crypto.fingerprint(cert)):
        return False
    return trusted_issuer(connector, cert, now) is not None


def pinnable_certificate(
    pem: str, identity: str, identity_format, now: datetime | None = None
) -> x509.Certificate:
    """The certificate in `pem`, if it may be pinned to the device `identity`.

    One PEM certificate with no private key beside it; exactly one CN, which
    read through the connector's identity format is the identity (so a MAC
    address in upper case still names the same device); not expired.
    crypto.CryptoError says why not. Used by the API and by CSV imports.
    """
    cert = crypto.load_certificate(pem or "")
    common_name = crypto.common_name_of(cert.subject)
    try:
        matches = normalize_identity(common_name, identity_format) == identity
    except InvalidIdentity:
        matches = False
    if not matches:
        raise crypto.CryptoError(
            f'the certificate CN "{common_name[:160]}" does not match the ID "{identity}"'
        )
    if cert.not_valid_after_utc <= (now or timezone.now()):
        raise crypto.CryptoError(f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    return cert


def pin_certificate(device: Device, pem: str) -> Credential:
    """Pin a certificate in a whitelisted device's entry (CSV column "TLS Client Certificate").

    Only that certificate can then provision the device. Its CN must be
    the identity; an earlier pin is replaced.
    """
    try:
        cert = pinnable_certificate(pem, device.identity, device.connector.identity_format)
    except crypto.CryptoError as exc:
        raise InvalidInput(str(exc)) from exc
    if device.status != Device.WHITELISTED:
        raise Conflict("only a whitelisted device's certificate can be pinned; reset it first")
    with transaction.atomic():
        Credential.objects.filter(
            device=device, kind=Connector.CERTIFICATE, state=Credential.INACTIVE
        ).delete()
        return Credential.objects.create(
            device=device,
            kind=Connector.CERTIFICATE,
            state=Credential.INACTIVE,
            certificate_pem=crypto.to_pem(cert),
            fingerprint=crypto.fingerprint(cert),
            serial=crypto.serial_hex(cert),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )


# --- self-provisioning -----------------------------------------------------------------------


def validate_topics(topics) -> list[str]:
    """The topics a certificate may use: a list of strings (kept for the MQTT broker)."""
    if isinstance(topics, str):
        try:
            topics = json.loads(topics)
        except ValueError as exc:
            raise InvalidInput('topics is a JSON list of strings, e.g. ["1/#/1"]') from exc
    if not isinstance(topics, list) or not all(isinstance(topic, str) for topic in topics):
        raise InvalidInput('topics is a JSON list of strings, e.g. ["1/#/1"]')
    if len(topics) > MAX_TOPICS:
        raise InvalidInput(f"at most {MAX_TOPICS} topics")
    for topic in topics:
        if not topic or len(topic) > MAX_TOPIC_LENGTH or "\x00" in topic:
            raise InvalidInput(f"topics are 1 to {MAX_TOPIC_LENGTH} characters, no NUL")
    return list(dict.fromkeys(topics))


def certificate_arn(issued: IssuedCertificate) -> str:
    """A stable resource name for a certificate, in the form owner apps expect."""
    return f"arn:gatehouse:certificates:{issued.authority.connector_id}:cert/{issued.fingerprint}"


def generate_certificate(
    connector: Connector,
    *,
    topics=None,
    key_type: str = EC_P256,
    actor: Actor | None = None,
    ip=None,
) -> Issued:
    """A new certificate and key for an owner app; inactive unless `topics` is given."""
    authority = require_authority(connector)
    cleaned = validate_topics(topics) if topics is not None else None
    return issue_certificate(
        authority,
        common_name=GENERATED_COMMON_NAME,
        key_type=key_type,
        state=IssuedCertificate.ACTIVE if cleaned is not None else IssuedCertificate.INACTIVE,
        topics=cleaned,
        actor=actor,
        ip=ip,
    )


def _find_device(connector: Connector, raw_identity) -> Device:
    if not isinstance(raw_identity, str) or not raw_identity:
        raise InvalidInput("deviceId is required")
    try:
        identity = normalize_identity(raw_identity, connector.identity_format)
    except InvalidIdentity as exc:
        raise InvalidInput(f"deviceId: {exc}") from exc
    device = Device.objects.filter(connector=connector, identity=identity).first()
    if device is None:
        raise NotFound(f"no device {identity!r} on this connector")
    return device


def _find_issued(connector: Connector, cert_id, arn=None) -> IssuedCertificate:
    if not isinstance(cert_id, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", cert_id):
        raise InvalidInput("certId is the certificate's SHA-256 fingerprint (64 hex digits)")
    issued = (
        IssuedCertificate.objects.select_related("authority")
        .filter(authority__connector=connector, fingerprint=cert_id.lower())
        .first()
    )
    if issued is None:
        raise NotFound("no certificate with that certId on this connector")
    if arn not in (None, "") and arn != certificate_arn(issued):
        raise InvalidInput("arn does not name that certificate")
    return issued


def provision_certificate(
    connector: Connector,
    *,
    cert_id,
    device_id,
    topics=None,
    arn=None,
    actor: Actor | None = None,
    ip=None,
) -> IssuedCertificate:
    """Attach the topic list, activate the certificate and bind it to the device.

    A whitelisted device becomes provisioned with it; a provisioned device's
    earlier certificate is replaced (revoked).
    """
    issued = _find_issued(connector, cert_id, arn)
    device = _find_device(connector, device_id)
    cleaned = validate_topics(topics if topics is not None else issued.topics)
    if issued.state == IssuedCertificate.REVOKED:
        raise Conflict("the certificate was revoked")
    if issued.device_id not in (None, device.pk):
        raise Conflict("the certificate is bound to another device; revoke it there first")
    if device.status in (Device.REVOKED, Device.EXPIRED):
        raise Conflict(f"the device is {device.status}; reset it first")
    now = timezone.now()
    with transaction.atomic():
        Credential.objects.filter(
            device=device, kind=Connector.CERTIFICATE, state=Credential.ACTIVE
        ).exclude(fingerprint=issued.fingerprint).update(state=Credential.REVOKED, revoked_at=now)
        credential, _ = Credential.objects.update_or_create(
            device=device,
            kind=Connector.CERTIFICATE,
            fingerprint=issued.fingerprint,
            state__in=[Credential.ACTIVE, Credential.INACTIVE],
            defaults={
                "state": Credential.ACTIVE,
                "certificate_pem": issued.certificate_pem,
                "serial": issued.serial,
                "not_before": issued.not_before,
                "not_after": issued.not_after,
                "issuer_fingerprint": issued.authority.fingerprint,
            },
        )
        IssuedCertificate.objects.filter(pk=issued.pk).update(
            state=IssuedCertificate.ACTIVE, topics=cleaned, device=device
        )
        provisioned = Device.objects.filter(pk=device.pk, status=Device.WHITELISTED).update(
            status=Device.PROVISIONED,
            auth_mode=Connector.CERTIFICATE,
            provisioned_at=now,
            credential_version=F("credential_version") + 1,
        )
        if provisioned:
            record_event(
                connector.pk,
                device.identity,
                Event.PROVISION,
                f"certificate serial {issued.serial} bound{_by(actor)}",
                ip,
                actor=actor,
            )
        record_event(
            connector.pk,
            device.identity,
            Event.CERTIFICATE,
            f"certificate serial {issued.serial} activated with {len(cleaned)} topic"
            f"{'' if len(cleaned) == 1 else 's'}{_by(actor)}",
            ip,
            actor=actor,
        )
    issued.refresh_from_db()
    return issued


def revoke_device_certificate(
    connector: Connector, *, cert_id, device_id, actor: Actor | None = None, ip=None
) -> IssuedCertificate | None:
    """Revoke and unbind a device's certificate."""
    if not isinstance(cert_id, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", cert_id):
        raise InvalidInput("certId is the certificate's SHA-256 fingerprint (64 hex digits)")
    device = _find_device(connector, device_id)
    fingerprint = cert_id.lower()
    bound = (
        Credential.objects.filter(
            device=device, kind=Connector.CERTIFICATE, fingerprint=fingerprint
        ).exists()
        or IssuedCertificate.objects.filter(
            authority__connector=connector, fingerprint=fingerprint, device=device
        ).exists()
    )
    if not bound:
        raise NotFound("that certificate is not bound to that device")
    revoke_certificate(connector, fingerprint, actor=actor, ip=ip)
    return IssuedCertificate.objects.filter(
        authority__connector=connector, fingerprint=fingerprint
    ).first()
