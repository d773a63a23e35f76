"""A certificate pinned in a whitelist entry (the CSV column "TLS Client Certificate",
the console's and the API's certificate field): only that certificate can then
provision the device."""

from datetime import datetime

from cryptography import x509
from django.db import transaction
from django.utils import timezone

from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from core import crypto
from devices.models import Credential, Device
from devices.services.credentials import credentials_changed
from devices.services.errors import CertificateNotPinnable, InvalidTransition


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
        raise CertificateNotPinnable(str(exc)) from exc
    if device.status != Device.WHITELISTED:
        raise InvalidTransition(
            "only a whitelisted device's certificate can be pinned; reset it first"
        )
    with transaction.atomic():
        Credential.objects.filter(
            device=device, kind=Connector.CERTIFICATE, state=Credential.INACTIVE
        ).delete()
        credentials_changed("certificate_pinned", device.connector_id, [device])
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
