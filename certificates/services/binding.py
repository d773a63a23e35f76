"""Certificates bound to devices: pinned in a whitelist entry, bound by an app after it
generated one, unbound and revoked."""

import re
from datetime import datetime

from cryptography import x509
from django.db import transaction
from django.utils import timezone

from certificates import crypto
from certificates.models import IssuedCertificate
from certificates.services.base import (
    Conflict,
    InvalidInput,
    NotFound,
    log_certificate_event,
)
from certificates.services.issuing import check_topics
from certificates.services.revocation import revoke_certificate
from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from devices.models import Credential, Device, Event
from devices.services.credentials import credentials_changed
from devices.services.events import Actor

FINGERPRINT = re.compile(r"[0-9a-fA-F]{64}")


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


def find_device(connector: Connector, identity) -> Device:
    """The connector's device with this identity, in any form its identity format reads."""
    if not isinstance(identity, str) or not identity:
        raise InvalidInput("the device identity is required")
    try:
        identity = normalize_identity(identity, connector.identity_format)
    except InvalidIdentity as exc:
        raise InvalidInput(f"device identity: {exc}") from exc
    device = Device.objects.filter(connector=connector, identity=identity).first()
    if device is None:
        raise NotFound(f"no device {identity!r} on this connector")
    return device


def check_fingerprint(fingerprint) -> str:
    if not isinstance(fingerprint, str) or not FINGERPRINT.fullmatch(fingerprint):
        raise InvalidInput("a certificate is named by its SHA-256 fingerprint (64 hex digits)")
    return fingerprint.lower()


def find_issued(connector: Connector, fingerprint) -> IssuedCertificate:
    """A certificate the connector's CA issued, by its SHA-256 fingerprint."""
    issued = (
        IssuedCertificate.objects.select_related("authority")
        .filter(authority__connector=connector, fingerprint=check_fingerprint(fingerprint))
        .first()
    )
    if issued is None:
        raise NotFound("no certificate with that fingerprint on this connector")
    return issued


def provision_certificate(
    connector: Connector,
    *,
    fingerprint: str,
    identity: str,
    topics: list | None = None,
    actor: Actor | None = None,
    ip=None,
) -> IssuedCertificate:
    """Attach the topic list, activate the certificate and bind it to the device.

    A whitelisted device becomes provisioned with it; a provisioned device's
    earlier certificate is replaced (revoked).
    """
    issued = find_issued(connector, fingerprint)
    device = find_device(connector, identity)
    cleaned = check_topics(topics if topics is not None else issued.topics)
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
        )
        # Bound to a provisioned device too: its earlier certificates were revoked above.
        credentials_changed("certificate_bound", connector.pk, [device])
        if provisioned:
            log_certificate_event(
                connector.pk,
                device.identity,
                f"certificate serial {issued.serial} bound",
                actor=actor,
                ip=ip,
                kind=Event.PROVISION,
            )
        log_certificate_event(
            connector.pk,
            device.identity,
            f"certificate serial {issued.serial} activated with {len(cleaned)} topic"
            f"{'' if len(cleaned) == 1 else 's'}",
            actor=actor,
            ip=ip,
        )
    issued.refresh_from_db()
    return issued


def revoke_device_certificate(
    connector: Connector,
    *,
    fingerprint: str,
    identity: str,
    actor: Actor | None = None,
    ip=None,
) -> None:
    """Revoke a certificate bound to the device, and unbind it; its next request fails."""
    fingerprint = check_fingerprint(fingerprint)
    device = find_device(connector, identity)
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
