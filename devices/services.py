"""Whitelisting, provisioning, device authentication, data and expiry.

Plain functions raising domain exceptions; the device API and the management
API map those exceptions to status codes, each with one table.
"""

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db import IntegrityError, connections, transaction
from django.db.models import F
from django.utils import timezone

from connectors.identity import InvalidIdentity, normalize_identity
from connectors.models import CONNECTOR_ID_PATTERN, Connector, Resource
from devices.models import Credential, DataPoint, Device, Event
from portal import ratelimit

logger = logging.getLogger(__name__)

TOKEN_LENGTH = 40
_CONNECTOR_ID = re.compile(CONNECTOR_ID_PATTERN)
MIN_PASSWORD_BYTES = 20
MAX_PASSWORD_BYTES = 1024


class DeviceError(Exception):
    """Base of every refusal a device or an admin can be told about."""

    default_message = "refused"

    def __init__(self, message: str = ""):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


class ConnectorNotFound(DeviceError):
    default_message = "no such connector"


class IdentityRejected(DeviceError):
    default_message = "identity does not match the connector's identity format"


class IpNotAllowed(DeviceError):
    default_message = "source address is not in the connector's IP allow-list"


class NotWhitelisted(DeviceError):
    default_message = "identity is not whitelisted"


class AlreadyProvisioned(DeviceError):
    default_message = "device is already provisioned"


class AlreadyWhitelisted(DeviceError):
    default_message = "identity is already whitelisted"


class WindowExpired(DeviceError):
    default_message = "the activation window has passed"


class UnsupportedAuth(DeviceError):
    default_message = "this connector does not provision with that kind of credential"


class AuthenticationFailed(DeviceError):
    default_message = "missing or invalid credentials"


class InvalidData(DeviceError):
    default_message = "invalid data"


class InvalidTransition(DeviceError):
    default_message = "the device cannot make that change from its current status"


RateLimited = ratelimit.RateLimited


# --- events -----------------------------------------------------------------


def record_event(connector_id: str, identity: str, kind: str, reason: str = "", ip=None) -> None:
    """Append one line to a connector's log (a plain INSERT: it runs on every device request)."""
    connection = connections[Event.objects.db]
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_EVENT, _event_row(connection, connector_id, identity, kind, reason, ip)
        )


def _event_row(connection, connector_id, identity, kind, reason, ip, now=None) -> list:
    ops = connection.ops
    return [
        connector_id,
        identity[:160],
        kind,
        reason[:500],
        ops.adapt_ipaddressfield_value(ip),
        ops.adapt_datetimefield_value(now or timezone.now()),
    ]


_INSERT_EVENT = (
    f"INSERT INTO {Event._meta.db_table} "  # noqa: S608  (table name from the model)
    "(connector_id, identity, kind, reason, source_ip, created_at) VALUES (%s, %s, %s, %s, %s, %s)"
)


# --- credentials --------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """40 characters from 240 random bits (base64url alphabet)."""
    return secrets.token_urlsafe(30)[:TOKEN_LENGTH]


def _password_cache_key(connector_id: str, identity: str, password: str) -> str:
    # A fast keyed hash of what was presented: the clear password never reaches the cache.
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        f"{connector_id}\0{identity}\0{password}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"devpw:{digest}"


# --- whitelisting -------------------------------------------------------------


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
    actor: str = "",
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
            record_event(connector.pk, identity, Event.WHITELIST, actor, ip)
    except IntegrityError as exc:
        raise AlreadyWhitelisted() from exc
    return device


# --- provisioning -------------------------------------------------------------


def _check_activation_rate(connector: Connector, identity: str, ip) -> None:
    ratelimit.hit_all(
        [
            (
                "act-ip",
                f"{connector.pk}:{ip}",
                ratelimit.Rate.parse(settings.RATE_LIMIT_ACTIVATE_IP),
            ),
            (
                "act",
                f"{connector.pk}:{identity}",
                ratelimit.Rate.parse(settings.RATE_LIMIT_ACTIVATE),
            ),
        ]
    )


