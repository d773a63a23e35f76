"""A device's side of secure registration: initiate, ask the status, complete.

A device with a trusted client certificate initiates and gets a PIN and a
nonce; once a signed-in user has paired it (`pairing`), the device completes
with the nonce and the same certificate, and receives an access token that only
works together with that certificate.
"""

import hmac
import re
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Event
from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from core import crypto, ratelimit
from devices import services as device_services
from devices.models import Device
from devices.services.credentials import credentials_changed, hash_token, next_version
from registrations.models import Registration, SecureDevice
from registrations.services.errors import (
    AlreadyRegistered,
    CertificateMismatch,
    InvalidRequest,
    NotConfirmed,
    RegistrationClosed,
    RegistrationError,
    RegistrationNotFound,
    UnknownDeviceType,
    WrongNonce,
)
from registrations.services.events import REGISTER
from registrations.services.expiry import expire_if_due
from registrations.services.pairing import new_pin, pin_digest
from registrations.services.trust import (
    require_certificate,
    require_own_identity,
    require_trust,
    serial_suffix,
    subject_of,
)

PUBLIC_ID = re.compile(r"[0-9a-f]{32}")
# Fixed, so a user's public id (`uid`) never changes.
USER_ID_NAMESPACE = uuid.UUID("6f1c0f6e-3a52-4c39-9d57-3f0b8f0f6a11")

# A device row in these states may be claimed by a secure registration: the certificate,
# not the activation window, is what admits it (a released device waits as whitelisted,
# and may expire there before its next owner pairs it).
CLAIMABLE = (Device.WHITELISTED, Device.EXPIRED)


def public_user_id(user) -> str:
    """The `uid` devices are told: stable, 32 hex digits, not the database key."""
    return uuid.uuid5(USER_ID_NAMESPACE, str(user.pk)).hex


def _closed(registration: Registration) -> RegistrationError:
    """The refusal for a registration that is no longer pending."""
    if registration.status == Registration.REGISTERED:
        return AlreadyRegistered("this registration is already complete")
    if registration.locked_at is not None:
        return RegistrationClosed("this registration was locked after too many wrong PIN guesses")
    return RegistrationClosed(f"this registration is {registration.status.lower()}")


def initiate_registration(
    device_type_id, vendor_device_id, certificate, ip
) -> tuple[Registration, str, str]:
    """Start a registration. Returns it with the clear PIN and nonce.

    The certificate may register only the device it speaks for
    (`certificate_identity`). An earlier pending request for the same device turns
    REVOKED: it was started by a certificate for this same device, as every request is.
    """
    certificate = require_certificate(certificate)
    if not isinstance(device_type_id, str) or not isinstance(vendor_device_id, str):
        raise InvalidRequest('"deviceTypeId" and "vendorDeviceId" are required strings')
    connector = Connector.objects.filter(pk=device_type_id).first() if device_type_id else None
    if connector is None:
        raise UnknownDeviceType()
    fingerprint = crypto.fingerprint(certificate)
    ratelimit.hit(
        "registration", fingerprint, ratelimit.Rate.parse(settings.RATE_LIMIT_REGISTRATION)
    )
    require_trust(connector, certificate, vendor_device_id[:160], ip)
    try:
        identity = normalize_identity(vendor_device_id, connector.identity_format)
    except InvalidIdentity as exc:
        raise InvalidRequest(f"vendorDeviceId: {exc}") from exc
    require_own_identity(connector, certificate, fingerprint, identity, ip)
    if (
        Device.objects.filter(connector=connector, identity=identity)
        .exclude(status__in=CLAIMABLE)
        .exists()
    ):
        device_services.record_event(
            connector.pk, identity, REGISTER, "refused: the device is already registered", ip
        )
        raise AlreadyRegistered()

    pin, nonce = new_pin(), secrets.token_hex(16)
    serial = crypto.serial_hex(certificate)
    for attempt in range(2):
        try:
            with transaction.atomic():
                registration = _replace_pending(
                    connector, identity, pin, nonce, certificate, fingerprint, serial, ip
                )
            break
        except IntegrityError:
            # A concurrent request for the same device won the insert; this one
            # now revokes it in turn, as a later request should.
            if attempt:
                raise
    return registration, pin, nonce


def _replace_pending(connector, identity, pin, nonce, certificate, fingerprint, serial, ip):
    now = timezone.now()
    earlier = list(
        Registration.objects.select_for_update()
        .filter(connector=connector, vendor_device_id=identity, status__in=Registration.PENDING)
        .values_list("pk", "rid")
    )
    if earlier:
        Registration.objects.filter(pk__in=[pk for pk, _ in earlier]).update(
            status=Registration.REVOKED
        )
        for _, rid in earlier:
            device_services.record_event(
                connector.pk, identity, REGISTER, f"registration {rid} revoked by a newer one", ip
            )
    registration = Registration.objects.create(
        connector=connector,
        vendor_device_id=identity,
        pin_hash=pin_digest(pin),
        nonce_hash=hash_token(nonce),
        certificate_fingerprint=fingerprint,
        certificate_serial=serial,
        serial_suffix=serial_suffix(serial),
        certificate_subject=subject_of(certificate),
        expires_at=now + timedelta(seconds=settings.REGISTRATION_WINDOW_SECONDS),
        source_ip=ip,
    )
    device_services.record_event(
        connector.pk,
        identity,
        REGISTER,
        f"registration {registration.rid} started; waiting for a user to pair it",
        ip,
    )
    return registration


