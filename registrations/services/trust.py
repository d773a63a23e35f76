"""Which client certificate may speak for which device in secure registration.

A device proves itself with a client certificate that chains to its connector's
CA or a trust anchor, and registers only the device that certificate names.
"""

import hmac

from cryptography import x509

from audit.models import Event
from certificates.models import IssuedCertificate
from certificates.services import chains_to_connector, is_generated_name
from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from core import crypto
from devices import services as device_services
from registrations.services.errors import (
    NOT_THIS_CERTIFICATES_DEVICE,
    CertificateMismatch,
    CertificateNotTrusted,
    CertificateRequired,
)


def serial_suffix(serial: str) -> str:
    """The last four hex digits, counting leading zeros of a short serial."""
    return serial.zfill(4)[-4:]


def subject_of(certificate: x509.Certificate) -> str:
    try:
        return certificate.subject.rfc4514_string()[:300]
    except ValueError:
        return ""


def require_certificate(certificate) -> x509.Certificate:
    if certificate is None:
        raise CertificateRequired()
    return certificate


def require_trust(connector: Connector, certificate: x509.Certificate, identity: str, ip):
    if not chains_to_connector(connector, certificate):
        device_services.record_event(
            connector.pk,
            identity,
            Event.AUTH_FAILED,
            "client certificate does not chain to the connector's CA or a trust anchor, "
            "or is expired or revoked",
            ip,
        )
        raise CertificateNotTrusted()


def certificate_identity(connector: Connector, certificate: x509.Certificate, fingerprint: str):
    """The one device identity `certificate` speaks for on `connector`, or None.

    A certificate the connector's CA issued and bound to a device speaks for that
    device; any other for its subject CN read through the connector's identity
    format, as certificate authentication reads it. So a re-issued
    certificate for the same device speaks for it too, one for another device never.
    """
    issued = (
        IssuedCertificate.objects.filter(authority__connector=connector, fingerprint=fingerprint)
        .select_related("device")
        .first()
    )
    if issued is not None:
        if issued.state == IssuedCertificate.INACTIVE:
            raise CertificateNotTrusted(
                "the client certificate is inactive until it is provisioned"
            )
        if issued.device is not None:
            return issued.device.identity
        if is_generated_name(issued.common_name):
            return None  # generated for an app, and not bound to a device yet
    try:
        common_name = crypto.common_name_of(certificate.subject)
        return normalize_identity(common_name, connector.identity_format)
    except (crypto.CryptoError, InvalidIdentity):
        return None


def require_own_identity(connector, certificate, fingerprint, identity: str, ip) -> None:
    """A certificate registers only the device it speaks for: never squats another's."""
    own = certificate_identity(connector, certificate, fingerprint)
    if own is not None and hmac.compare_digest(own.encode(), identity.encode()):
        return
    device_services.record_event(
        connector.pk,
        identity,
        Event.AUTH_FAILED,
        f"registration refused: the client certificate (serial {crypto.serial_hex(certificate)}) "
        + (f'is for "{own[:60]}", not this device' if own else "names no device of this connector"),
        ip,
    )
    raise CertificateMismatch(NOT_THIS_CERTIFICATES_DEVICE)
