"""Signals other parts of Gatehouse hook into.

`credentials_changed` is the one place to learn that what authenticates a
device changed: it was provisioned, reset, revoked or deleted, its certificate
was revoked, its connector went away. It is sent once the change has committed
(never for a transaction that rolled back), by
`devices.services.credentials.credentials_changed()`, which every such site
calls. Receivers (the MQTT broker sync, for one) get ``changes``, a list of
`CredentialChange`; a change to a whole connector carries ``device_id=None``.
A receiver must not raise: the change has already happened.
"""

from dataclasses import dataclass

from django.dispatch import Signal


@dataclass(frozen=True, slots=True)
class CredentialChange:
    # provisioned, registered (secure registration), reset, revoked, deleted,
    # certificate_revoked, certificate_bound, certificate_pinned; connector-wide
    # (device_id None): connector_deleted, trust_changed (a trust anchor or CA).
    reason: str
    connector_id: str
    device_id: int | None = None
    identity: str | None = None


credentials_changed = Signal()

# The clear secret of a device's new credential (a token Gatehouse made, a password
# the device chose), sent once, right after it is stored hashed: the only moment it
# exists. Sent with ``connector_id``, ``identity`` and ``secret``. Receivers (the
# MQTT broker sync, which must hand it to the broker) never log it and keep it only
# sealed; a receiver must not raise.
secret_issued = Signal()

# A value a device's maker wrote to one of its aliases (a command to the device), sent
# once the write has committed, with ``connector_id``, ``identity``, ``alias``,
# ``value`` and ``actor`` (audit.events.Actor). Receivers (the MQTT side publishes it
# to the device's command topic) must not raise: the write has happened.
command_issued = Signal()
