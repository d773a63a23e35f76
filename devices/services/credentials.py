"""Device secrets (tokens, the key under which a verified password is remembered)
and the one hook for a change in what authenticates a device.

Every change to a device's credentials goes through `credentials_changed()`:
provisioning (token, password, certificate, secure registration), reset,
revoke, delete, a certificate revoked or bound, a pinned certificate replaced,
and connector-wide changes (connector deleted, trust anchor or CA changed). It

1. adds one to each device's `credential_version`, which remembered password
   verifications are checked against. A site whose change is a single
   conditional UPDATE (a claim: activation, certificate first use, secure
   registration) puts `credential_version=next_version()` in that statement
   instead and passes `version_bumped=True`;
2. bumps the generation stamps (core.generations) of the devices, or of the
   connector for a connector-wide change, so that every web process drops what
   it remembered under them (the write queue's snapshots);
3. sends `devices.signals.credentials_changed` once the transaction commits.
"""

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.db import router, transaction
from django.db.models import F

from core import generations
from devices import signals
from devices.models import Device

logger = logging.getLogger(__name__)

TOKEN_LENGTH = 40
MIN_PASSWORD_BYTES = 20
MAX_PASSWORD_BYTES = 1024


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """40 characters from 240 random bits (base64url alphabet)."""
    return secrets.token_urlsafe(30)[:TOKEN_LENGTH]


def password_cache_key(connector_id: str, presented: str) -> str:
    """The key a verified identity:password (`presented`, as sent) is remembered under.

    A fast keyed hash of what was presented: the clear password never reaches
    the cache, and a hit needs no split of identity from password.
    """
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        f"{connector_id}\0{presented}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"devpw:{digest}"


def next_version() -> F:
    """The value of `credential_version` in a claim's UPDATE that changes credentials."""
    return F("credential_version") + 1


def connector_deleting(sender, instance, using, **kwargs) -> None:
    """pre_delete of a connector: nothing of its devices authenticates any more."""
    credentials_changed("connector_deleted", instance.pk, using=using)


def credentials_changed(
    reason: str,
    connector_id: str,
    devices: Iterable[Device] = (),
    *,
    version_bumped: bool = False,
    using: str | None = None,
) -> None:
    """What authenticates these devices (or, without devices, any device of the
    connector) changed: bump their credential version and stamps, and tell the
    receivers of `devices.signals.credentials_changed` after commit.

    Call it inside the transaction that makes the change.
    """
    devices = list(devices)
    using = using or router.db_for_write(Device)
    if devices and not version_bumped:
        Device.objects.using(using).filter(pk__in=[device.pk for device in devices]).update(
            credential_version=next_version()
        )
    if devices:
        keys = [generations.device_key(device.pk) for device in devices]
        changes = [
            signals.CredentialChange(reason, connector_id, device.pk, device.identity)
            for device in devices
        ]
    else:
        keys = [generations.connector_key(connector_id)]
        changes = [signals.CredentialChange(reason, connector_id)]
    generations.bump(*keys, using=using)
    transaction.on_commit(lambda: _send(changes), using=using)


def _send(changes: list[signals.CredentialChange]) -> None:
    for receiver, error in signals.credentials_changed.send_robust(
        sender=signals.CredentialChange, changes=changes
    ):
        if isinstance(error, Exception):
            logger.error(
                "credentials_changed receiver %r failed: %r", receiver, error, exc_info=error
            )
