"""What a user does with the devices they own: list, read, rename and release them."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from devices import services as device_services
from devices.models import Device
from registrations.models import Message, SecureDevice
from registrations.services.errors import InvalidRequest
from registrations.services.events import RELEASE, RENAME
from registrations.services.pairing import clean_device_name


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
    """The owner gives the device up: its token stops working and it may be paired again.
    An end node, which nothing but its hub could pair, is deleted."""
    if device.owner_id != user.pk:
        raise InvalidRequest("not your device")
    secure = getattr(device, "secure", None)
    if secure is not None and secure.is_end_node:
        device_services.delete_device(
            device, actor=device_services.Actor(user, "My devices"), ip=ip
        )
        return
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
