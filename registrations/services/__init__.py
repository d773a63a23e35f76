"""Secure registration with PIN pairing, and what securely registered devices and
their owners do afterwards: plain functions raising `RegistrationError`s, which the
/v1.1/ device API, the WebSocket consumer and the pairing pages each map with one
table.

- `registration`: the device initiates, asks the status, completes (`trust` decides
  which certificate may speak for which device);
- `pairing`: the signed-in user claims the waiting device by PIN and serial digits;
- `messaging`: the registered device authenticates and sends and reads messages;
- `hubs`: a hub creates, lists and deletes its end nodes and speaks for them;
- `owners`: the user lists, renames and releases their devices;
- `progress`: where a pairing stands, for the pages that follow it while it runs;
- `apps`: an app the user allowed (OAuth 2.0) reads their devices and messages,
  sends messages for them and pairs new ones by PIN;
- `expiry`: deadlines and retention.
"""

from registrations.services.errors import (
    AlreadyRegistered,
    CertificateMismatch,
    CertificateNotTrusted,
    CertificateRequired,
    EndNodeLimit,
    InvalidPairingInput,
    InvalidRequest,
    InvalidToken,
    MessagesRateLimited,
    MissingScope,
    NotAHub,
    NotConfirmed,
    PairingExpired,
    PairingLocked,
    PairingUnavailable,
    Quota,
    RateLimited,
    RegistrationClosed,
    RegistrationError,
    RegistrationNotFound,
    UnknownDevice,
    UnknownDeviceType,
    WrongDevice,
    WrongNonce,
    WrongPairingCode,
    WrongUser,
)
from registrations.services.expiry import (
    expire_stale_registrations,
    purge_ended_registrations,
    purge_old_messages,
)
from registrations.services.hubs import (
    create_end_node,
    delete_end_node,
    end_node,
    end_nodes,
    hubs_shared_with,
    is_hub,
    members_of,
    share_hub,
    shared_nodes_of,
    unshare_hub,
)
from registrations.services.messaging import (
    authenticate_secure_device,
    latest_messages,
    open_device_channel,
    own_connector,
    own_device,
    post_message,
)
from registrations.services.owners import (
    device_group,
    disconnect_device,
    messages_for_owner,
    owned_devices,
    release_device,
    rename_device,
)
from registrations.services.pairing import (
    PIN_ALPHABET,
    awaiting_completion,
    clean_device_name,
    confirm_pairing,
    find_pairing,
    find_pairing_by_pin,
    new_pin,
    normalize_pin,
    normalize_serial_suffix,
    pairing_to_confirm,
)
from registrations.services.progress import ended_pairings, pairing_progress
from registrations.services.registration import (
    complete_registration,
    initiate_registration,
    public_user_id,
    registration_status,
)

__all__ = [
    "PIN_ALPHABET",
    "AlreadyRegistered",
    "CertificateMismatch",
    "CertificateNotTrusted",
    "CertificateRequired",
    "EndNodeLimit",
    "InvalidPairingInput",
    "InvalidRequest",
    "InvalidToken",
    "MessagesRateLimited",
    "MissingScope",
    "NotAHub",
    "NotConfirmed",
    "PairingExpired",
    "PairingLocked",
    "PairingUnavailable",
    "Quota",
    "RateLimited",
    "RegistrationClosed",
    "RegistrationError",
    "RegistrationNotFound",
    "UnknownDevice",
    "UnknownDeviceType",
    "WrongDevice",
    "WrongNonce",
    "WrongPairingCode",
    "WrongUser",
    "authenticate_secure_device",
    "awaiting_completion",
    "clean_device_name",
    "complete_registration",
    "confirm_pairing",
    "create_end_node",
    "delete_end_node",
    "device_group",
    "disconnect_device",
    "end_node",
    "end_nodes",
    "ended_pairings",
    "expire_stale_registrations",
    "find_pairing",
    "find_pairing_by_pin",
    "initiate_registration",
    "is_hub",
    "latest_messages",
    "messages_for_owner",
    "new_pin",
    "normalize_pin",
    "normalize_serial_suffix",
    "open_device_channel",
    "own_connector",
    "own_device",
    "owned_devices",
    "pairing_progress",
    "pairing_to_confirm",
    "post_message",
    "public_user_id",
    "purge_ended_registrations",
    "purge_old_messages",
    "registration_status",
    "release_device",
    "rename_device",
    "hubs_shared_with",
    "members_of",
    "share_hub",
    "shared_nodes_of",
    "unshare_hub",
]
