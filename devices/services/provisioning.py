"""Provisioning a whitelisted identity."""

from datetime import timedelta

import psycopg
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from connectors.models import Connector
from devices.models import Credential, Device, Event
from devices.services.authentication import CONNECTOR_ID, get_connector
from devices.services.credentials import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_BYTES,
    hash_token,
    new_token,
)
from devices.services.errors import (
    AlreadyProvisioned,
    ConnectorNotFound,
    DeviceError,
    IdentityRejected,
    IpNotAllowed,
    NotWhitelisted,
    RateLimited,
    UnsupportedAuth,
    WindowExpired,
)
from devices.services.events import record_event
from devices.services.whitelist import validate_identity
from portal import generations, ratelimit


def _activation_checks(connector_id: str, identity: str, ip) -> list:
    return [
        (
            "act-ip",
            f"{connector_id}:{ip}",
            ratelimit.Rate.parse(settings.RATE_LIMIT_ACTIVATE_IP),
        ),
        (
            "act",
            f"{connector_id}:{identity[:160]}",
            ratelimit.Rate.parse(settings.RATE_LIMIT_ACTIVATE),
        ),
    ]


def check_activation_rate(connector: Connector, identity: str, ip) -> None:
    """Count one activation attempt per source address and per identity."""
    ratelimit.hit_all(_activation_checks(connector.pk, identity, ip))


def activate(connector_id: str, fields: dict[str, str], ip) -> str | None:
    """The device API's activation: the attempt is counted and the
    connector's generation stamp read in one cache round trip, then activate_device."""
    if not CONNECTOR_ID.fullmatch(connector_id or ""):
        raise ConnectorNotFound()
    identity = fields.get("id")
    counted, [stamp] = ratelimit.count_all(
        _activation_checks(connector_id, identity or "", ip),
        read=[generations.connector_key(connector_id)],
    )
    connector = get_connector(connector_id, stamp=stamp)
    if identity is None:
        raise IdentityRejected(f"missing id; expected {connector.identity_format.describe()}")
    return activate_device(connector, identity, fields.get("password"), ip, counted=counted)


def activate_device(
    connector: Connector,
    raw_identity: str,
    password: str | None,
    ip,
    counted: ratelimit.Counted | None = None,
) -> str | None:
    """Provision a whitelisted identity. Returns the token in token mode.

    Failures are logged as `provision_failed` events with their reason and raised.
    """
    identity = raw_identity if isinstance(raw_identity, str) else ""
    try:
        if counted is not None:
            counted.check()
        else:
            check_activation_rate(connector, identity, ip)
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


def _claim_params(connection, connector: Connector, identity: str, at, ip) -> list:
    return [
        Device.PROVISIONED,
        connector.auth_mode,
        at,
        at,
        at,
        connection.ops.adapt_ipaddressfield_value(ip),
        connector.pk,
        identity,
        Device.WHITELISTED,
        at,
    ]


def _claim(connector: Connector, identity: str, now, ip) -> int | None:
    connection = connections[Device.objects.db]
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, _claim_params(connection, connector, identity, at, ip))
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


# Token mode on PostgreSQL: the claim, the new credential and the provision event
# in one statement, so one round trip and no explicit transaction. Nothing is
# inserted unless the claim found the row.
_ACTIVATE_WITH_TOKEN = f"""
    WITH claimed AS ({_CLAIM}),
    issued AS (
        INSERT INTO {Credential._meta.db_table}
            (device_id, kind, state, token_hash, password_hash, certificate_pem,
             fingerprint, serial, issuer_fingerprint, created_at)
        SELECT id, %s, %s, %s, '', '', '', '', '', %s::timestamptz FROM claimed
    ),
    logged AS (
        INSERT INTO {Event._meta.db_table}
            (connector_id, identity, kind, reason, source_ip, created_at)
        SELECT %s, %s, %s, %s, %s::inet, %s::timestamptz FROM claimed
    )
    SELECT id FROM claimed
"""  # noqa: S608  (table names from the models, values travel as parameters)


def _activate_with_token(connector: Connector, identity: str, now, ip) -> str | None:
    """Claim and issue a token in one statement (PostgreSQL); None if nothing was claimed."""
    connection = connections[Device.objects.db]
    token = new_token()
    # Values bound server-side: the address goes as text, which PostgreSQL reads
    # as inet (the column's type, or the cast), so it is not parsed here first.
    params = [
        Device.PROVISIONED,
        connector.auth_mode,
        now,
        now,
        now,
        ip,
        connector.pk,
        identity,
        Device.WHITELISTED,
        now,
        Connector.TOKEN,
        Credential.ACTIVE,
        hash_token(token),
        now,
        connector.pk,
        identity[:160],
        Event.PROVISION,
        _issued(connector),
        ip,
        now,
    ]
    # Django's cursor sends values inlined in the SQL text, so PostgreSQL would
    # parse and plan this statement on every activation; a cursor of psycopg's own
    # binds them server-side and keeps the statement prepared on the connection
    # (portal/db/postgresql). Django's checks of a reused connection come first,
    # as they would for a cursor of its own.
    with connection.wrap_database_errors:
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_ACTIVATE_WITH_TOKEN, params, prepare=True)
            claimed = cursor.fetchone()
    return token if claimed else None


def _issued(connector: Connector) -> str:
    return f"{connector.auth_mode} issued"


def _provision(connector: Connector, identity: str, password: str | None, ip) -> str | None:
    now = timezone.now()
    if (
        connector.auth_mode == Connector.TOKEN
        and connections[Device.objects.db].vendor == "postgresql"
    ):
        token = _activate_with_token(connector, identity, now, ip)
        if token is not None:
            return token
        # Not claimed: the general path below finds out why (or self-registers).
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
        record_event(connector.pk, identity, Event.PROVISION, _issued(connector), ip)
    return token
