"""Hubs and end nodes: a securely registered device whose device type allows it (a
hub) creates devices for the things behind it that cannot reach Gatehouse
themselves (end nodes), lists and deletes them, and sends messages for them.

- A device type acts as a hub type when its `HubPolicy` says so. A hub creates end
  nodes of its own device type, or of a type whose policy names the hub's type
  among its trusted hub types.
- Every end node belongs to one user: the hub's owner or a user the owner shared
  the hub with (`HubMember`). Users who share a hub each own their own end nodes.
- An end node has no certificate and no token: only its hub speaks for it, and
  only while the hub is still the one that created it, still a hub, still trusted
  by the node's type, and the node's owner still shares the hub. A change to the
  hub's credentials (reset, revoke, delete, a revoked certificate) detaches its
  nodes for good.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import Event
from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import Connector
from core import ratelimit
from devices import services as device_services
from devices.models import Device
from registrations.models import HubMember, HubPolicy, SecureDevice, new_public_id
from registrations.services.errors import (
    AlreadyRegistered,
    EndNodeLimit,
    InvalidPairingInput,
    InvalidRequest,
    NotAHub,
    WrongDevice,
)
from registrations.services.pairing import clean_device_name
from registrations.services.registration import public_user_id

CREATE = Event.CREATE
# What detaches a hub's end nodes: the hub's own credentials went or changed hands.
DETACHING_CHANGES = {"reset", "revoked", "deleted", "certificate_revoked", "registered"}


def is_hub(device: Device) -> bool:
    return HubPolicy.objects.filter(connector_id=device.connector_id, acts_as_hub=True).exists()


def require_hub(device: Device, ip) -> None:
    if not is_hub(device):
        device_services.record_event(
            device.connector_id,
            device.identity,
            Event.AUTH_FAILED,
            "end-node call refused: this device's type does not act as a hub",
            ip,
        )
        raise NotAHub()


def trusts_hub(connector_id: str, hub: Device) -> bool:
    """Whether end nodes of `connector_id` may be a hub's of `hub`'s device type."""
    if connector_id == hub.connector_id:
        return True
    return HubPolicy.objects.filter(
        connector_id=connector_id, trusted_hub_types=hub.connector_id
    ).exists()


def hub_users(hub: Device) -> list:
    """Who may own the hub's end nodes: its owner, then the users it is shared with."""
    members = [
        member.user
        for member in HubMember.objects.filter(hub=hub).select_related("user").order_by("id")
    ]
    return ([hub.owner] if hub.owner_id is not None else []) + members


def _shares(hub: Device, user_id) -> bool:
    if user_id is None:
        return False
    return user_id == hub.owner_id or HubMember.objects.filter(hub=hub, user_id=user_id).exists()


def _refuse(hub: Device, what: str, ip) -> WrongDevice:
    device_services.record_event(
        hub.connector_id,
        hub.identity,
        Event.AUTH_FAILED,
        f"{what[:120]} refused: not an end node of this hub",
        ip,
    )
    return WrongDevice("this access token does not grant access to that")


def _owner_for(hub: Device, uid, ip):
    """The user a new end node is for: `uid` (a public user id), or the hub's owner."""
    users = hub_users(hub)
    if uid is None:
        if not users:
            raise _refuse(hub, "end node for nobody", ip)
        return users[0]
    if not isinstance(uid, str):
        raise InvalidRequest('"uid" must be a string')
    for user in users:
        if public_user_id(user) == uid:
            return user
    # Unknown users and users who do not share the hub are refused alike.
    raise _refuse(hub, f"end node for user {uid}", ip)


def _node_type(hub: Device, dtid, ip) -> Connector:
    if dtid is None:
        return hub.connector
    if not isinstance(dtid, str):
        raise InvalidRequest('"dtid" must be a string')
    connector = Connector.objects.filter(pk=dtid).first()
    # An unknown device type is refused as an untrusting one: no hub learns which exist.
    if connector is None or not trusts_hub(connector.pk, hub):
        raise _refuse(hub, f"end node of device type {dtid}", ip)
    return connector


def create_end_node(hub: Device, dtid, name, uid, vendor_device_id, ip) -> Device:
    """A new end node of device type `dtid` (the hub's own when None), owned by `uid`
    (the hub's owner when None), named `name`; its identity is `vendor_device_id`
    in the type's identity format, or its new public id when none is given."""
    require_hub(hub, ip)
    connector = _node_type(hub, dtid, ip)
    owner = _owner_for(hub, uid, ip)
    try:
        name = clean_device_name(name)
    except InvalidPairingInput as exc:
        raise InvalidRequest(f'"name": {exc.message}') from exc
    did = new_public_id()
    try:
        identity = normalize_identity(
            did if vendor_device_id is None else vendor_device_id, connector.identity_format
        )
    except InvalidIdentity as exc:
        raise InvalidRequest(f'"vendorDeviceId": {exc}') from exc
    # Counted per hub, so deleting and creating nodes cannot mint fresh message allowances.
    ratelimit.spend("hub-nodes", str(hub.pk), ratelimit.Rate.parse(settings.RATE_LIMIT_END_NODES))
    now = timezone.now()
    try:
        with transaction.atomic():
            # The hub's row serialises its creations, so two at once cannot pass the limit.
            Device.objects.select_for_update().filter(pk=hub.pk).first()
            if SecureDevice.objects.filter(hub=hub).count() >= settings.HUB_MAX_END_NODES:
                raise EndNodeLimit(
                    f"this hub has its most end nodes ({settings.HUB_MAX_END_NODES})"
                )
            node = Device.objects.create(
                connector=connector,
                identity=identity,
                status=Device.PROVISIONED,
                owner=owner,
                name=name,
                provisioned_at=now,
            )
            SecureDevice.objects.create(
                device=node,
                did=did,
                certificate_fingerprint="",
                certificate_serial="",
                registered_at=now,
                hub=hub,
            )
            device_services.record_event(
                connector.pk,
                identity,
                CREATE,
                f"end node {did} created by hub {hub.secure.did} for {owner.get_username()}",
                ip,
            )
    except IntegrityError as exc:
        raise AlreadyRegistered("a device with this device type and identity exists") from exc
    return node


