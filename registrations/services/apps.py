"""What a companion app does for the user who allowed it, with the OAuth 2.0 access
token that user granted it (accounts.oauth): read the user, their devices, their
device types and their messages, send messages for their devices and pair new ones
by PIN.

Each call names the scope it needs (`MissingScope` without it). Another user's
device, device type or message is refused exactly as one that does not exist, so an
app learns nothing about devices that are not its user's.
"""

from django.conf import settings
from django.db.models import Q

from accounts import oauth
from connectors.models import Connector
from core import ratelimit
from devices.models import Device
from registrations.models import Message, Registration
from registrations.services import messaging, pairing
from registrations.services.errors import (
    InvalidRequest,
    InvalidToken,
    MissingScope,
    UnknownDevice,
    UnknownDeviceType,
    WrongUser,
)
from registrations.services.owners import owned_devices
from registrations.services.registration import public_user_id

USERS_READ = "users:read"
DEVICES_READ = "devices:read"
MESSAGES_WRITE = "messages:write"
DEVICES_PAIR = "devices:pair"


def authenticate_app(authorization, ip) -> oauth.AppAccess:
    """The grant behind `Bearer <access token>`: unknown, expired and revoked tokens
    are refused alike, and count against the address's RATE_LIMIT_AUTH_FAILURES."""
    failures = ratelimit.Rate.parse(settings.RATE_LIMIT_AUTH_FAILURES)
    ratelimit.peek("app-authfail", str(ip), failures)
    scheme, _, token = (authorization if isinstance(authorization, str) else "").partition(" ")
    token = token.strip()
    access = oauth.app_access(token) if scheme.lower() == "bearer" and token else None
    if access is None:
        ratelimit.hit("app-authfail", str(ip), failures)
        raise InvalidToken("missing, unknown, expired or revoked access token")
    return access


def require(access: oauth.AppAccess, scope: str) -> None:
    if not access.allows(scope):
        raise MissingScope(f"this access token was not granted the {scope} scope")


def the_user(access: oauth.AppAccess, scope: str, uid=None):
    """The user the app acts for; a `uid` the app names must be theirs."""
    require(access, scope)
    if uid is not None and uid != public_user_id(access.user):
        raise WrongUser()
    return access.user


def visible_devices(user, owner: str = "ALL"):
    """The user's securely registered devices (end nodes included), by name: those they
    own (OWNED), the hubs other users share with them (SHARED), or both (ALL)."""
    mine, shared = Q(owner=user), Q(hub_members__user=user) & ~Q(owner=user)
    wanted = {"OWNED": mine, "SHARED": shared}.get(owner, mine | shared)
    return (
        Device.objects.filter(wanted, secure__isnull=False)
        .select_related("connector", "secure", "owner")
        .distinct()
        .order_by("name", "identity")
    )


def user_devices(access: oauth.AppAccess, uid, device_type_id=None, owner: str = "ALL"):
    user = the_user(access, DEVICES_READ, uid)
    devices = visible_devices(user, owner)
    if device_type_id is not None:
        devices = devices.filter(connector_id=device_type_id)
    return devices


def user_device(
    access: oauth.AppAccess, did, scope: str = DEVICES_READ, *, shared: bool = False
) -> Device:
    """One of the user's devices; with `shared`, a hub shared with them too (its
    description only: its messages stay its owner's)."""
    require(access, scope)
    if not isinstance(did, str) or not did:
        raise InvalidRequest('"sdid" is required: the id of one of the user\'s devices')
    devices = visible_devices(access.user) if shared else owned_devices(access.user)
    device = devices.select_related("owner").filter(secure__did=did).first()
    if device is None:
        raise UnknownDevice(f"no device {did[:40]!r} of this user")
    return device


def user_device_type(access: oauth.AppAccess, device_type_id: str) -> Connector:
    """The device type of one of the user's devices."""
    require(access, DEVICES_READ)
    device = (
        owned_devices(access.user).filter(secure__isnull=False, connector_id=device_type_id).first()
    )
    if device is None:
        raise UnknownDeviceType()
    return device.connector


def latest_messages(access: oauth.AppAccess, dids: list[str], count: int, field: str | None):
    """The most recent messages of the user's devices named in `dids`, newest first."""
    devices = {user_device(access, did) for did in dict.fromkeys(dids)}
    if not devices:
        raise InvalidRequest("name at least one device in sdids")
    messages = messaging.messages_since_owned(devices, field).order_by("-id")
    return list(messages[: min(count, messaging.MOST_RECENT)])


def messages_between(
    access: oauth.AppAccess,
    did: str | None,
    start,
    end,
    *,
    count: int,
    newest_first: bool,
    after: str | None = None,
    field: str | None = None,
):
    """Messages stored between `start` and `end` (inclusive) of one of the user's
    devices, or of all of them without `did`: at most `count`, in order of arrival,
    and after the message `after` (the `next` of the previous page) when given."""
    if did is None:
        require(access, DEVICES_READ)
        devices = list(user_devices(access, None))
    else:
        devices = [user_device(access, did)]
    messages = messaging.messages_since_owned(devices, field).filter(
        created_at__gte=start, created_at__lte=end
    )
    if after is not None:
        cursor = messages.filter(mid=after).values_list("id", flat=True).first()
        if cursor is None:
            raise InvalidRequest("offset is not the next of an earlier page of this query")
        messages = messages.filter(**{"id__lt" if newest_first else "id__gt": cursor})
    messages = messages.order_by("-id" if newest_first else "id")
    return list(messages[: min(count, messaging.MOST_RECENT)])


def send_message(
    access: oauth.AppAccess, did, data, ip, sent_at=None
) -> tuple[Message, messaging.Quota]:
    """A message for one of the user's devices, against that device's allowance."""
    device = user_device(access, did, MESSAGES_WRITE)
    via = f"REST from app {access.app.name!r} for {access.user.get_username()}"
    return messaging.post_message_for_owner(device, data, via, ip, sent_at)


def pair_by_pin(access: oauth.AppAccess, device_type_id, pin, name, ip) -> Registration:
    """The app pairs the device waiting under `pin` to its user, named `name`: the
    pairing page's confirmation with the PIN alone (pairing.find_pairing_by_pin)."""
    require(access, DEVICES_PAIR)
    if device_type_id is not None and not isinstance(device_type_id, str):
        raise InvalidRequest('"deviceTypeId" must be a string')
    name = pairing.clean_device_name(name)
    registration = pairing.find_pairing_by_pin(access.user, pin, ip, device_type_id)
    via = f" from app {access.app.name!r}"
    return pairing.confirm_pairing(access.user, registration.rid, name, ip, via)
