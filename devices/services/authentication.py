"""Authenticating device requests: tokens, passwords (remembered), certificates."""

import base64
import functools
import re
import secrets
import weakref

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db import connections

from audit.events import record_event
from audit.models import Event
from connectors.identity import IdentityFormat, InvalidIdentity, normalize_identity
from connectors.models import CONNECTOR_ID_PATTERN, Connector
from core import generations, ratelimit
from devices import sql
from devices.models import Credential, Device
from devices.services.credentials import (
    MAX_PASSWORD_BYTES,
    hash_token,
    password_cache_key,
)
from devices.services.errors import (
    AuthenticationFailed,
    ConnectorNotFound,
)

CONNECTOR_ID = re.compile(CONNECTOR_ID_PATTERN)


class Caller:
    """The device behind a request (request.user of the device API), loaded once,
    when first asked for: a write under a credential this process verified
    before may be queued without it (write_queue)."""

    __slots__ = ("connector_id", "presented", "_device", "_load")
    is_authenticated = True

    def __init__(self, connector_id: str, presented: str | None, device=None, load=None):
        self.connector_id = connector_id
        self.presented = presented  # the key a verified credential is remembered under
        self._device = device
        self._load = load

    @property
    def remembered(self) -> bool:
        """Whether the device is still to be loaded (its credential was remembered)."""
        return self._device is None

    @property
    def device(self) -> Device:
        if self._device is None:
            self._device = self._load()
        return self._device


def decode_basic(value: str) -> str:
    """The identity:secret text of a Basic credential; AuthenticationFailed if malformed."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuthenticationFailed("malformed Basic credentials") from exc
    if "\x00" in decoded or ":" not in decoded:
        # No identity or secret holds a NUL; refused before it reaches a lookup or the log.
        raise AuthenticationFailed("malformed Basic credentials")
    return decoded


def split_identity(decoded: str, identity_format: IdentityFormat) -> tuple[str, str]:
    """identity, password of a Basic credential: split at the first colon where the
    connector's identity format ends (a MAC address holds colons), else at the first."""
    start = 0
    while (colon := decoded.find(":", start)) != -1:
        try:
            normalize_identity(decoded[:colon], identity_format)
        except InvalidIdentity:
            start = colon + 1
            continue
        return decoded[:colon], decoded[colon + 1 :]
    identity, _, password = decoded.partition(":")
    return identity, password


# The device lookups are written out (devices.sql) rather than built by the ORM:
# they run on every authenticated device request, and compiling the equivalent
# joins costs more CPU than the round trip. Their row is read with a plain cursor
# and the fields' converters (a RawQuerySet would apply the same ones, but works
# out its columns, fields and converters again on every query, which cost about
# as much as the SQLite query itself).

# The columns of devices.sql's device lookups, in order: the device's, then its
# connector's alias-table revision.
_DEVICE_FIELDS = tuple(
    Device._meta.get_field(name)
    for name in (
        "id",
        "connector",
        "identity",
        "status",
        "last_seen_at",
        "last_ip",
        "credential_version",
    )
)
_DEVICE_NAMES = [field.attname for field in _DEVICE_FIELDS]
_REVISION = Connector._meta.get_field("resources_revision")
# database connection -> [(column index, converters, expression)]
_converters = weakref.WeakKeyDictionary()


def _row_converters(connection) -> list:
    found = _converters.get(connection)
    if found is None:
        found = []
        for index, field in enumerate((*_DEVICE_FIELDS, _REVISION)):
            column = field.get_col(field.model._meta.db_table)
            functions = connection.ops.get_db_converters(column) + column.get_db_converters(
                connection
            )
            if functions:
                found.append((index, functions, column))
        _converters[connection] = found
    return found


def _provisioned_device(sql: str, params: list) -> Device | None:
    database = Device.objects.db
    connection = connections[database]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, functions, column in _row_converters(connection):
        for convert in functions:
            values[index] = convert(values[index], column, connection)
    device = Device.from_db(database, _DEVICE_NAMES, values[:-1])
    # The connector's alias-table revision rides along; its other fields load on use.
    device.connector = Connector.from_db(
        database, ["id", "resources_revision"], [device.connector_id, values[-1]]
    )
    return device


def token_key(connector_id: str, token: str) -> str:
    """The key a verified token is remembered under (write_queue)."""
    return f"devtok:{connector_id}:{hash_token(token)}"


def _device_by_token(connector_id: str, token: str) -> Device | None:
    """One indexed lookup: token hash → active credential → device and connector."""
    return _provisioned_device(
        sql.DEVICE_BY_TOKEN,
        [hash_token(token), Connector.TOKEN, Credential.ACTIVE, connector_id, Device.PROVISIONED],
    )


