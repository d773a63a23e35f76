"""Whitelisting identities."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import Actor, record_event
from audit.models import Event
from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from devices.models import Device
from devices.services.errors import AlreadyWhitelisted, IdentityRejected, InvalidData


def validate_identity(connector: Connector, raw: str) -> str:
    try:
        return normalize_identity(raw, connector.identity_format)
    except InvalidIdentity as exc:
        raise IdentityRejected(str(exc)) from exc


def validate_tags(tags) -> list[dict]:
    """Tags are a list of {"name", "value"} with short string fields."""
    if tags in (None, ""):
        return []
    if not isinstance(tags, list):
        raise InvalidData('tags must be a JSON list of {"name", "value"} objects')
    cleaned = []
    for tag in tags:
        if not isinstance(tag, dict) or set(tag) != {"name", "value"}:
            raise InvalidData('each tag must be an object with exactly "name" and "value"')
        name, value = tag["name"], tag["value"]
        if not isinstance(name, str) or not name or len(name) > 64:
            raise InvalidData("tag names are non-empty strings of at most 64 characters")
        if not isinstance(value, str | int | float | bool) or len(str(value)) > 256:
            raise InvalidData("tag values are strings of at most 256 characters")
        cleaned.append({"name": name, "value": str(value)})
    return cleaned


def activation_deadline(connector: Connector, window_seconds: int | None = None):
    seconds = window_seconds or connector.activation_window_seconds
    return timezone.now() + timedelta(seconds=seconds)


def whitelist_device(
    connector: Connector,
    identity: str,
    *,
    tags=None,
    window_seconds: int | None = None,
    name: str = "",
    ip=None,
    actor: Actor | None = None,
) -> Device:
    identity = validate_identity(connector, identity)
    tags = validate_tags(tags)
    if window_seconds is not None and not 60 <= window_seconds <= 366 * 24 * 3600:
        raise InvalidData("activation window must be between 60 seconds and a year")
    try:
        with transaction.atomic():
            device = Device.objects.create(
                connector=connector,
                identity=identity,
                tags=tags,
                name=name,
                activation_expires_at=activation_deadline(connector, window_seconds),
            )
            record_event(connector.pk, identity, Event.WHITELIST, str(actor or ""), ip, actor=actor)
    except IntegrityError as exc:
        raise AlreadyWhitelisted() from exc
    return device
