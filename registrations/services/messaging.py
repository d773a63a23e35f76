"""What a securely registered device does: authenticate with its access token and
certificate, and send messages over HTTPS or its WebSocket."""

import hmac
import json

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import Event
from core import crypto, ratelimit
from devices import services as device_services
from devices.models import Device
from devices.services.credentials import hash_token
from registrations.models import Message, SecureDevice
from registrations.services import hubs
from registrations.services.errors import (
    CertificateMismatch,
    InvalidRequest,
    InvalidToken,
    MessagesRateLimited,
    Quota,
    RateLimited,
    WrongDevice,
)
from registrations.services.events import MESSAGE, REGISTER
from registrations.services.trust import require_certificate, require_trust


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
    """A device registering its WebSocket session (its "register" frame)."""
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


def post_message(
    device: Device, sdid, data, channel: str, ip, sent_at=None
) -> tuple[Message, Quota]:
    """Store one message from an authenticated secure device (REST or WebSocket),
    with the time the device says it sent it when it says one."""
    target = _speaks_for(device, sdid, ip)
    via = channel if target is device else f"{channel} from hub {device.secure.did}"
    return _store(target, data, channel, via, ip, sent_at, seen={device, target})


def post_message_for_owner(
    device: Device, data, via: str, ip, sent_at=None
) -> tuple[Message, Quota]:
    """Store one message an app sends for a device of the user who allowed it (the
    caller checked the device is theirs): the device's own allowance, as if it sent it."""
    return _store(device, data, Message.REST, via, ip, sent_at, seen=set())


def _store(
    target: Device, data, channel: str, via: str, ip, sent_at, seen: set
) -> tuple[Message, Quota]:
    """One message of `target`, counted against its allowance; `seen` are the devices
    that spoke (their last-seen stamps move)."""
    if data is None:
        raise InvalidRequest('"data" is required')
    encoded = json.dumps(data, separators=(",", ":"))
    if len(encoded.encode()) > settings.DEVICE_MAX_BODY_BYTES:
        raise InvalidRequest(f'"data" is larger than {settings.DEVICE_MAX_BODY_BYTES} bytes')
    quota = _spend_message_quota(target)
    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.create(
            device=target, data=data, channel=channel, source_ip=ip, sent_at=sent_at
        )
        device_services.record_event(
            target.connector_id,
            target.identity,
            MESSAGE,
            f"message {message.mid} via {via}: {encoded[:300]}",
            ip,
        )
        for each in seen:
            if each.last_seen_at is None or (now - each.last_seen_at).total_seconds() >= 30:
                Device.objects.filter(pk=each.pk).update(last_seen_at=now, last_ip=ip)
    return message, quota


def _speaks_for(device: Device, sdid, ip) -> Device:
    """Whom a message with `sdid` is from: the device itself, or one of its end nodes
    when it is a hub; any other device is refused."""
    if sdid is None or sdid == device.secure.did:
        return device
    if isinstance(sdid, str) and hubs.is_hub(device):
        return hubs.end_node(device, sdid, ip)
    device_services.record_event(
        device.connector_id,
        device.identity,
        Event.AUTH_FAILED,
        f"message for another device ({str(sdid)[:40]!r}) refused",
        ip,
    )
    raise WrongDevice()


# --- what a device may read: itself only --------------------------------------------------

MOST_RECENT = 100


def _refuse_other(device: Device, what: str, ip) -> WrongDevice:
    device_services.record_event(
        device.connector_id,
        device.identity,
        Event.AUTH_FAILED,
        f"read of {what[:80]!r} refused: a device reads only itself",
        ip,
    )
    return WrongDevice("this access token does not grant access to that")


def own_device(device: Device, did: str, ip) -> Device:
    """The device itself, or one of its end nodes when it is a hub, asked for by its
    public id; any other id is refused alike, so a device learns nothing about
    devices that are not its own."""
    if did == device.secure.did:
        return device
    if hubs.is_hub(device):
        return hubs.end_node(device, did, ip)
    raise _refuse_other(device, f"device {did}", ip)


def own_connector(device: Device, connector_id: str, ip):
    """The device's own connector (its device type); any other is refused alike."""
    if connector_id != device.connector_id:
        raise _refuse_other(device, f"device type {connector_id}", ip)
    return device.connector


def latest_messages(device: Device, dids: list[str], count: int, field: str | None, ip):
    """The most recent messages of the device itself or, for a hub, of its end nodes
    named in `dids`, newest first, at most `count` (MOST_RECENT), only those holding
    `field` when one is named."""
    others = [did for did in dids if did != device.secure.did]
    if not dids or (others and not hubs.is_hub(device)):
        raise _refuse_other(device, f"messages of {','.join(others)}", ip)
    sources = {device} if len(others) < len(dids) else set()
    sources.update(hubs.end_node(device, did, ip) for did in others)
    return list(messages_since_owned(sources, field).order_by("-id")[: min(count, MOST_RECENT)])


def messages_since_owned(sources, field: str | None = None):
    """The messages of the devices `sources` since each became its current owner's,
    only those holding `field` when one is named."""
    since_owned = Q(pk__in=[])
    for source in sources:
        since_owned |= Q(device=source, created_at__gte=source.secure.registered_at)
    messages = Message.objects.filter(since_owned).select_related("device__secure", "device__owner")
    if field:
        messages = messages.filter(data__has_key=field)
    return messages
