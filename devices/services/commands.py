"""Commands: a device's maker writes a value to one of the device's aliases.

The value is stored as the alias's newest data point, so a device reading the
alias over HTTP (`GET /api:v1/stack/alias`, long polls) sees it, and logged as a
`command` line naming the actor. Once committed, `devices.signals.command_issued`
tells the receivers; the MQTT side publishes it to the device's command topic.
"""

import logging

from django.db import transaction

from audit.events import Actor, record_event
from audit.models import Event
from core import inputs
from devices import signals
from devices.models import DataPoint, Device
from devices.services.errors import InvalidData, InvalidTransition
from devices.services.values import check_value, resource_formats

logger = logging.getLogger(__name__)
MAX_COMMAND_BYTES = 64 * 1024  # what the broker's device topics carry at most (mqtt.ingest)


def send_command(device: Device, alias: str, value: str, *, actor: Actor, ip=None) -> DataPoint:
    """Store `value` as `alias` of a provisioned device and tell the receivers after commit."""
    if device.status != Device.PROVISIONED:
        raise InvalidTransition("commands go to provisioned devices only")
    formats = resource_formats(device.connector)
    if alias not in formats:
        raise InvalidData(f"alias {alias[:64]!r} is not defined")
    problem = inputs.text_problem(value)
    if problem:
        raise InvalidData(problem)
    if len(value.encode()) > MAX_COMMAND_BYTES:
        raise InvalidData(f"the value is over {MAX_COMMAND_BYTES} bytes")
    check_value(formats[alias], value)
    with transaction.atomic():
        point = DataPoint.objects.create(device=device, alias=alias, value=value)
        record_event(
            device.connector_id,
            device.identity,
            Event.COMMAND,
            f"{alias}={value} by {actor}",
            ip,
            actor=actor,
        )
        details = {
            "connector_id": device.connector_id,
            "identity": device.identity,
            "alias": alias,
            "value": value,
            "actor": actor,
        }
        transaction.on_commit(lambda: _send(details))
    return point


def _send(details: dict) -> None:
    for receiver, error in signals.command_issued.send_robust(sender=Device, **details):
        if isinstance(error, Exception):
            logger.error("command_issued receiver %r failed: %r", receiver, error, exc_info=error)
