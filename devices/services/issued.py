"""Secrets Gatehouse makes for a device when it is registered, for firmware that is
given its credential at the factory instead of activating itself.

An admin asks for a whitelisted device's secret (`issue_secret`): Gatehouse
provisions the device at once, as its activation would, and answers the secret
once (a token in token mode; a password, given or made, in password mode). The
device must then be seen, over HTTP or MQTT, within the connector's activation
window (`Device.connect_by`); `end_unconnected` ends the registration of one
that was not: expired, credentials dropped, broker client removed.
"""

import secrets

from django.db import transaction
from django.utils import timezone

from audit.events import Actor, record_event
from audit.models import Event
from connectors.models import Connector
from devices import signals
from devices.models import Device
from devices.services.credentials import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_BYTES,
    credentials_changed,
)
from devices.services.errors import InvalidData, InvalidTransition, UnsupportedAuth
from devices.services.lifecycle import drop_credentials
from devices.services.provisioning import provision
from devices.services.whitelist import activation_deadline

# What a made password holds: 32 URL-safe characters, 192 bits.
MADE_SECRET_BYTES = 24


def issue_secret(
    device: Device, *, secret: str | None = None, actor: Actor | None = None, ip=None
) -> tuple[str, object]:
    """Provision a whitelisted device with a secret it is given; (the secret, the time
    by which the device must be seen). Shown once: only its hash is kept."""
    connector = device.connector
    if connector.auth_mode not in (Connector.TOKEN, Connector.PASSWORD):
        raise UnsupportedAuth("this connector's devices use TLS client certificates, not secrets")
    if secret is not None:
        if connector.auth_mode == Connector.TOKEN:
            raise InvalidData("in token mode Gatehouse makes the token; give no secret")
        size = len(secret.encode())
        if not MIN_PASSWORD_BYTES <= size <= MAX_PASSWORD_BYTES or "\x00" in secret:
            raise InvalidData(
                f"a secret is {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes, without NUL"
            )
    if device.status != Device.WHITELISTED:
        raise InvalidTransition("only a whitelisted device can be given a secret")
    password = None
    if connector.auth_mode == Connector.PASSWORD:
        password = secret if secret is not None else secrets.token_urlsafe(MADE_SECRET_BYTES)
    connect_by = activation_deadline(connector)
    with transaction.atomic():
        token = provision(connector, device.identity, password, ip)
        # Not seen yet: what the activation wrote as first and last seen was Gatehouse.
        Device.objects.filter(pk=device.pk).update(
            connect_by=connect_by, first_seen_at=None, last_seen_at=None, last_ip=None
        )
        record_event(
            connector.pk,
            device.identity,
            Event.PROVISION,
            f"secret issued by {actor or 'Gatehouse'}; "
            f"must be seen by {connect_by:%Y-%m-%d %H:%M:%S %Z}",
            ip,
            actor=actor,
        )
    issued = token if token is not None else password
    signals.secret_issued.send_robust(
        sender=Device, connector_id=connector.pk, identity=device.identity, secret=issued
    )
    return issued, connect_by


def end_unconnected(batch_size: int = 1000) -> int:
    """End the registration of devices given a secret and not seen by their deadline."""
    ended = 0
    now = timezone.now()
    due = Device.objects.filter(
        status=Device.PROVISIONED, connect_by__lte=now, last_seen_at__isnull=True
    ).select_related("connector")
    for device in due.order_by("connect_by")[:batch_size]:
        with transaction.atomic():
            claimed = Device.objects.filter(
                pk=device.pk, status=Device.PROVISIONED, last_seen_at__isnull=True
            ).update(status=Device.EXPIRED, provisioned_at=None, auth_mode="")
            if not claimed:
                continue  # seen, or changed by an admin, meanwhile
            drop_credentials(device, now)
            record_event(
                device.connector_id,
                device.identity,
                Event.EXPIRE,
                "not seen within its window after its secret was issued",
            )
            credentials_changed("expired", device.connector_id, [device])
        ended += 1
    return ended
