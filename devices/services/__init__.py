"""Whitelisting, provisioning, device authentication, data and expiry.

Plain functions raising domain exceptions; the device API and the management
API map those exceptions to status codes, each with one table. Callers use
`from devices import services` and the names re-exported here.
"""

from audit.events import INSERT_EVENT, Actor, event_row, record_event
from devices.services.authentication import (
    CONNECTOR_ID,
    Caller,
    authenticate_password,
    authenticate_token,
    decode_basic,
    get_connector,
    refuse,
    token_key,
)
from devices.services.commands import send_command
from devices.services.credentials import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_BYTES,
    TOKEN_LENGTH,
    credentials_changed,
    hash_token,
    new_token,
    password_cache_key,
)
from devices.services.data import WriteBatch, read_latest, wait_for_change, write, write_data
from devices.services.errors import (
    AlreadyProvisioned,
    AlreadyWhitelisted,
    AuthenticationFailed,
    CertificateNotPinnable,
    ConnectorNotFound,
    DeviceError,
    IdentityRejected,
    InvalidData,
    InvalidTransition,
    IpNotAllowed,
    NotWhitelisted,
    RateLimited,
    UnsupportedAuth,
    WindowExpired,
)
from devices.services.issued import end_unconnected, issue_secret
from devices.services.lifecycle import (
    delete_device,
    delete_records,
    edit_device,
    expire_in_batches,
    expire_stale_whitelist,
    log_device_changed,
    purge_old_records,
    reset_device,
    retag_device,
    revoke_device,
)
from devices.services.pinning import pin_certificate, pinnable_certificate
from devices.services.provisioning import activate, activate_device, check_activation_rate
from devices.services.records import RecordConflict, TooManyPoints, record
from devices.services.values import resource_formats
from devices.services.whitelist import (
    activation_deadline,
    validate_identity,
    validate_tags,
    whitelist_device,
)

__all__ = [
    "CertificateNotPinnable",
    "pin_certificate",
    "pinnable_certificate",
    "Actor",
    "AlreadyProvisioned",
    "AlreadyWhitelisted",
    "AuthenticationFailed",
    "ConnectorNotFound",
    "DeviceError",
    "INSERT_EVENT",
    "IdentityRejected",
    "InvalidData",
    "InvalidTransition",
    "IpNotAllowed",
    "MAX_PASSWORD_BYTES",
    "MIN_PASSWORD_BYTES",
    "NotWhitelisted",
    "RateLimited",
    "TOKEN_LENGTH",
    "UnsupportedAuth",
    "WindowExpired",
    "WriteBatch",
    "activate",
    "activate_device",
    "activation_deadline",
    "CONNECTOR_ID",
    "Caller",
    "authenticate_password",
    "authenticate_token",
    "credentials_changed",
    "decode_basic",
    "password_cache_key",
    "refuse",
    "token_key",
    "write",
    "check_activation_rate",
    "delete_device",
    "delete_records",
    "edit_device",
    "event_row",
    "end_unconnected",
    "expire_in_batches",
    "expire_stale_whitelist",
    "get_connector",
    "log_device_changed",
    "hash_token",
    "issue_secret",
    "new_token",
    "purge_old_records",
    "read_latest",
    "record",
    "RecordConflict",
    "TooManyPoints",
    "record_event",
    "reset_device",
    "retag_device",
    "resource_formats",
    "revoke_device",
    "validate_identity",
    "validate_tags",
    "wait_for_change",
    "whitelist_device",
    "write_data",
    "send_command",
]