def activate_device(
    connector: Connector, raw_identity: str, password: str | None, ip
) -> str | None:
    """Provision a whitelisted identity (§3.1). Returns the token in token mode.

    Failures are logged as `provision_failed` events with their reason and raised.
    """
    identity = raw_identity if isinstance(raw_identity, str) else ""
    try:
        _check_activation_rate(connector, identity[:160], ip)
        if connector.auth_mode == Connector.CERTIFICATE:
            raise UnsupportedAuth("this connector provisions devices with TLS client certificates")
        if connector.auth_mode == Connector.PASSWORD:
            if password is None or len(password.encode()) < MIN_PASSWORD_BYTES:
                raise UnsupportedAuth(
                    f"a password of at least {MIN_PASSWORD_BYTES} bytes is required"
                )
            if len(password.encode()) > MAX_PASSWORD_BYTES:
                raise UnsupportedAuth(f"passwords are at most {MAX_PASSWORD_BYTES} bytes")
        if not connector.allows_ip(ip):
            raise IpNotAllowed()
        identity = validate_identity(connector, identity)
        token = _provision(connector, identity, password, ip)
    except (DeviceError, RateLimited) as exc:
        reason = getattr(exc, "message", str(exc))
        record_event(connector.pk, identity, Event.PROVISION_FAILED, reason, ip)
        raise
    return token


# The claim: of two concurrent activations only one finds the row still
# whitelisted and inside its window. RETURNING (PostgreSQL, SQLite 3.35+) hands
# back the device in the same round trip.
_CLAIM = f"""
    UPDATE {Device._meta.db_table}
    SET status = %s, auth_mode = %s, provisioned_at = %s,
        first_seen_at = COALESCE(first_seen_at, %s), last_seen_at = %s, last_ip = %s,
        credential_version = credential_version + 1
    WHERE connector_id = %s AND identity = %s AND status = %s AND activation_expires_at > %s
    RETURNING id
"""  # noqa: S608  (table name from the model, values travel as parameters)


