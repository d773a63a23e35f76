"""Provisioning a whitelisted identity."""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from audit.events import event_row, record_event
from audit.models import Event
from connectors.models import Connector
from core import generations, ratelimit
from devices import signals, sql
from devices.models import Device
from devices.services.authentication import CONNECTOR_ID, get_connector
from devices.services.credentials import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_BYTES,
    credentials_changed,
    hash_token,
    new_token,
)
from devices.services.errors import (
    AlreadyProvisioned,
    ConnectorNotFound,
    DeviceError,
    IdentityRejected,
    IpNotAllowed,
    NotWhitelisted,
    RateLimited,
    UnsupportedAuth,
    WindowExpired,
)
from devices.services.whitelist import validate_identity


def _activation_checks(connector_id: str, identity: str, ip) -> list:
    # The identity as a device sent it may hold anything: only its digest names a key.
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return [
        (
            "act-ip",
            f"{connector_id}:{ip}",
            ratelimit.Rate.parse(settings.RATE_LIMIT_ACTIVATE_IP),
        ),
        (
            "act",
            f"{connector_id}:{digest}",
            ratelimit.Rate.parse(settings.RATE_LIMIT_ACTIVATE),
        ),
    ]


def check_activation_rate(connector: Connector, identity: str, ip) -> None:
    """Count one activation attempt per source address and per identity."""
    ratelimit.hit_all(_activation_checks(connector.pk, identity, ip))


def activate(connector_id: str, fields: dict[str, str], ip) -> str | None:
    """The device API's activation: the attempt is counted and the
    connector's generation stamp read in one cache round trip, then activate_device."""
    if not CONNECTOR_ID.fullmatch(connector_id or ""):
        raise ConnectorNotFound()
    identity = fields.get("id")
    counted, [stamp] = ratelimit.count_all(
        _activation_checks(connector_id, identity or "", ip),
        read=[generations.connector_key(connector_id)],
    )
    connector = get_connector(connector_id, stamp=stamp)
    if identity is None:
        raise IdentityRejected(f"missing id; expected {connector.identity_format.describe()}")
    return activate_device(connector, identity, fields.get("password"), ip, counted=counted)


def activate_device(
    connector: Connector,
    raw_identity: str,
    password: str | None,
    ip,
    counted: ratelimit.Counted | None = None,
) -> str | None:
    """Provision a whitelisted identity. Returns the token in token mode.

    Failures are logged as `provision_failed` events with their reason and raised.
    """
    identity = raw_identity if isinstance(raw_identity, str) else ""
    try:
        if counted is not None:
            counted.check()
        else:
            check_activation_rate(connector, identity, ip)
        if connector.auth_mode == Connector.CERTIFICATE:
            raise UnsupportedAuth("this connector provisions devices with TLS client certificates")
        if connector.auth_mode == Connector.PASSWORD:
            if password is None or len(password.encode()) < MIN_PASSWORD_BYTES:
                raise UnsupportedAuth(
                    f"a password of at least {MIN_PASSWORD_BYTES} bytes is required"
                )
            if len(password.encode()) > MAX_PASSWORD_BYTES:
                raise UnsupportedAuth(f"passwords are at most {MAX_PASSWORD_BYTES} bytes")
        if not connector.allows_ip(ip):
            raise IpNotAllowed()
        identity = validate_identity(connector, identity)
        token = provision(connector, identity, password, ip)
    except (DeviceError, RateLimited) as exc:
        reason = getattr(exc, "message", str(exc))
        record_event(connector.pk, identity, Event.PROVISION_FAILED, reason, ip)
        raise
    signals.secret_issued.send_robust(
        sender=Device,
        connector_id=connector.pk,
        identity=identity,
        secret=token if token is not None else password,
    )
    return token


def _refusal_for_unclaimed(connector: Connector, identity: str, now) -> DeviceError:
    """Why an identity could not be claimed: what the device is told."""
    device = Device.objects.filter(connector=connector, identity=identity).first()
    if device is None:
        return NotWhitelisted()
    if device.status == Device.REVOKED:
        return AlreadyProvisioned("device was revoked; an admin must reset it first")
    if device.status == Device.EXPIRED or (
        device.status == Device.WHITELISTED
        and device.activation_expires_at is not None
        and device.activation_expires_at <= now
    ):
        return WindowExpired()
    # Provisioned, possibly a moment ago by a concurrent activation.
    return AlreadyProvisioned()


def _issued(connector: Connector) -> str:
    return f"{connector.auth_mode} issued"


def _claim(connector: Connector, identity: str, password: str | None, now, ip) -> str | None:
    """Claim, issue and log in one go (devices.sql.activate); the token in token
    mode, "" in password mode, None when there was nothing to claim."""
    token = new_token() if connector.auth_mode == Connector.TOKEN else ""
    connection = connections[Device.objects.db]
    device_pk = sql.activate(
        connector.pk,
        connector.auth_mode,
        identity,
        now,
        ip,
        token_hash=hash_token(token) if token else None,
        password_hash="" if token else make_password(password),
        event=event_row(
            connection, connector.pk, identity, Event.PROVISION, _issued(connector), ip, now
        ),
    )
    if device_pk is None:
        return None
    # The claim bumped the credential version.
    device = Device(pk=device_pk, connector_id=connector.pk, identity=identity)
    credentials_changed("provisioned", connector.pk, [device], version_bumped=True)
    return token


def provision(connector: Connector, identity: str, password: str | None, ip) -> str | None:
    """The one activation, the same on every database: claim the whitelisted row;
    if there is none, say why, or (self-registration) whitelist it and claim it."""
    now = timezone.now()
    token = _claim(connector, identity, password, now, ip)
    if token is None:
        refusal = _refusal_for_unclaimed(connector, identity, now)
        if not (isinstance(refusal, NotWhitelisted) and connector.self_registration):
            raise refusal
        # A device registering its own identity: whitelist it, then claim it.
        try:
            with transaction.atomic():
                Device.objects.create(
                    connector=connector,
                    identity=identity,
                    activation_expires_at=now + timedelta(minutes=1),
                )
        except IntegrityError as exc:
            raise AlreadyProvisioned() from exc
        token = _claim(connector, identity, password, now, ip)
        if token is None:
            raise AlreadyProvisioned()
    return token or None
