"""Authenticating device requests: tokens, passwords (remembered), certificates."""

import base64
import functools
import re
import secrets

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache

from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import CONNECTOR_ID_PATTERN, Connector
from devices.models import Credential, Device, Event
from devices.services.credentials import (
    MAX_PASSWORD_BYTES,
    hash_token,
    password_cache_key,
)
from devices.services.errors import (
    AuthenticationFailed,
    ConnectorNotFound,
)
from devices.services.events import record_event
from portal import generations, ratelimit

CONNECTOR_ID = re.compile(CONNECTOR_ID_PATTERN)


def _parse_authorization(header: str) -> tuple[str, str, str]:
    """Split an Authorization header into (kind, identity, secret); kind is token or password."""
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "token" and value:
        return "token", "", value
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuthenticationFailed() from exc
        identity, sep, secret = decoded.partition(":")
        if "\x00" in decoded:
            # No identity or secret holds one; refused before it reaches a lookup or the log.
            raise AuthenticationFailed()
        if sep and secret:
            return ("password", identity, secret) if identity else ("token", "", secret)
    raise AuthenticationFailed()


# Written out rather than built by the ORM: these run on every authenticated
# device request, and compiling the equivalent joins costs more CPU than the
# round trip. RawQuerySet still applies the fields' converters.
_DEVICE_COLUMNS = f"""
    SELECT d.id, d.connector_id, d.identity, d.status, d.last_seen_at, d.last_ip,
           d.credential_version, c.resources_revision
    FROM {Device._meta.db_table} d
    JOIN {Connector._meta.db_table} c ON c.id = d.connector_id
"""  # noqa: S608  (table names come from the models, values travel as parameters)
_DEVICE_BY_TOKEN = f"""{_DEVICE_COLUMNS}
    JOIN {Credential._meta.db_table} cr ON cr.device_id = d.id
    WHERE cr.token_hash = %s AND cr.kind = %s AND cr.state = %s
      AND d.connector_id = %s AND d.status = %s
"""  # noqa: S608
_DEVICE_BY_VERSION = f"""{_DEVICE_COLUMNS}
    WHERE d.id = %s AND d.connector_id = %s AND d.status = %s AND d.credential_version = %s
"""  # noqa: S608


_CONNECTOR_BY_ID = f"SELECT * FROM {Connector._meta.db_table} WHERE id = %s"  # noqa: S608


def _provisioned_device(sql: str, params: list) -> Device | None:
    for device in Device.objects.raw(sql, params):
        # The connector's alias-table revision rides along; its other fields load on use.
        device.connector = Connector.from_db(
            device._state.db,
            ["id", "resources_revision"],
            [device.connector_id, device.resources_revision],
        )
        return device
    return None


def _token_key(connector_id: str, token: str) -> str:
    return f"devtok:{connector_id}:{hash_token(token)}"


def presented_credential(connector_id: str, authorization: str) -> str | None:
    """A key naming the Token or Basic credential of an Authorization header, under
    which a verified device may be remembered (write_queue); None if malformed."""
    try:
        kind, identity, secret = _parse_authorization(authorization)
    except AuthenticationFailed:
        return None
    if kind == "token":
        return _token_key(connector_id, secret)
    return password_cache_key(connector_id, identity, secret)


def device_still_current(device: Device) -> bool:
    """Whether `device` is still provisioned under the credential version and alias
    table it was loaded with."""
    current = _provisioned_device(
        _DEVICE_BY_VERSION,
        [device.pk, device.connector_id, Device.PROVISIONED, device.credential_version],
    )
    return current is not None and current.resources_revision == device.connector.resources_revision


def _device_by_token(connector_id: str, token: str) -> Device | None:
    """One indexed lookup: token hash → active credential → device and connector."""
    return _provisioned_device(
        _DEVICE_BY_TOKEN,
        [hash_token(token), Connector.TOKEN, Credential.ACTIVE, connector_id, Device.PROVISIONED],
    )


def _remembered_password_device(connector_id: str, remembered) -> Device | None:
    """The device a recent password verification found (`remembered`, read from the
    cache), if it still has the credential version it was verified under."""
    if remembered is None:
        return None
    device_pk, version = remembered
    return _provisioned_device(
        _DEVICE_BY_VERSION, [device_pk, connector_id, Device.PROVISIONED, version]
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
# connector on every call, and connectors change rarely (portal.generations).
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
    connector = next(iter(Connector.objects.raw(_CONNECTOR_BY_ID, [connector_id])), None)
    if connector is None:
        raise ConnectorNotFound()
    if len(_connectors) >= _CONNECTORS_KEPT:
        _connectors.clear()
    _connectors[connector_id] = (stamp, connector)
    return connector


def authenticate_device(connector_id: str, authorization: str, ip, certificate=None) -> Device:
    """Return the provisioned device behind an Authorization header, or raise.

    Tokens cost one indexed lookup. Passwords cost the slow hash only when no
    verification of the same identity:password is remembered in the cache. The
    device never learns which part was wrong; the event log does.
    Without an Authorization header, a TLS client `certificate` authenticates
    (and in certificate mode provisions on first use: certificates.device_auth).

    An address past RATE_LIMIT_AUTH_FAILURES is refused before any credential is
    looked up, so the right one answers 429 like every other. A slow password
    hash is counted against the address before it runs (and given back when the
    password was right): however many requests arrive at once, no more hashes
    run than the limit allows.
    """
    if not CONNECTOR_ID.fullmatch(connector_id or ""):
        raise ConnectorNotFound()
    if not authorization and certificate is not None:
        # Imported here: the certificates app builds on this module.
        from certificates.device_auth import authenticate_certificate

        return authenticate_certificate(connector_id, certificate, ip)
    failures = ratelimit.Rate.parse(settings.RATE_LIMIT_AUTH_FAILURES)
    identity, counted = "", False
    try:
        if not authorization:
            raise AuthenticationFailed("no credentials presented")
        kind, identity, secret = _parse_authorization(authorization)
        if kind == "token":
            ratelimit.peek("authfail", str(ip), failures)
            device = _device_by_token(connector_id, secret)
        else:
            # Keyed by what was presented, so a hit needs neither the connector
            # nor the identity format. Read with the address's failures.
            key = password_cache_key(connector_id, identity, secret)
            [remembered] = ratelimit.peek("authfail", str(ip), failures, read=[key])
            device = _remembered_password_device(connector_id, remembered)
            if device is None:
                connector = get_connector(connector_id)
                spent = ratelimit.spend("authfail", str(ip), failures)
                counted = True
                device = _device_by_password(connector, identity, secret)
                if device is not None:
                    spent.give_back()
                    cache.set(
                        key,
                        (device.pk, device.credential_version),
                        settings.CREDENTIAL_CACHE_SECONDS,
                    )
        if device is None:
            raise AuthenticationFailed(f"unknown or revoked {kind}")
        device.presented_credential = _token_key(connector_id, secret) if kind == "token" else key
    except AuthenticationFailed as exc:
        connector = get_connector(connector_id)
        record_event(connector.pk, identity, Event.AUTH_FAILED, exc.message, ip)
        if not counted:
            ratelimit.hit("authfail", str(ip), failures)
        raise
    return device
