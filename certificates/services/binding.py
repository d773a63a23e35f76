"""Certificates bound to devices: bound by an app after it generated one, unbound and
revoked (pinning one in a whitelist entry is devices.services.pinning)."""

import re

from django.db import transaction
from django.utils import timezone

from audit.events import Actor
from audit.models import Event
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
from devices.models import Credential, Device
from devices.services.credentials import credentials_changed

FINGERPRINT = re.compile(r"[0-9a-fA-F]{64}")


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
