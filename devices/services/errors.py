"""Refusals a device or an admin can be told about; each API maps them to a status."""

from core import ratelimit
from core.errors import Refusal


class DeviceError(Refusal):
    """Base of every refusal a device or an admin can be told about."""


class ConnectorNotFound(DeviceError):
    default_message = "no such connector"


class IdentityRejected(DeviceError):
    default_message = "identity does not match the connector's identity format"


class IpNotAllowed(DeviceError):
    default_message = "source address is not in the connector's IP allow-list"


class NotWhitelisted(DeviceError):
    default_message = "identity is not whitelisted"


class AlreadyProvisioned(DeviceError):
    default_message = "device is already provisioned"


class AlreadyWhitelisted(DeviceError):
    default_message = "identity is already whitelisted"


class WindowExpired(DeviceError):
    default_message = "the activation window has passed"


class UnsupportedAuth(DeviceError):
    default_message = "this connector does not provision with that kind of credential"


class AuthenticationFailed(DeviceError):
    default_message = "missing or invalid credentials"


class InvalidData(DeviceError):
    default_message = "invalid data"


class CertificateNotPinnable(DeviceError):
    default_message = "the certificate cannot be pinned to this device"


class InvalidTransition(DeviceError):
    default_message = "the device cannot make that change from its current status"


RateLimited = ratelimit.RateLimited
