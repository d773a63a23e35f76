"""Secure registration with PIN pairing, and secure messages (§3.3, seed 000).

Plain functions raising `RegistrationError`s; the /v1.1/ device API, the
WebSocket consumer and the pairing pages each map them with one table. What a
registered device and its owner do afterwards is in `secure_devices`.

The flow: a device with a trusted client certificate initiates and gets a
PIN and a nonce; a signed-in user types the PIN and the last four hex digits
of the certificate's serial number and confirms; the device completes with
the nonce and the same certificate, and receives an access token that only
works together with that certificate.
"""

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from datetime import timedelta

from cryptography import x509
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from certificates import crypto
from certificates.models import IssuedCertificate
from certificates.services import GENERATED_COMMON_NAME, chains_to_connector
from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from devices import services as device_services
from devices.models import Device, Event
from devices.services.credentials import hash_token
from portal import ratelimit
from portal.errors import Refusal
from registrations.models import PairingGuess, Registration, SecureDevice

logger = logging.getLogger(__name__)

# Eight characters without look-alikes (no 0/O, 1/I/L): 31**8, about 40 bits.
PIN_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PIN_LENGTH = 8
PUBLIC_ID = re.compile(r"[0-9a-f]{32}")
SERIAL_SUFFIX = re.compile(r"[0-9a-f]{4}")
# Fixed, so a user's public id (`uid`) never changes.
USER_ID_NAMESPACE = uuid.UUID("6f1c0f6e-3a52-4c39-9d57-3f0b8f0f6a11")

# A device row in these states may be claimed by a secure registration: the certificate,
# not the activation window, is what admits it (a released device waits as whitelisted,
# and may expire there before its next owner pairs it).
CLAIMABLE = (Device.WHITELISTED, Device.EXPIRED)

# Event kinds of this flow (§2).
REGISTER = "register"
PAIR = "pair"
PAIR_FAILED = "pair_failed"


class RegistrationError(Refusal):
    """Base of every refusal in secure registration, pairing and messaging."""


class InvalidRequest(RegistrationError):
    default_message = "invalid request"


class CertificateRequired(RegistrationError):
    default_message = "a client certificate is required"


class CertificateNotTrusted(RegistrationError):
    default_message = "the client certificate is not trusted for this device type"


class CertificateMismatch(RegistrationError):
    default_message = "the client certificate does not match the info in the request"


# Seed 000's words for a certificate that asks to register another device.
NOT_THIS_CERTIFICATES_DEVICE = "Client certificates do not match the info in the request"


class UnknownDeviceType(RegistrationError):
    default_message = "no such device type"


class RegistrationNotFound(RegistrationError):
    default_message = "no such registration"


class AlreadyRegistered(RegistrationError):
    default_message = "a device with this device type and vendor device id is already registered"


class NotConfirmed(RegistrationError):
    default_message = "the user has not confirmed this registration yet"


class RegistrationClosed(RegistrationError):
    default_message = "this registration is closed"


class WrongNonce(RegistrationError):
    default_message = "the nonce does not match"


class InvalidToken(RegistrationError):
    default_message = "missing or invalid access token"


class WrongDevice(RegistrationError):
    default_message = "sdid is not the device this access token belongs to"


class InvalidPairingInput(RegistrationError):
    default_message = "check the PIN and the serial number digits"


class WrongPairingCode(RegistrationError):
    default_message = (
        "No device waiting to be paired matches that PIN and serial number. "
        "Check both and try again."
    )


class PairingExpired(RegistrationError):
    default_message = (
        "This pairing request has expired. Start the registration again on the device "
        "to get a new PIN."
    )


class PairingLocked(RegistrationError):
    default_message = (
        "This pairing request was locked after too many wrong guesses. Start the "
        "registration again on the device to get a new PIN."
    )


class PairingUnavailable(RegistrationError):
    default_message = "This pairing request is no longer waiting for you to confirm it."


RateLimited = ratelimit.RateLimited


# --- secrets and certificates ------------------------------------------------------


