"""Refusals of secure registration, pairing and secure messages.

Every one derives from `RegistrationError`, itself a `Refusal`, so each dialect
(the /v1.1/ device API, the WebSocket, the pairing pages) maps them to its own
answers with one table.
"""

from dataclasses import dataclass

from core import ratelimit
from core.errors import Refusal


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


# ARTIK's words for a certificate that asks to register another device.
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


class MissingScope(RegistrationError):
    """An app's token was not granted the scope a call needs."""

    default_message = "this access token was not granted the scope this call needs"


class WrongUser(RegistrationError):
    default_message = "an app reads only the user who allowed it"


class UnknownDevice(RegistrationError):
    """Not one of the user's devices: another user's and none at all are alike."""

    default_message = "no such device"


class NotAHub(RegistrationError):
    default_message = "this device's type does not act as a hub"


class EndNodeLimit(RegistrationError):
    default_message = "this hub has as many end nodes as it may"


RateLimited = ratelimit.RateLimited


@dataclass(frozen=True)
class Quota:
    """A device's message allowance: (per minute, per day) limits, what is left, reset times."""

    limits: tuple[int, int]
    remaining: tuple[int, int]
    resets: tuple[int, int]


class MessagesRateLimited(RateLimited):
    """A device sent more messages than its quota allows."""

    def __init__(self, retry_after: int, quota: Quota):
        super().__init__(retry_after)
        self.quota = quota
