"""What a securely registered device and its owner do (§3.3, §5): the device
authenticates with its access token and certificate and sends messages (over
HTTPS or its WebSocket); the owner lists, renames and releases their devices.

Refusals are the `RegistrationError`s of `registrations.services`, so each
dialect maps them with its one table.
"""

import hmac
import json
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from certificates import crypto
from devices import services as device_services
from devices.models import Device, Event
from devices.services.credentials import hash_token
from portal import ratelimit
from registrations.models import Message, SecureDevice
from registrations.services import (
    REGISTER,
    CertificateMismatch,
    InvalidRequest,
    InvalidToken,
    RateLimited,
    WrongDevice,
    clean_device_name,
    delete_in_batches,
    require_certificate,
    require_trust,
)

# Event kinds (§2).
MESSAGE = "message"
RELEASE = "release"
RENAME = "rename"


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


# --- secure messages -------------------------------------------------------------------


def authenticate_secure_device(authorization, certificate, ip) -> Device:
    """The device behind `bearer <accessToken>`, presented with its own certificate.

    The token alone is not enough, nor the certificate alone.
    """
    certificate = require_certificate(certificate)
    failures = ratelimit.Rate.parse(settings.RATE_LIMIT_AUTH_FAILURES)
    ratelimit.peek("secure-authfail", str(ip), failures)
    scheme, _, token = (authorization if isinstance(authorization, str) else "").partition(" ")
    token = token.strip()
    secure = (
        SecureDevice.objects.select_related("device__connector")
        .filter(token_hash=hash_token(token), device__status=Device.PROVISIONED)
        .first()
        if scheme.lower() == "bearer" and token
        else None
    )
    if secure is None:
        ratelimit.hit("secure-authfail", str(ip), failures)
        raise InvalidToken()
    device = secure.device
    if not hmac.compare_digest(secure.certificate_fingerprint, crypto.fingerprint(certificate)):
        device_services.record_event(
            device.connector_id,
            device.identity,
            Event.AUTH_FAILED,
            "access token presented with another certificate than the device's",
            ip,
        )
        ratelimit.hit("secure-authfail", str(ip), failures)
        raise CertificateMismatch("the client certificate is not this device's")
    require_trust(device.connector, certificate, device.identity, ip)
    return device


def open_device_channel(authorization, sdid, certificate, ip) -> Device:
    """A device registering its WebSocket session (seed 000's "register" frame)."""
    device = authenticate_secure_device(authorization, certificate, ip)
    if sdid is not None and sdid != device.secure.did:
        raise WrongDevice()
    device_services.record_event(
        device.connector_id, device.identity, REGISTER, "device channel opened over WebSocket", ip
    )
    return device


def _window_end(rate: ratelimit.Rate, now: float) -> int:
    return (int(now // rate.seconds) + 1) * rate.seconds


def _spend_message_quota(device: Device) -> Quota:
    minute = ratelimit.Rate.parse(settings.RATE_LIMIT_MESSAGES)
    day = ratelimit.Rate.parse(settings.RATE_LIMIT_MESSAGES_DAILY)
    now = timezone.now().timestamp()
    resets = (_window_end(minute, now), _window_end(day, now))
    limits = (minute.count, day.count)
    key = str(device.pk)
    try:
        # A refused message spends neither allowance.
        remaining = tuple(ratelimit.spend_all([("msg-minute", key, minute), ("msg-day", key, day)]))
    except RateLimited as exc:
        raise MessagesRateLimited(exc.retry_after, Quota(limits, (0, 0), resets)) from exc
    return Quota(limits, remaining, resets)


def post_message(device: Device, sdid, data, channel: str, ip) -> tuple[Message, Quota]:
    """Store one message from an authenticated secure device (REST or WebSocket)."""
    did = device.secure.did
    if sdid is not None and sdid != did:
        device_services.record_event(
            device.connector_id,
            device.identity,
            Event.AUTH_FAILED,
            f"message for another device ({str(sdid)[:40]!r}) refused",
            ip,
        )
        raise WrongDevice()
    if data is None:
        raise InvalidRequest('"data" is required')
    encoded = json.dumps(data, separators=(",", ":"))
    if len(encoded.encode()) > settings.DEVICE_MAX_BODY_BYTES:
        raise InvalidRequest(f'"data" is larger than {settings.DEVICE_MAX_BODY_BYTES} bytes')
    quota = _spend_message_quota(device)
    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.create(device=device, data=data, channel=channel, source_ip=ip)
        device_services.record_event(
            device.connector_id,
            device.identity,
            MESSAGE,
            f"message {message.mid} via {channel}: {encoded[:300]}",
            ip,
        )
        if device.last_seen_at is None or (now - device.last_seen_at).total_seconds() >= 30:
            Device.objects.filter(pk=device.pk).update(last_seen_at=now, last_ip=ip)
    return message, quota


# --- a user's own devices -----------------------------------------------------------------


def owned_devices(user):
    return (
        Device.objects.filter(owner=user)
        .select_related("connector", "secure")
        .order_by("name", "identity")
    )


def messages_for_owner(device: Device):
    """The device's messages since it became its current owner's."""
    messages = Message.objects.filter(device=device).order_by("-id")
    secure = getattr(device, "secure", None)
    if secure is not None:
        messages = messages.filter(created_at__gte=secure.registered_at)
    return messages


def rename_device(user, device: Device, name, ip) -> Device:
    if device.owner_id != user.pk:
        raise InvalidRequest("not your device")
    name = clean_device_name(name)
    Device.objects.filter(pk=device.pk, owner=user).update(name=name)
    device_services.record_event(
        device.connector_id,
        device.identity,
        RENAME,
        f"renamed to {name!r} by its owner {user.get_username()}",
        ip,
    )
    device.name = name
    return device


def release_device(user, device: Device, ip) -> None:
    """The owner gives the device up: its token stops working and it may be paired again."""
    if device.owner_id != user.pk:
        raise InvalidRequest("not your device")
    with transaction.atomic():
        SecureDevice.objects.filter(device=device).update(token_hash=None)
        Device.objects.filter(pk=device.pk).update(owner=None, name="")
        device_services.record_event(
            device.connector_id,
            device.identity,
            RELEASE,
            f"released by its owner {user.get_username()}",
            ip,
        )
        device_services.reset_device(device, actor=device_services.Actor(user, "My devices"), ip=ip)
        transaction.on_commit(lambda: disconnect_device(device.pk))


def device_group(device_pk: int) -> str:
    """The channel-layer group a device's open WebSockets listen on."""
    return f"secure-device-{device_pk}"


def disconnect_device(device_pk: int) -> None:
    """Close the device's open WebSockets, in whichever ASGI process they are."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(device_group(device_pk), {"type": "device.released"})


def purge_old_messages(batch_size: int = 10_000) -> int:
    """Delete messages older than DATA_RETENTION_DAYS (0 keeps them), like data points."""
    days = settings.DATA_RETENTION_DAYS
    if not days:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    return delete_in_batches(Message.objects.filter(created_at__lt=cutoff), batch_size)