def new_pin() -> str:
    return "".join(secrets.choice(PIN_ALPHABET) for _ in range(PIN_LENGTH))


def pin_digest(pin: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), pin.encode(), hashlib.sha256).hexdigest()


def serial_suffix(serial: str) -> str:
    """The last four hex digits, counting leading zeros of a short serial."""
    return serial.zfill(4)[-4:]


def _subject(certificate: x509.Certificate) -> str:
    try:
        return certificate.subject.rfc4514_string()[:300]
    except ValueError:
        return ""


def public_user_id(user) -> str:
    """The `uid` devices are told: stable, 32 hex digits, not the database key."""
    return uuid.uuid5(USER_ID_NAMESPACE, str(user.pk)).hex


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
    format, as certificate authentication reads it (§3.1). So a re-issued
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
        if issued.common_name == GENERATED_COMMON_NAME:
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


def _closed(registration: Registration) -> RegistrationError:
    """The refusal for a registration that is no longer pending."""
    if registration.status == Registration.REGISTERED:
        return AlreadyRegistered("this registration is already complete")
    if registration.locked_at is not None:
        return RegistrationClosed("this registration was locked after too many wrong PIN guesses")
    return RegistrationClosed(f"this registration is {registration.status.lower()}")


# --- the device's side ---------------------------------------------------------------


