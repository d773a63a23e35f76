"""A user's side of secure registration: pair a waiting device by PIN.

The user types the PIN the device showed and the last four hex digits of its
certificate's serial number, names the device and confirms. Wrong guesses are
counted per account and per request, and lock the request at their limits.
"""

import hashlib
import hmac
import logging
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from core import ratelimit
from devices import services as device_services
from registrations.models import PairingGuess, Registration
from registrations.services.errors import (
    InvalidPairingInput,
    PairingExpired,
    PairingLocked,
    PairingUnavailable,
    RegistrationError,
    WrongPairingCode,
)
from registrations.services.events import PAIR, PAIR_FAILED
from registrations.services.expiry import expire_if_due

logger = logging.getLogger(__name__)

# Eight characters without look-alikes (no 0/O, 1/I/L): 31**8, about 40 bits.
PIN_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PIN_LENGTH = 8
SERIAL_SUFFIX = re.compile(r"[0-9a-f]{4}")


def new_pin() -> str:
    return "".join(secrets.choice(PIN_ALPHABET) for _ in range(PIN_LENGTH))


def pin_digest(pin: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), pin.encode(), hashlib.sha256).hexdigest()


def normalize_pin(raw) -> str:
    pin = re.sub(r"[\s-]", "", raw if isinstance(raw, str) else "").upper()
    if len(pin) != PIN_LENGTH or any(char not in PIN_ALPHABET for char in pin):
        raise InvalidPairingInput(
            f"A PIN is {PIN_LENGTH} letters and digits; it never holds 0, 1, I, L or O."
        )
    return pin


def normalize_serial_suffix(raw) -> str:
    # Spaces, colons and dashes may be typed as the serial is printed ("c0:ff:ee", "FF EE").
    suffix = re.sub(r"[\s:-]", "", raw if isinstance(raw, str) else "").lower()
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
    """The request waiting for `user` under this PIN and serial suffix.

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
    if _slowed_down(guess, username, failures):
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


def find_pairing_by_pin(user, pin, ip, device_type_id=None) -> Registration:
    """The request waiting under this PIN, for an app that pairs for `user` (the ARTIK
    user API's `PUT /devices/registrations/pin`): the PIN alone, narrowed to one
    device type when the app names one.

    The guess is spent from the same account budget as the pairing page's
    (RATE_LIMIT_PAIRING_FAILURES, given back when the guess is right), and a right PIN
    is judged as there: a locked, ended or spent request refuses, and a user who spent
    their own share of guesses there is answered as if the PIN were wrong. A wrong PIN
    names no request (the serial digits, which the page asks for, are what point at
    one), so it is counted against the account only: counting it at every request
    waiting would let a few accounts lock every device of a type.
    """
    pin = normalize_pin(pin)
    failures = ratelimit.Rate.parse(settings.RATE_LIMIT_PAIRING_FAILURES)
    guess = ratelimit.spend("pairfail", str(user.pk), failures)
    now = timezone.now()
    candidates = Registration.objects.filter(pin_hash=pin_digest(pin)).filter(
        Q(status=Registration.PENDING_USER_CONFIRMATION)
        | Q(status=Registration.EXPIRED, expires_at__gt=now - RECENTLY_ENDED)
    )
    if device_type_id is not None:
        candidates = candidates.filter(connector_id=device_type_id)
    registration = candidates.order_by("-id").first()
    if registration is not None:
        guess.give_back()
        return _judge_right_guess(registration, user, now)
    username = user.get_username()
    logger.info("user %s: wrong pairing PIN from an app", username)
    _slowed_down(guess, username, failures)
    raise WrongPairingCode("No device waiting to be paired matches that PIN.")


def _slowed_down(guess, username: str, failures) -> bool:
    """Whether that wrong guess used the user's last one in the window (then logged)."""
    if guess.remaining != 0:
        return False
    logger.warning(
        "user %s slowed down after %s wrong pairing guesses within %s s",
        username,
        failures.count,
        failures.seconds,
    )
    return True


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
    expire_if_due(registration, now)
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
    expire_if_due(registration)
    refusal = pairing_refusal(registration)
    if refusal is not None:
        raise refusal
    return registration


def confirm_pairing(user, rid: str, name, ip, via: str = "") -> Registration:
    """The user claims the request `find_pairing` found for them (`via` names the app
    that confirmed for them, in the connector's log)."""
    name = clean_device_name(name)
    registration = Registration.objects.filter(rid=rid).first()
    if registration is None:
        raise PairingUnavailable()
    now = timezone.now()
    expire_if_due(registration, now)
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
            f"registration {registration.rid} confirmed by user {user.get_username()}"
            f"{via} as {name!r}; waiting for the device to complete",
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
