"""The refusals every certificate service raises, and the one way they log what they did."""

from audit.events import Actor
from audit.models import Event
from core.errors import Refusal
from devices.services import record_event


class CertificateError(Refusal):
    """Base of every refusal of the certificate services; the message says why."""


class InvalidInput(CertificateError):
    default_message = "invalid input"


class NotFound(CertificateError):
    default_message = "not found"


class Conflict(CertificateError):
    default_message = "conflicts with the current state"


class NoAuthority(Conflict):
    default_message = "this connector has no certificate authority; create one first"


class TooManyRequests(CertificateError):
    default_message = "too many requests"

    def __init__(self, retry_after: int):
        super().__init__(f"too many requests; retry after {retry_after} s")
        self.retry_after = retry_after


class KeyUnavailable(CertificateError):
    default_message = "the CA key cannot be used with the configured CA_KEY_ENCRYPTION_KEY"


def log_certificate_event(
    connector_id: str,
    identity: str,
    what: str,
    *,
    actor: Actor | None = None,
    ip=None,
    kind: str = Event.CERTIFICATE,
) -> None:
    """One line in the connector's log, naming who did it when someone did."""
    by = f" by {actor}" if actor else ""
    record_event(connector_id, identity, kind, f"{what}{by}", ip, actor=actor)