def initiate_registration(
    device_type_id, vendor_device_id, certificate, ip
) -> tuple[Registration, str, str]:
    """Start a registration (seed 000 step 3). Returns it with the clear PIN and nonce.

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
        certificate_subject=_subject(certificate),
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


def _expire_if_due(registration: Registration, now=None) -> None:
    """Expire on read, so a request past its deadline ends even when no worker runs."""
    now = now or timezone.now()
    if registration.status not in Registration.PENDING or registration.expires_at > now:
        return
    claimed = Registration.objects.filter(
        pk=registration.pk, status__in=Registration.PENDING, expires_at__lte=now
    ).update(status=Registration.EXPIRED)
    if claimed:
        device_services.record_event(
            registration.connector_id,
            registration.vendor_device_id,
            Event.EXPIRE,
            f"registration {registration.rid} expired before it was completed",
        )
    registration.refresh_from_db(fields=["status"])


def registration_status(rid, certificate, ip) -> Registration:
    registration = _registration_for_device(rid, certificate, ip)
    _expire_if_due(registration)
    return registration


def complete_registration(rid, nonce, certificate, ip) -> tuple[Registration, SecureDevice, str]:
    """Finish a registration the user confirmed (seed 000 step 15).

    Returns the registration, the secure device and its clear access token.
    """
    registration = _registration_for_device(rid, certificate, ip)
    if not isinstance(nonce, str) or not nonce:
        raise InvalidRequest('"nonce" is required')
    _expire_if_due(registration)
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
                return Device.objects.create(
                    connector_id=registration.connector_id,
                    identity=registration.vendor_device_id,
                    first_seen_at=now,
                    **fields,
                )
        except IntegrityError as exc:
            raise AlreadyRegistered() from exc
    # The conditional update is the claim: of two completions only one sees it claimable.
    claimed = Device.objects.filter(pk=device.pk, status__in=CLAIMABLE).update(
        first_seen_at=device.first_seen_at or now,
        credential_version=F("credential_version") + 1,
        **fields,
    )
    if not claimed:
        raise AlreadyRegistered()
    device.refresh_from_db()
    return device


# --- the user's side: pairing ------------------------------------------------------------


def normalize_pin(raw) -> str:
    pin = re.sub(r"[\s-]", "", raw if isinstance(raw, str) else "").upper()
    if len(pin) != PIN_LENGTH or any(char not in PIN_ALPHABET for char in pin):
        raise InvalidPairingInput(
            f"A PIN is {PIN_LENGTH} letters and digits; it never holds 0, 1, I, L or O."
        )
    return pin


def normalize_serial_suffix(raw) -> str:
    suffix = (raw if isinstance(raw, str) else "").strip().lower()
    if not SERIAL_SUFFIX.fullmatch(suffix):
        raise InvalidPairingInput(
            "Type the last 4 characters (0-9, A-F) of the device certificate's serial number."
        )
    return suffix


# How long an ended request is still recognised by its PIN, to say why it cannot pair.
RECENTLY_ENDED = timedelta(days=1)


def pairing_refusal(registration: Registration, now=None) -> RegistrationError | None:
    """Why a user cannot confirm this registration now, or None when they can."""
    now = now or timezone.now()
    if registration.locked_at is not None:
        return PairingLocked()
    if registration.status == Registration.EXPIRED or (
        registration.status in Registration.PENDING and registration.expires_at <= now
    ):
        return PairingExpired()
    if registration.status != Registration.PENDING_USER_CONFIRMATION:
        return PairingUnavailable()
    return None


def find_pairing(user, pin, suffix, ip) -> Registration:
    """The request waiting for `user` under this PIN and serial suffix (seed 001).

    The PIN and the serial digits alone find the device, whichever device type it
    is: the page lists no device types, so no user learns another tenant's
    connectors or that they have devices waiting.

    Every guess is spent before it is judged, so a burst of concurrent guesses
    gets no further than one at a time would: one of the user's
    RATE_LIMIT_PAIRING_FAILURES (given back when the guess is right), and, at each
    pending request that matches either half, one of the user's own
    PAIRING_MAX_ATTEMPTS there together with one of the request's: of its
    PAIRING_MAX_ATTEMPTS_TOTAL for a wrong PIN (the serial digits are printed on
    the device and no secret, so no one account may use up a request), or of its
    PAIRING_MAX_ATTEMPTS for wrong serial digits with its PIN (whoever types those
    saw the PIN). The last one locks the request, in the same statement.
    """
    pin, suffix = normalize_pin(pin), normalize_serial_suffix(suffix)
    failures = ratelimit.Rate.parse(settings.RATE_LIMIT_PAIRING_FAILURES)
    guess = ratelimit.spend("pairfail", str(user.pk), failures)
    digest = pin_digest(pin)
    now = timezone.now()
    candidates = list(
        Registration.objects.filter(Q(serial_suffix=suffix) | Q(pin_hash=digest))
        .filter(
            Q(status=Registration.PENDING_USER_CONFIRMATION)
            # Recently ended ones too, so the user is told why they cannot pair.
            | Q(status=Registration.EXPIRED, expires_at__gt=now - RECENTLY_ENDED)
        )
        .order_by("-id")[:50]
    )
    for registration in candidates:
        if registration.serial_suffix == suffix and hmac.compare_digest(
            registration.pin_hash, digest
        ):
            guess.give_back()
            return _judge_right_guess(registration, user, now)

    username = user.get_username()
    counted = [
        registration
        for registration in candidates
        if registration.status == Registration.PENDING_USER_CONFIRMATION
        and registration.expires_at > now
        and _count_wrong_guess(registration, user, suffix, now, ip)
    ]
    if not counted:
        # A guess that matches no waiting request (or none that still counts this
        # user's guesses) concerns no connector's log.
        logger.info("user %s: wrong pairing PIN and serial digits", username)
    if guess.remaining == 0:
        logger.warning(
            "user %s slowed down after %s wrong pairing guesses within %s s",
            username,
            failures.count,
            failures.seconds,
        )
        for registration in counted:
            device_services.record_event(
                registration.connector_id,
                registration.vendor_device_id,
                PAIR_FAILED,
                f"user {username} slowed down after {failures.count} wrong pairing guesses "
                f"within {failures.seconds} s",
                ip,
            )
    raise WrongPairingCode()


def _guess_allowed(now):
    """A request still taking guesses: waiting for its user, unlocked, in time, and
    with guesses left."""
    return Q(
        status=Registration.PENDING_USER_CONFIRMATION,
        locked_at__isnull=True,
        expires_at__gt=now,
        failed_attempts__lt=settings.PAIRING_MAX_ATTEMPTS_TOTAL,
        wrong_serial_attempts__lt=settings.PAIRING_MAX_ATTEMPTS,
    )


def _judge_right_guess(registration: Registration, user, now) -> Registration:
    """A right PIN and serial digits pair only while the request takes guesses, and
    takes them from this user.

    The guess takes one of the request's attempts while it is judged and gives it
    back: a right guess in a burst of wrong ones succeeds only if it came before
    the attempts ran out, as it would have one at a time. A user who spent their
    own share of guesses at the request is answered as if the guess were wrong:
    telling them it was right would let them go on guessing.
    """
    spent = PairingGuess.objects.filter(
        registration=registration, user=user, wrong__gte=settings.PAIRING_MAX_ATTEMPTS
    ).exists()
    if spent and registration.locked_at is None:
        logger.info(
            "user %s: guess at registration %s not judged, their guesses there are spent",
            user.get_username(),
            registration.rid,
        )
        raise WrongPairingCode()
    _expire_if_due(registration, now)
    refusal = pairing_refusal(registration, now)
    if refusal is not None:
        raise refusal
    taken = Registration.objects.filter(_guess_allowed(now), pk=registration.pk).update(
        failed_attempts=F("failed_attempts") + 1
    )
    if not taken:
        registration.refresh_from_db()
        raise pairing_refusal(registration, now) or PairingLocked()
    Registration.objects.filter(pk=registration.pk, failed_attempts__gt=0).update(
        failed_attempts=F("failed_attempts") - 1
    )
    return registration


def _count_wrong_guess(registration: Registration, user, suffix: str, now, ip) -> bool:
    """Spend one of the user's and one of the request's attempts on a wrong guess;
    the request's last one locks it.

    The user's share and the request's count change in one transaction, each by a
    conditional UPDATE, so concurrent guesses never count past either limit and a
    guess the request no longer takes leaves the user's share as it was. False when
    the guess was not counted (the user's share spent; the request locked, ended,
    or its attempts taken).
    """
    # A candidate matched one half: not its serial digits, so its PIN.
    wrong_serial = registration.serial_suffix != suffix
    field, limit = (
        ("wrong_serial_attempts", settings.PAIRING_MAX_ATTEMPTS)
        if wrong_serial
        else ("failed_attempts", settings.PAIRING_MAX_ATTEMPTS_TOTAL)
    )
    with transaction.atomic():
        PairingGuess.objects.get_or_create(registration=registration, user=user)
        mine = PairingGuess.objects.filter(
            registration=registration, user=user, wrong__lt=settings.PAIRING_MAX_ATTEMPTS
        ).update(wrong=F("wrong") + 1)
        if not mine:
            return False
        counted = Registration.objects.filter(_guess_allowed(now), pk=registration.pk).update(
            **{
                field: F(field) + 1,
                "status": Case(
                    When(**{f"{field}__gte": limit - 1}, then=Value(Registration.EXPIRED)),
                    default=F("status"),
                ),
                "locked_at": Case(When(**{f"{field}__gte": limit - 1}, then=Value(now))),
            }
        )
        if not counted:
            transaction.set_rollback(True)
            return False
    registration.refresh_from_db(fields=[field, "locked_at"])
    username = user.get_username()
    what = "serial digits with this registration's PIN" if wrong_serial else "PIN"
    device_services.record_event(
        registration.connector_id,
        registration.vendor_device_id,
        PAIR_FAILED,
        f"user {username}: wrong {what} for registration {registration.rid} "
        f"({min(getattr(registration, field), limit)} of {limit})",
        ip,
    )
    if registration.locked_at == now:
        device_services.record_event(
            registration.connector_id,
            registration.vendor_device_id,
            PAIR_FAILED,
            f"registration {registration.rid} locked after {limit} wrong guesses "
            f"({what}); the device must start again",
            ip,
        )
    return True


def clean_device_name(raw) -> str:
    name = " ".join((raw if isinstance(raw, str) else "").split())
    if not name:
        raise InvalidPairingInput("Give the device a name.")
    if len(name) > 100:
        raise InvalidPairingInput("A device name is at most 100 characters.")
    return name


def pairing_to_confirm(rid) -> Registration:
    """The registration `find_pairing` found for the user, if it can still be confirmed."""
    registration = (
        Registration.objects.select_related("connector").filter(rid=rid).first() if rid else None
    )
    if registration is None:
        raise PairingUnavailable()
    _expire_if_due(registration)
    refusal = pairing_refusal(registration)
    if refusal is not None:
        raise refusal
    return registration


def confirm_pairing(user, rid: str, name, ip) -> Registration:
    """The user claims the request `find_pairing` found for them (seed 000 step 14)."""
    name = clean_device_name(name)
    registration = Registration.objects.filter(rid=rid).first()
    if registration is None:
        raise PairingUnavailable()
    now = timezone.now()
    _expire_if_due(registration, now)
    completion_deadline = max(
        registration.expires_at,
        now + timedelta(seconds=settings.REGISTRATION_COMPLETION_SECONDS),
    )
    with transaction.atomic():
        claimed = Registration.objects.filter(
            pk=registration.pk,
            status=Registration.PENDING_USER_CONFIRMATION,
            expires_at__gt=now,
            locked_at__isnull=True,
        ).update(
            status=Registration.PENDING_DEVICE_COMPLETION,
            user=user,
            device_name=name,
            confirmed_at=now,
            expires_at=completion_deadline,
        )
        if not claimed:
            registration.refresh_from_db()
            raise pairing_refusal(registration, now) or PairingUnavailable()
        device_services.record_event(
            registration.connector_id,
            registration.vendor_device_id,
            PAIR,
            f"registration {registration.rid} confirmed by user {user.get_username()} "
            f"as {name!r}; waiting for the device to complete",
            ip,
        )
    registration.refresh_from_db()
    return registration


def awaiting_completion(user):
    """Registrations the user confirmed whose device has not completed yet."""
    return Registration.objects.filter(
        user=user,
        status=Registration.PENDING_DEVICE_COMPLETION,
        expires_at__gt=timezone.now(),
    ).select_related("connector")


# --- expiry ----------------------------------------------------------------------------


def expire_stale_registrations(batch_size: int | None = None) -> int:
    """Mark pending registrations past their deadline EXPIRED, in batches.

    Rows are claimed under `FOR UPDATE SKIP LOCKED` (PostgreSQL) and the update
    re-checks the status, so two workers never expire one request twice.
    """
    batch_size = batch_size or settings.EXPIRY_BATCH_SIZE
    total = 0
    while True:
        now = timezone.now()
        with transaction.atomic():
            rows = list(
                Registration.objects.select_for_update(skip_locked=True)
                .filter(status__in=Registration.PENDING, expires_at__lte=now)
                .order_by("expires_at")
                .values_list("pk", "connector_id", "vendor_device_id", "rid")[:batch_size]
            )
            if not rows:
                return total
            claimed = Registration.objects.filter(
                pk__in=[row[0] for row in rows], status__in=Registration.PENDING
            ).update(status=Registration.EXPIRED)
            Event.objects.bulk_create(
                Event(
                    connector_id=connector_id,
                    identity=identity,
                    kind=Event.EXPIRE,
                    reason=f"registration {rid} expired before it was completed",
                )
                for _, connector_id, identity, rid in rows
            )
        total += claimed
        if len(rows) < batch_size:
            return total


def purge_ended_registrations(batch_size: int = 10_000) -> int:
    """Delete requests that ended longer ago than EVENT_RETENTION_DAYS (0 keeps them);
    the event log told their story, and keeps it as long as it keeps events."""
    days = settings.EVENT_RETENTION_DAYS
    if not days:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    ended = Registration.objects.exclude(status__in=Registration.PENDING).filter(
        created_at__lt=cutoff
    )
    return delete_in_batches(ended, batch_size)


def delete_in_batches(queryset, batch_size: int) -> int:
    """Short transactions, so devices registering meanwhile never wait long."""
    count = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return count
        count += queryset.model.objects.filter(pk__in=ids).delete()[0]