def _registration_for_device(rid, certificate, ip) -> Registration:
    """The registration `rid`, if `certificate` is the one that started it (404, 403)."""
    certificate = require_certificate(certificate)
    registration = (
        Registration.objects.select_related("connector").filter(rid=rid).first()
        if isinstance(rid, str) and PUBLIC_ID.fullmatch(rid)
        else None
    )
    if registration is None:
        raise RegistrationNotFound()
    if not hmac.compare_digest(
        registration.certificate_fingerprint, crypto.fingerprint(certificate)
    ):
        device_services.record_event(
            registration.connector_id,
            registration.vendor_device_id,
            Event.AUTH_FAILED,
            f"registration {registration.rid}: not the certificate that started it",
            ip,
        )
        raise CertificateMismatch()
    require_trust(registration.connector, certificate, registration.vendor_device_id, ip)
    return registration


def registration_status(rid, certificate, ip) -> Registration:
    registration = _registration_for_device(rid, certificate, ip)
    expire_if_due(registration)
    return registration


def complete_registration(rid, nonce, certificate, ip) -> tuple[Registration, SecureDevice, str]:
    """Finish a registration the user confirmed.

    Returns the registration, the secure device and its clear access token.
    """
    registration = _registration_for_device(rid, certificate, ip)
    if not isinstance(nonce, str) or not nonce:
        raise InvalidRequest('"nonce" is required')
    expire_if_due(registration)
    if registration.status == Registration.PENDING_USER_CONFIRMATION:
        raise NotConfirmed()
    if registration.status != Registration.PENDING_DEVICE_COMPLETION:
        raise _closed(registration)
    if not hmac.compare_digest(registration.nonce_hash, hash_token(nonce)):
        device_services.record_event(
            registration.connector_id,
            registration.vendor_device_id,
            Event.AUTH_FAILED,
            f"registration {registration.rid}: wrong nonce",
            ip,
        )
        raise WrongNonce()

    now = timezone.now()
    token = secrets.token_hex(16)
    with transaction.atomic():
        claimed = Registration.objects.filter(
            pk=registration.pk,
            status=Registration.PENDING_DEVICE_COMPLETION,
            expires_at__gt=now,
        ).update(status=Registration.REGISTERED, completed_at=now)
        if not claimed:
            registration.refresh_from_db()
            raise _closed(registration)
        device = _admit_device(registration, now, ip)
        secure, _ = SecureDevice.objects.update_or_create(
            device=device,
            defaults={
                # A new owner gets a new public device id.
                "did": uuid.uuid4().hex,
                "certificate_fingerprint": registration.certificate_fingerprint,
                "certificate_serial": registration.certificate_serial,
                "token_hash": hash_token(token),
                "registered_at": now,
            },
        )
        Registration.objects.filter(pk=registration.pk).update(device=device)
        owner = registration.user.get_username() if registration.user else "nobody"
        device_services.record_event(
            device.connector_id,
            device.identity,
            Event.PROVISION,
            f"secure registration {registration.rid} completed; owned by {owner}",
            ip,
        )
    registration.refresh_from_db()
    return registration, secure, token


def _admit_device(registration: Registration, now, ip) -> Device:
    """The registration's device, provisioned and owned by the confirming user."""
    fields = {
        "status": Device.PROVISIONED,
        "auth_mode": Connector.CERTIFICATE,
        "owner": registration.user,
        "name": registration.device_name,
        "provisioned_at": now,
        "last_seen_at": now,
        "last_ip": ip,
    }
    device = (
        Device.objects.select_for_update()
        .filter(connector_id=registration.connector_id, identity=registration.vendor_device_id)
        .first()
    )
    if device is None:
        try:
            with transaction.atomic():
                device = Device.objects.create(
                    connector_id=registration.connector_id,
                    identity=registration.vendor_device_id,
                    first_seen_at=now,
                    **fields,
                )
        except IntegrityError as exc:
            raise AlreadyRegistered() from exc
        # A new device: no earlier credential to outdate.
        credentials_changed("registered", device.connector_id, [device], version_bumped=True)
        return device
    # The conditional update is the claim: of two completions only one sees it claimable.
    claimed = Device.objects.filter(pk=device.pk, status__in=CLAIMABLE).update(
        first_seen_at=device.first_seen_at or now,
        credential_version=next_version(),
        **fields,
    )
    if not claimed:
        raise AlreadyRegistered()
    credentials_changed("registered", device.connector_id, [device], version_bumped=True)
    device.refresh_from_db()
    return device