def _remembered_password_device(connector_id: str, remembered) -> Device | None:
    """The device a recent password verification found (`remembered`, read from the
    cache), if it still has the credential version it was verified under."""
    if remembered is None:
        return None
    device_pk, version = remembered
    return _provisioned_device(
        sql.DEVICE_BY_VERSION, [device_pk, connector_id, Device.PROVISIONED, version]
    )


def _device_by_password(connector: Connector, raw_identity: str, password: str) -> Device | None:
    """Verify identity:password with the slow hash (the cache missed)."""
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return None
    try:
        identity = normalize_identity(raw_identity, connector.identity_format)
    except InvalidIdentity:
        return None
    device = (
        Device.objects.select_related("connector")
        .filter(connector=connector, identity=identity, status=Device.PROVISIONED)
        .first()
    )
    credential = (
        Credential.objects.filter(device=device, kind=Connector.PASSWORD, state=Credential.ACTIVE)
        .only("password_hash")
        .first()
        if device
        else None
    )
    # Without a stored hash the slow hash still runs, against a stand-in, so a
    # missing device takes as long to refuse as a wrong password.
    stored = credential.password_hash if credential else _stand_in_hash(*settings.PASSWORD_HASHERS)
    if not check_password(password, stored):
        return None
    return device if credential is not None else None


@functools.lru_cache(maxsize=4)
def _stand_in_hash(*hashers: str) -> str:
    """A hash of a random password with the preferred hasher (one per process)."""
    return make_password(secrets.token_urlsafe(32))


# connector id → (generation stamp, connector): device requests name their
# connector on every call, and connectors change rarely (core.generations).
_connectors: dict[str, tuple[int, Connector]] = {}
_CONNECTORS_KEPT = 10_000


def get_connector(connector_id: str, stamp: int | None = None) -> Connector:
    """The connector a device request names, from memory while it is unchanged.

    `stamp` is its generation stamp when the caller has read it already.
    Callers share the instance and must not modify it.
    """
    # Only well-formed ids reach the cache and the database (a NUL byte would
    # upset PostgreSQL).
    if not connector_id or not CONNECTOR_ID.fullmatch(connector_id):
        raise ConnectorNotFound()
    if stamp is None:
        [stamp] = generations.read([generations.connector_key(connector_id)])
    kept = _connectors.get(connector_id)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    # Written out for the same reason as the device lookups above.
    connector = next(iter(Connector.objects.raw(sql.CONNECTOR_BY_ID, [connector_id])), None)
    if connector is None:
        raise ConnectorNotFound()
    if len(_connectors) >= _CONNECTORS_KEPT:
        _connectors.clear()
    _connectors[connector_id] = (stamp, connector)
    return connector


def refuse(connector_id: str, identity: str, reason: str, ip, counted: bool = False):
    """Log a refused device request and count it against the address; raise 401."""
    connector = get_connector(connector_id)
    record_event(connector.pk, identity, Event.AUTH_FAILED, reason, ip)
    if not counted:
        ratelimit.hit("authfail", str(ip), _failures())
    raise AuthenticationFailed(reason)


def _failures() -> ratelimit.Rate:
    return ratelimit.Rate.parse(settings.RATE_LIMIT_AUTH_FAILURES)


def authenticate_token(connector_id: str, token: str, ip) -> Device:
    """The provisioned device holding this token: one indexed lookup.

    An address past RATE_LIMIT_AUTH_FAILURES is refused before any credential is
    looked up, so the right one answers 429 like every other.
    """
    if not CONNECTOR_ID.fullmatch(connector_id or ""):
        raise ConnectorNotFound()
    ratelimit.peek("authfail", str(ip), _failures())
    device = _device_by_token(connector_id, token)
    if device is None:
        refuse(connector_id, "", "unknown or revoked token", ip)
    return device


def authenticate_password(connector_id: str, decoded: str, ip) -> tuple[Device, str]:
    """The provisioned device behind identity:password (`decoded`), and the key its
    verification is remembered under.

    The slow hash runs only when no verification of the same identity:password is
    remembered in the cache. It is counted against the address before it runs
    (and given back when the password was right): however many requests arrive
    at once, no more hashes run than RATE_LIMIT_AUTH_FAILURES allows.
    """
    if not CONNECTOR_ID.fullmatch(connector_id or ""):
        raise ConnectorNotFound()
    failures = _failures()
    key = password_cache_key(connector_id, decoded)
    [remembered] = ratelimit.peek("authfail", str(ip), failures, read=[key])
    device = _remembered_password_device(connector_id, remembered)
    if device is not None:
        return device, key
    connector = get_connector(connector_id)
    identity, password = split_identity(decoded, connector.identity_format)
    spent = ratelimit.spend("authfail", str(ip), failures)
    device = _device_by_password(connector, identity, password)
    if device is None:
        refuse(connector_id, identity, "unknown or revoked password", ip, counted=True)
    spent.give_back()
    cache.set(key, (device.pk, device.credential_version), settings.CREDENTIAL_CACHE_SECONDS)
    return device, key
