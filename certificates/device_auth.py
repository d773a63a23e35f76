"""TLS client-certificate authentication of device data requests.

The device API's CertificateAuthentication (device_api) hands over here
when a request carries a client certificate and no Authorization header. A certificate already bound
to a device costs one indexed lookup by fingerprint (plus one for its issuer
when it was accepted by chain). Otherwise, in certificate mode, the first such
request of a whitelisted device provisions it, accepting in this order:

1. the certificate pinned in the whitelist entry, when there is one;
2. else one signed by the connector's CA or a trusted anchor, when it has any;
3. else the first certificate presented inside the activation window.

Every refusal is an `AuthenticationFailed` (401) whose reason goes to the event
log, never to the device.
"""

from datetime import timedelta

from cryptography import x509
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Event
from certificates import services
from certificates.models import IssuedCertificate
from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from core import crypto, ratelimit
from devices import services as device_services
from devices.models import Credential, Device
from devices.services.credentials import credentials_changed, next_version

AuthenticationFailed = device_services.AuthenticationFailed


class _Refused(Exception):
    """A refusal with the event kind and reason to log."""

    def __init__(self, reason: str, kind: str = Event.AUTH_FAILED, identity: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.identity = identity


def authenticate_certificate(connector_id: str, cert: x509.Certificate, ip) -> Device:
    """The device `cert` authenticates on this connector, provisioning it on first use."""
    failures = ratelimit.Rate.parse(settings.RATE_LIMIT_AUTH_FAILURES)
    fingerprint = crypto.fingerprint(cert)
    identity = ""
    try:
        device = _bound_device(connector_id, cert, fingerprint)
        if device is not None:
            return device
        connector = device_services.get_connector(connector_id)
        ratelimit.peek("authfail", str(ip), failures)
        identity = _check_usable(connector, cert, fingerprint)
        return _provision_on_first_use(connector, identity, cert, fingerprint, ip)
    except _Refused as refusal:
        connector = device_services.get_connector(connector_id)
        device_services.record_event(
            connector.pk, refusal.identity or identity, refusal.kind, refusal.reason, ip
        )
        ratelimit.hit("authfail", str(ip), failures)
        raise AuthenticationFailed(refusal.reason) from None


def _validity_problem(not_before, not_after, now) -> str:
    if not_after is not None and not_after <= now:
        return f"certificate expired on {not_after:%Y-%m-%d %H:%M:%S} UTC"
    if not_before is not None and now < not_before:
        return (
            f"certificate is not valid before {not_before:%Y-%m-%d %H:%M:%S} UTC "
            "(check the clock of the machine that made it)"
        )
    return ""


def _bound_device(connector_id: str, cert, fingerprint: str) -> Device | None:
    """The device whose active credential is this certificate, re-checked; else None."""
    credential = (
        Credential.objects.select_related("device__connector")
        .filter(
            fingerprint=fingerprint,
            kind=Connector.CERTIFICATE,
            state=Credential.ACTIVE,
            device__connector_id=connector_id,
        )
        .first()
    )
    if credential is None:
        return None
    device = credential.device
    now = timezone.now()
    problem = _validity_problem(credential.not_before, credential.not_after, now)
    if problem:
        raise _Refused(problem, identity=device.identity)
    if device.status != Device.PROVISIONED:
        raise _Refused(f"device is {device.status}", identity=device.identity)
    if credential.issuer_fingerprint and not services.issuer_still_trusted(
        connector_id, credential.issuer_fingerprint, now
    ):
        raise _Refused(
            "the CA that issued this certificate is no longer trusted by the connector "
            "(trust anchor disabled, deleted or expired)",
            identity=device.identity,
        )
    return device


def _check_usable(connector: Connector, cert, fingerprint: str) -> str:
    """Refuse certificates that are out of date, revoked or inactive; return the identity.

    Refusals name the device the certificate belongs to when it is known, else its CN.
    """
    try:
        common_name = crypto.common_name_of(cert.subject)
    except crypto.CryptoError as exc:
        raise _Refused(f"certificate refused: {exc}") from exc
    try:
        identity = normalize_identity(common_name, connector.identity_format)
        identity_problem = ""
    except InvalidIdentity as exc:
        identity = ""
        identity_problem = (
            f'certificate CN "{common_name[:160]}" is not an identity of this connector: {exc}'
        )
    owner = (
        Credential.objects.filter(
            device__connector=connector, kind=Connector.CERTIFICATE, fingerprint=fingerprint
        )
        .values_list("device__identity", flat=True)
        .first()
    )
    label = owner or identity or common_name[:160]
    problem = _validity_problem(cert.not_valid_before_utc, cert.not_valid_after_utc, timezone.now())
    if problem:
        raise _Refused(problem, identity=label)
    if services.is_revoked(connector, fingerprint):
        raise _Refused("certificate was revoked", identity=label)
    issued = IssuedCertificate.objects.filter(
        authority__connector=connector, fingerprint=fingerprint
    ).first()
    if issued is not None and issued.state == IssuedCertificate.INACTIVE:
        raise _Refused("certificate is inactive until it is provisioned", identity=label)
    if identity_problem:
        raise _Refused(identity_problem, identity=label)
    return identity


def _provision_on_first_use(
    connector: Connector, identity: str, cert, fingerprint: str, ip
) -> Device:
    now = timezone.now()
    device = Device.objects.filter(connector=connector, identity=identity).first()
    if device is None:
        if not (connector.self_registration and connector.auth_mode == Connector.CERTIFICATE):
            raise _Refused("identity is not whitelisted", identity=identity)
    elif device.status == Device.PROVISIONED:
        raise _Refused("device is provisioned with a different certificate", identity=identity)
    elif device.status == Device.REVOKED:
        raise _Refused("device is revoked", identity=identity)

    # From here on the request would provision: refusals are provisioning failures.
    failed = Event.PROVISION_FAILED
    if connector.auth_mode != Connector.CERTIFICATE:
        raise _Refused(
            f"this connector provisions devices with {connector.auth_mode}s, not certificates",
            failed,
            identity,
        )
    if device is not None and (
        device.status == Device.EXPIRED
        or (device.activation_expires_at is not None and device.activation_expires_at <= now)
    ):
        raise _Refused("the activation window has passed", failed, identity)
    if not connector.allows_ip(ip):
        reason = device_services.IpNotAllowed.default_message
        device_services.record_event(connector.pk, identity, failed, reason, ip)
        raise device_services.IpNotAllowed()
    try:
        device_services.check_activation_rate(connector, identity, ip)
    except ratelimit.RateLimited:
        device_services.record_event(connector.pk, identity, failed, "too many attempts", ip)
        raise

    pinned = (
        Credential.objects.filter(
            device=device, kind=Connector.CERTIFICATE, state=Credential.INACTIVE
        ).first()
        if device is not None
        else None
    )
    issuer = ""
    if pinned is not None:
        if pinned.fingerprint != fingerprint:
            raise _Refused(
                "certificate is not the one pinned in the whitelist entry", failed, identity
            )
        how = "pinned in the whitelist entry"
    elif services.has_trust(connector):
        issuer = services.trusted_issuer(connector, cert, now) or ""
        if not issuer:
            raise _Refused(
                "certificate is not signed by the connector's CA or a trusted anchor",
                failed,
                identity,
            )
        how = f"signed by {'the connector CA' if _is_ca(connector, issuer) else 'trust anchor'}"
        how += f" {issuer[:16]}…"
    else:
        how = "pinned on first use"
    return _claim(connector, device, identity, cert, fingerprint, issuer, pinned, how, ip)


def _is_ca(connector: Connector, fingerprint: str) -> bool:
    authority = services.authority_of(connector)
    return authority is not None and authority.fingerprint == fingerprint


def _claim(connector, device, identity, cert, fingerprint, issuer, pinned, how, ip) -> Device:
    """Provision the device with this certificate; of two racing requests one wins."""
    now = timezone.now()
    try:
        with transaction.atomic():
            if device is None:
                # Self-registration: the device appears as it connects the first time.
                device = Device.objects.create(
                    connector=connector,
                    identity=identity,
                    activation_expires_at=now + timedelta(minutes=1),
                )
            claimed = Device.objects.filter(
                pk=device.pk, status=Device.WHITELISTED, activation_expires_at__gt=now
            ).update(
                status=Device.PROVISIONED,
                auth_mode=Connector.CERTIFICATE,
                provisioned_at=now,
                first_seen_at=now,
                last_seen_at=now,
                last_ip=ip,
                credential_version=next_version(),
            )
            if not claimed:
                raise _Refused("device was provisioned by another request", identity=identity)
            credentials_changed("provisioned", connector.pk, [device], version_bumped=True)
            fields = {
                "state": Credential.ACTIVE,
                "certificate_pem": crypto.to_pem(cert),
                "fingerprint": fingerprint,
                "serial": crypto.serial_hex(cert),
                "not_before": cert.not_valid_before_utc,
                "not_after": cert.not_valid_after_utc,
                "issuer_fingerprint": issuer,
            }
            if pinned is not None:
                Credential.objects.filter(pk=pinned.pk).update(**fields)
            else:
                Credential.objects.create(device=device, kind=Connector.CERTIFICATE, **fields)
            IssuedCertificate.objects.filter(
                authority__connector=connector, fingerprint=fingerprint
            ).update(device=device, state=IssuedCertificate.ACTIVE)
            device_services.record_event(
                connector.pk,
                identity,
                Event.PROVISION,
                f"certificate serial {fields['serial']} {how}",
                ip,
            )
    except IntegrityError as exc:
        raise _Refused("device was provisioned by another request", identity=identity) from exc
    return Device.objects.select_related("connector").get(pk=device.pk)