def _claim(connector: Connector, identity: str, now, ip) -> int | None:
    connection = connections[Device.objects.db]
    ops = connection.ops
    at = ops.adapt_datetimefield_value(now)
    params = [
        Device.PROVISIONED,
        connector.auth_mode,
        at,
        at,
        at,
        ops.adapt_ipaddressfield_value(ip),
        connector.pk,
        identity,
        Device.WHITELISTED,
        at,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _refusal_for_unclaimed(connector: Connector, identity: str, now) -> DeviceError:
    """Why an identity could not be claimed: what the device is told."""
    device = Device.objects.filter(connector=connector, identity=identity).first()
    if device is None:
        return NotWhitelisted()
    if device.status == Device.REVOKED:
        return AlreadyProvisioned("device was revoked; an admin must reset it first")
    if device.status == Device.EXPIRED or (
        device.status == Device.WHITELISTED
        and device.activation_expires_at is not None
        and device.activation_expires_at <= now
    ):
        return WindowExpired()
    # Provisioned, possibly a moment ago by a concurrent activation.
    return AlreadyProvisioned()


def _provision(connector: Connector, identity: str, password: str | None, ip) -> str | None:
    now = timezone.now()
    with transaction.atomic():
        device_pk = _claim(connector, identity, now, ip)
        if device_pk is None:
            refusal = _refusal_for_unclaimed(connector, identity, now)
            if not (isinstance(refusal, NotWhitelisted) and connector.self_registration):
                raise refusal
            # A device registering its own identity: whitelist it, then claim it.
            try:
                with transaction.atomic():
                    Device.objects.create(
                        connector=connector,
                        identity=identity,
                        activation_expires_at=now + timedelta(minutes=1),
                    )
            except IntegrityError as exc:
                raise AlreadyProvisioned() from exc
            device_pk = _claim(connector, identity, now, ip)
        token = None
        if connector.auth_mode == Connector.TOKEN:
            token = new_token()
            Credential.objects.create(
                device_id=device_pk, kind=Connector.TOKEN, token_hash=hash_token(token)
            )
        else:
            Credential.objects.create(
                device_id=device_pk,
                kind=Connector.PASSWORD,
                password_hash=make_password(password),
            )
        record_event(connector.pk, identity, Event.PROVISION, f"{connector.auth_mode} issued", ip)
    return token


# --- authentication -----------------------------------------------------------


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


def _device_by_token(connector_id: str, token: str) -> Device | None:
    """One indexed lookup: token hash → active credential → device and connector."""
    return _provisioned_device(
        _DEVICE_BY_TOKEN,
        [hash_token(token), Connector.TOKEN, Credential.ACTIVE, connector_id, Device.PROVISIONED],
    )


def _remembered_password_device(connector_id: str, key: str) -> Device | None:
    """A device whose password was verified recently under its current credential version."""
    remembered = cache.get(key)
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
    # check_password runs the slow hash even without a stored one, so a missing
    # device takes as long to refuse as a wrong password.
    if not check_password(password, credential.password_hash if credential else None):
        return None
    return device if credential is not None else None


def get_connector(connector_id: str) -> Connector:
    # Only well-formed ids reach the database (a NUL byte would upset PostgreSQL).
    well_formed = bool(connector_id) and _CONNECTOR_ID.fullmatch(connector_id)
    connector = None
    if well_formed:
        # Written out for the same reason as the device lookups above.
        connector = next(iter(Connector.objects.raw(_CONNECTOR_BY_ID, [connector_id])), None)
    if connector is None:
        raise ConnectorNotFound()
    return connector


def authenticate_device(connector_id: str, authorization: str, ip, certificate=None) -> Device:
    """Return the provisioned device behind an Authorization header, or raise.

    Tokens cost one indexed lookup. Passwords cost the slow hash only when no
    verification of the same identity:password is remembered in the cache. The
    device never learns which part was wrong; the event log does.
    Without an Authorization header, a TLS client `certificate` authenticates
    (and in certificate mode provisions on first use: certificates.device_auth).
    """
    if not authorization and certificate is not None:
        # Imported here: the certificates app builds on this module.
        from certificates.device_auth import authenticate_certificate

        return authenticate_certificate(connector_id, certificate, ip)
    if not _CONNECTOR_ID.fullmatch(connector_id or ""):
        raise ConnectorNotFound()
    failures = ratelimit.Rate.parse(settings.RATE_LIMIT_AUTH_FAILURES)
    identity = ""
    try:
        if not authorization:
            raise AuthenticationFailed("no credentials presented")
        kind, identity, secret = _parse_authorization(authorization)
        if kind == "token":
            device = _device_by_token(connector_id, secret)
        else:
            # Keyed by what was presented, so a hit needs neither the connector
            # nor the identity format.
            key = _password_cache_key(connector_id, identity, secret)
            device = _remembered_password_device(connector_id, key)
            if device is None:
                connector = get_connector(connector_id)
                ratelimit.peek("authfail", str(ip), failures)
                device = _device_by_password(connector, identity, secret)
                if device is not None:
                    cache.set(
                        key,
                        (device.pk, device.credential_version),
                        settings.CREDENTIAL_CACHE_SECONDS,
                    )
        if device is None:
            raise AuthenticationFailed(f"unknown or revoked {kind}")
    except AuthenticationFailed as exc:
        connector = get_connector(connector_id)
        record_event(connector.pk, identity, Event.AUTH_FAILED, exc.message, ip)
        ratelimit.hit("authfail", str(ip), failures)
        raise
    return device


# --- data -----------------------------------------------------------------------


def _check_value(fmt: str, value: str) -> None:
    if fmt == Resource.NUMBER:
        try:
            number = float(value)
        except ValueError as exc:
            raise InvalidData(f"{value!r} is not a number") from exc
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidData(f"{value!r} is not a finite number")
    elif fmt == Resource.BOOLEAN:
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidData(f"{value!r} is not a boolean (true, false, 1 or 0)")
    elif fmt == Resource.JSON:
        try:
            json.loads(value)
        except ValueError as exc:
            raise InvalidData(f"{value!r} is not JSON") from exc


_resource_formats_memo: dict[str, tuple[int, dict[str, str]]] = {}


def resource_formats(connector: Connector) -> dict[str, str]:
    """alias → format of a connector, remembered per process until its revision changes.

    The revision comes with the connector row the request loaded anyway, so a
    resource defined a moment ago is never missed.
    """
    memo = _resource_formats_memo.get(connector.pk)
    if memo is not None and memo[0] == connector.resources_revision:
        return memo[1]
    formats = dict(
        Resource.objects.filter(connector_id=connector.pk).values_list("alias", "format")
    )
    _resource_formats_memo[connector.pk] = (connector.resources_revision, formats)
    return formats


def write_data(device: Device, pairs: list[tuple[str, str]], ip) -> None:
    """Store values for defined aliases; log every write, including undefined aliases."""
    ratelimit.hit("write", str(device.pk), ratelimit.Rate.parse(settings.RATE_LIMIT_WRITE))
    if not pairs:
        raise InvalidData("no alias=value pairs in the body")
    formats = resource_formats(device.connector)
    stored, ignored = [], []
    for alias, value in pairs:
        if alias in formats:
            try:
                _check_value(formats[alias], value)
            except InvalidData as exc:
                raise InvalidData(f"{alias}: {exc.message}") from exc
            stored.append((alias, value))
        else:
            ignored.append(alias)
    reason = ", ".join(f"{alias}={value}" for alias, value in pairs)
    if ignored:
        reason += f" (not stored, undefined: {', '.join(ignored)})"
    now = timezone.now()
    _insert_write(device, stored, reason, ip, now)
    _touch(device, now, ip)


def _insert_write(device: Device, points: list[tuple[str, str]], reason: str, ip, now) -> None:
    """Insert a write's data points and its event, atomically, in as few round trips
    as the database allows: one statement on PostgreSQL (a data-modifying CTE)."""
    connection = connections[device._state.db or "default"]
    created_at = connection.ops.adapt_datetimefield_value(now)
    event = _event_row(
        connection, device.connector_id, device.identity, Event.WRITE, reason, ip, now
    )
    with connection.cursor() as cursor:
        if not points:
            cursor.execute(_INSERT_EVENT, event)
            return
        insert_points = (
            f"INSERT INTO {DataPoint._meta.db_table} (device_id, alias, value, created_at) "  # noqa: S608
            "VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(points))
        )
        values = [item for alias, value in points for item in (device.pk, alias, value, created_at)]
        if connection.vendor == "postgresql":
            cursor.execute(f"WITH points AS ({insert_points}) {_INSERT_EVENT}", values + event)
        else:
            with transaction.atomic(using=connection.alias):
                cursor.execute(insert_points, values)
                cursor.execute(_INSERT_EVENT, event)


def _touch(device: Device, now, ip) -> None:
    """Record last-seen, at most every 30 s per device, to keep writes cheap."""
    if (
        device.last_seen_at
        and (now - device.last_seen_at).total_seconds() < 30
        and (device.last_ip == ip)
    ):
        return
    Device.objects.filter(pk=device.pk).update(last_seen_at=now, last_ip=ip)


def read_latest(device: Device, aliases: list[str]) -> dict[str, str]:
    """Latest value of each defined alias asked for that has one."""
    defined = set(
        Resource.objects.filter(connector_id=device.connector_id, alias__in=aliases).values_list(
            "alias", flat=True
        )
    )
    values = {}
    for alias in aliases:
        if alias in defined and alias not in values:
            point = (
                DataPoint.objects.filter(device=device, alias=alias)
                .order_by("-id")
                .values_list("value", flat=True)
                .first()
            )
            if point is not None:
                values[alias] = point
    return values


def wait_for_change(device: Device, alias: str, since: float | None, timeout: float):
    """Long poll: the alias's value once it changes after `since` (unix seconds).

    Without `since`, waits for a value newer than the latest at call time.
    Returns the value, or None at the timeout.
    """
    if not Resource.objects.filter(connector_id=device.connector_id, alias=alias).exists():
        raise InvalidData(f"alias {alias!r} is not defined")
    points = DataPoint.objects.filter(device=device, alias=alias).order_by("-id")
    if since is not None:
        newer = points.filter(created_at__gt=datetime.fromtimestamp(since, tz=UTC)).first()
        if newer is not None:
            return newer.value
    latest = points.values_list("id", flat=True).first() or 0
    deadline = time.monotonic() + min(timeout, settings.LONG_POLL_MAX_SECONDS)
    while time.monotonic() < deadline:
        time.sleep(min(settings.LONG_POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))
        newer = points.filter(id__gt=latest).first()
        if newer is not None:
            return newer.value
    return None


# --- admin actions and expiry ---------------------------------------------------


def _drop_credentials(device: Device, now) -> None:
    device.credentials.filter(state__in=[Credential.ACTIVE, Credential.INACTIVE]).update(
        state=Credential.REVOKED, revoked_at=now
    )


def reset_device(device: Device, *, window_seconds: int | None = None, actor="", ip=None) -> Device:
    """Back to whitelisted with a fresh window and no credentials."""
    now = timezone.now()
    with transaction.atomic():
        _drop_credentials(device, now)
        Device.objects.filter(pk=device.pk).update(
            status=Device.WHITELISTED,
            activation_expires_at=activation_deadline(device.connector, window_seconds),
            provisioned_at=None,
            auth_mode="",
            credential_version=F("credential_version") + 1,
        )
        record_event(device.connector_id, device.identity, Event.RESET, actor, ip)
    device.refresh_from_db()
    return device


def revoke_device(device: Device, *, actor="", ip=None) -> Device:
    """Revoke every credential; the device is refused until an admin resets it."""
    now = timezone.now()
    with transaction.atomic():
        _drop_credentials(device, now)
        Device.objects.filter(pk=device.pk).update(
            status=Device.REVOKED, credential_version=F("credential_version") + 1
        )
        record_event(device.connector_id, device.identity, Event.REVOKE, actor, ip)
    device.refresh_from_db()
    return device


def delete_device(device: Device, *, actor="", ip=None) -> None:
    with transaction.atomic():
        record_event(device.connector_id, device.identity, Event.DELETE, actor, ip)
        device.delete()


def expire_stale_whitelist(batch_size: int | None = None) -> int:
    """Mark whitelisted entries past their window `expired`, in batches.

    Each batch claims its rows under `FOR UPDATE SKIP LOCKED` (PostgreSQL) and
    the update re-checks the status, so two workers never handle one row twice.
    """
    batch_size = batch_size or settings.EXPIRY_BATCH_SIZE
    total = 0
    while True:
        now = timezone.now()
        with transaction.atomic():
            rows = list(
                Device.objects.select_for_update(skip_locked=True)
                .filter(status=Device.WHITELISTED, activation_expires_at__lte=now)
                .order_by("activation_expires_at")
                .values_list("pk", "connector_id", "identity")[:batch_size]
            )
            if not rows:
                return total
            claimed = Device.objects.filter(
                pk__in=[pk for pk, _, _ in rows], status=Device.WHITELISTED
            ).update(status=Device.EXPIRED)
            Event.objects.bulk_create(
                Event(
                    connector_id=connector_id,
                    identity=identity,
                    kind=Event.EXPIRE,
                    reason="activation window passed",
                )
                for _, connector_id, identity in rows
            )
        total += claimed
        if len(rows) < batch_size:
            return total


def purge_old_records(batch_size: int = 10_000) -> dict[str, int]:
    """Delete events and data points older than their retention, a batch at a time.

    Batches keep each transaction short so writes from devices never wait long.
    A retention of 0 days keeps records forever.
    """
    purged = {}
    for model, days in (
        (Event, settings.EVENT_RETENTION_DAYS),
        (DataPoint, settings.DATA_RETENTION_DAYS),
    ):
        count = 0
        if days:
            cutoff = timezone.now() - timedelta(days=days)
            while True:
                ids = list(
                    model.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                        :batch_size
                    ]
                )
                if not ids:
                    break
                # A raw delete: events refuse updates, and there are no signals to run.
                count += model.objects.filter(pk__in=ids)._raw_delete(model.objects.db)
        purged[model._meta.model_name] = count
    return purged
