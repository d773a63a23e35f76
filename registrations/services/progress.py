"""What a signed-in user's pages follow while a pairing is under way: the request they
are about to confirm, and the requests they confirmed until their devices finish.

Read only, so that polling changes nothing: a request past its deadline reads as
expired here and is ended by the sweep (or by the next confirmation).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from registrations.models import Registration
from registrations.services.errors import (
    PairingExpired,
    PairingLocked,
    PairingUnavailable,
)

# How a request stands for the user who found it by PIN, or who confirmed it.
WAITING_FOR_USER = "waiting_for_user"
WAITING_FOR_DEVICE = "waiting_for_device"
PAIRED = "paired"
EXPIRED = "expired"
LOCKED = "locked"
CANCELLED = "cancelled"
TAKEN = "taken"

# How long an ended request the user confirmed is still reported to them.
ENDED_REPORTED = timedelta(days=1)
ENDED_LIMIT = 20

CONFIRM_MESSAGES = {
    WAITING_FOR_USER: "",
    EXPIRED: PairingExpired.default_message,
    LOCKED: PairingLocked.default_message,
    CANCELLED: "The device started a new registration, so this request was cancelled. "
    "Type the new PIN the device shows.",
    TAKEN: PairingUnavailable.default_message,
    WAITING_FOR_DEVICE: "You paired this device in another window. It appears under My "
    "devices once it finishes its registration.",
    PAIRED: "You paired this device in another window; it is under My devices.",
}

ENDED_MESSAGES = {
    PAIRED: "{name} finished its registration and is now in your list.",
    EXPIRED: "{name} did not finish its registration in time. Start the registration "
    "again on the device to pair it.",
    LOCKED: "{name} did not finish its registration. Start the registration again on the "
    "device to pair it.",
    CANCELLED: "{name} started a new registration. Pair it again with the PIN it shows now.",
}


@dataclass(frozen=True)
class Progress:
    """Where one request stands for one user, and what to tell them."""

    state: str
    message: str


def standing(registration: Registration, user, now=None) -> str:
    """How `registration` stands for `user` (one of the states above)."""
    now = now or timezone.now()
    if registration.locked_at is not None:
        return LOCKED
    if registration.status == Registration.REVOKED:
        return CANCELLED
    if registration.status == Registration.EXPIRED or (
        registration.status in Registration.PENDING and registration.expires_at <= now
    ):
        return EXPIRED
    if registration.status == Registration.PENDING_USER_CONFIRMATION:
        return WAITING_FOR_USER
    if registration.user_id != user.pk:
        return TAKEN
    if registration.status == Registration.PENDING_DEVICE_COMPLETION:
        return WAITING_FOR_DEVICE
    return PAIRED


def pairing_progress(user, rid) -> Progress:
    """Where the request `find_pairing` found for `user` stands while they look at it.

    `rid` comes from the user's session only; a request that no longer exists
    raises PairingUnavailable.
    """
    registration = Registration.objects.filter(rid=rid).first() if rid else None
    if registration is None:
        raise PairingUnavailable()
    state = standing(registration, user)
    return Progress(state, CONFIRM_MESSAGES[state])


def ended_pairings(user, now=None) -> list[dict]:
    """The requests `user` confirmed lately that no longer wait for their device, newest
    first, each with what to tell the user about it."""
    now = now or timezone.now()
    recent = (
        Registration.objects.filter(user=user, confirmed_at__gte=now - ENDED_REPORTED)
        .exclude(status=Registration.PENDING_DEVICE_COMPLETION, expires_at__gt=now)
        .order_by("-confirmed_at")[:ENDED_LIMIT]
    )
    ended = []
    for registration in recent:
        state = standing(registration, user, now)
        if state not in ENDED_MESSAGES:
            continue
        ended.append(
            {
                "id": registration.pk,
                "name": registration.device_name,
                "outcome": state,
                "message": ENDED_MESSAGES[state].format(name=registration.device_name),
            }
        )
    return ended