def _live_nodes(hub: Device):
    return Device.objects.filter(secure__hub=hub, status=Device.PROVISIONED).select_related(
        "connector", "secure", "owner"
    )


def end_nodes(hub: Device, ip):
    """The hub's end nodes, oldest first."""
    require_hub(hub, ip)
    return _live_nodes(hub).order_by("secure__registered_at", "pk")


def end_node(hub: Device, did, ip) -> Device:
    """One end node the hub may speak for now; anything else is refused alike."""
    node = _live_nodes(hub).filter(secure__did=did).first() if isinstance(did, str) else None
    if (
        node is None
        or not is_hub(hub)
        or not trusts_hub(node.connector_id, hub)
        or not _shares(hub, node.owner_id)
    ):
        raise _refuse(hub, f"end node {str(did)[:40]}", ip)
    return node


def delete_end_node(hub: Device, did, ip) -> Device:
    node = end_node(hub, did, ip)
    device_services.delete_device(
        node, actor=device_services.Actor(None, f"hub {hub.secure.did}"), ip=ip
    )
    return node


def speaks_for(device: Device, sdid, ip) -> Device:
    """The device a message or read with `sdid` is about: the device itself (when
    `sdid` is its own id or left out), or one of its end nodes when it is a hub."""
    if sdid is None or sdid == device.secure.did:
        return device
    return end_node(device, sdid, ip)


def detach_end_nodes(hub_ids: list[int]) -> int:
    """The hubs' credentials changed: they speak for none of their end nodes any more,
    and are shared with nobody (a hub paired anew is its new owner's alone)."""
    HubMember.objects.filter(hub_id__in=hub_ids).delete()
    return SecureDevice.objects.filter(hub_id__in=hub_ids).update(hub=None)


def hub_credentials_changed(sender, changes, **kwargs) -> None:
    """Receiver of `devices.signals.credentials_changed`: a hub reset, revoked, deleted,
    paired anew or whose certificate was revoked lets go of its end nodes."""
    hub_ids = [
        change.device_id
        for change in changes
        if change.device_id is not None and change.reason in DETACHING_CHANGES
    ]
    if hub_ids:
        detach_end_nodes(hub_ids)


def members_of(hub: Device) -> list:
    """The users the hub's owner shares it with, in the order they were added."""
    return list(HubMember.objects.filter(hub=hub).select_related("user").order_by("id"))


def share_hub(owner, hub: Device, username: str, ip) -> HubMember:
    """The hub's owner shares it with another account: that user's end nodes may be
    created by the hub and spoken for by it. Sharing twice changes nothing."""
    if hub.owner_id != owner.pk:
        raise InvalidRequest("not your device")
    if not is_hub(hub):
        raise NotAHub()
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or user.pk == owner.pk:
        raise InvalidRequest("no other account has that username")
    with transaction.atomic():
        member, created = HubMember.objects.get_or_create(hub=hub, user=user)
        if created:
            device_services.record_event(
                hub.connector_id,
                hub.identity,
                Event.CHANGE,
                f"shared by its owner {owner.get_username()} with {user.get_username()}",
                ip,
            )
    return member


def unshare_hub(owner, hub: Device, user_id, ip) -> None:
    """The owner stops sharing the hub with a user: the hub no longer speaks for that
    user's end nodes (they stay the user's, detached) nor creates new ones for them."""
    if hub.owner_id != owner.pk:
        raise InvalidRequest("not your device")
    with transaction.atomic():
        member = HubMember.objects.filter(hub=hub, user_id=user_id).select_related("user").first()
        if member is None:
            return
        member.delete()
        SecureDevice.objects.filter(hub=hub, device__owner_id=user_id).update(hub=None)
        device_services.record_event(
            hub.connector_id,
            hub.identity,
            Event.CHANGE,
            f"no longer shared by {owner.get_username()} with {member.user.get_username()}",
            ip,
        )


def shared_nodes_of(user):
    """End nodes `user` owns, with their hubs: what "My devices" nests under each hub."""
    return Device.objects.filter(owner=user, secure__hub__isnull=False).select_related(
        "secure__hub"
    )


def hubs_shared_with(user):
    """Hubs `user` does not own but shares with its owner."""
    return Device.objects.filter(Q(hub_members__user=user) & ~Q(owner=user)).select_related(
        "connector", "owner"
    )
