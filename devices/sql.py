"""Every hand-written SQL statement of the devices app, in one place.

Statements are written out where the ORM would cost more CPU than the round trip
on a device request's hot path (authentication, activation, writes), and where
bulk loading needs what the ORM does not say (COPY, INSERT … ON CONFLICT …
RETURNING, for CSV imports and the ingest). Table and column names come from the
models (`columns`, `insert`, `constant_columns`), values always travel as
parameters. tests/devices/test_sql.py runs each statement against the database.
"""

from dataclasses import dataclass

import psycopg
from django.db import connections, transaction

from audit import events
from audit.models import Event
from connectors.models import Connector
from core.sql import columns, insert
from devices.models import Credential, DataPoint, Device

# The log's INSERT lives with the log (audit.events); the write paths below extend it.
EVENT_COLUMNS, INSERT_EVENT = events.EVENT_COLUMNS, events.INSERT_EVENT

# --- data points -------------------------------------------------------------------------

DATA_POINT_FIELDS = ("device", "alias", "value", "created_at")
INSERT_DATA_POINT = insert(DataPoint, DATA_POINT_FIELDS)


def insert_data_points(count: int) -> str:
    """INSERT of `count` data points in one statement."""
    row = f"({', '.join(['%s'] * len(DATA_POINT_FIELDS))})"
    return INSERT_DATA_POINT.rsplit(" VALUES ", 1)[0] + " VALUES " + ", ".join([row] * count)


def insert_events(count: int) -> str:
    """INSERT of `count` events in one statement (values: INSERT_EVENT's, row by row)."""
    row = f"({', '.join(['%s'] * len(EVENT_COLUMNS))})"
    return INSERT_EVENT.rsplit(" VALUES ", 1)[0] + " VALUES " + ", ".join([row] * count)


def insert_data_points_and_event(count: int) -> str:
    """PostgreSQL: `count` data points and their write's event in one statement
    (values: the points', then INSERT_EVENT's)."""
    return f"WITH points AS ({insert_data_points(count)}) {INSERT_EVENT}"


_device = Device._meta.db_table
_last_seen_at, _last_ip = columns(Device, "last_seen_at", "last_ip")
TOUCH_DEVICE = f"UPDATE {_device} SET {_last_seen_at} = %s, {_last_ip} = %s WHERE id = %s"  # noqa: S608

# --- authentication ----------------------------------------------------------------------

# A device with its connector's alias-table revision (which RawQuerySet hands to
# the model as an extra attribute).
_DEVICE = f"""
    SELECT d.id, d.connector_id, d.identity, d.status, d.last_seen_at, d.last_ip,
           d.credential_version, c.resources_revision
    FROM {_device} d
    JOIN {Connector._meta.db_table} c ON c.id = d.connector_id
"""  # noqa: S608
DEVICE_BY_TOKEN = f"""{_DEVICE}
    JOIN {Credential._meta.db_table} cr ON cr.device_id = d.id
    WHERE cr.token_hash = %s AND cr.kind = %s AND cr.state = %s
      AND d.connector_id = %s AND d.status = %s
"""  # noqa: S608
DEVICE_BY_VERSION = f"""{_DEVICE}
    WHERE d.id = %s AND d.connector_id = %s AND d.status = %s AND d.credential_version = %s
"""  # noqa: S608
CONNECTOR_BY_ID = f"SELECT * FROM {Connector._meta.db_table} WHERE id = %s"  # noqa: S608

# --- activation --------------------------------------------------------------------------

# The claim: of two concurrent activations only one finds the row still
# whitelisted and inside its window. RETURNING (PostgreSQL, SQLite 3.35+) hands
# back the device in the same round trip. It is the change of credentials, so it
# bumps credential_version itself (devices.services.credentials).
CLAIM = f"""
    UPDATE {_device}
    SET status = %s, auth_mode = %s, provisioned_at = %s,
        first_seen_at = COALESCE(first_seen_at, %s), last_seen_at = %s, last_ip = %s,
        credential_version = credential_version + 1
    WHERE connector_id = %s AND identity = %s AND status = %s AND activation_expires_at > %s
    RETURNING id
"""  # noqa: S608
CREDENTIAL_FIELDS = (
    "device",
    "kind",
    "state",
    "token_hash",
    "password_hash",
    "created_at",
    # Not null, and blank for a token or a password (Django sets no database defaults).
    "certificate_pem",
    "fingerprint",
    "serial",
    "issuer_fingerprint",
)
INSERT_CREDENTIAL = insert(Credential, CREDENTIAL_FIELDS)
# On PostgreSQL the claim, the credential and the provision event are one
# statement (one round trip, no explicit transaction); nothing is inserted
# unless the claim found the row. Untyped parameters outside VALUES are cast.
_CASTS = {"created_at": "timestamptz", "source_ip": "inet"}


def _selected(model, names, first: str) -> str:
    fields = [first] + [f"%s::{_CASTS[name]}" if name in _CASTS else "%s" for name in names[1:]]
    return (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns(model, *names))}) "  # noqa: S608
        f"SELECT {', '.join(fields)} FROM claimed"
    )


ACTIVATE = f"""
    WITH claimed AS ({CLAIM}),
    issued AS ({_selected(Credential, CREDENTIAL_FIELDS, "id")}),
    logged AS ({_selected(Event, events.EVENT_FIELDS, "%s")})
    SELECT id FROM claimed
"""  # noqa: S608


def activate(
    connector_id: str,
    auth_mode: str,
    identity: str,
    now,
    ip,
    *,
    token_hash: str | None,
    password_hash: str,
    event: list,
) -> int | None:
    """Claim a whitelisted device, give it its credential (of kind `auth_mode`) and
    log the provision (`event`: INSERT_EVENT's values): the device's id, or None,
    with nothing changed, when there was nothing to claim."""
    connection = connections[Device.objects.db]
    at = connection.ops.adapt_datetimefield_value(now)
    claim = [
        Device.PROVISIONED, auth_mode, at, at, at, ip,
        connector_id, identity, Device.WHITELISTED, at,
    ]  # fmt: skip
    credential = [auth_mode, Credential.ACTIVE, token_hash, password_hash, at, "", "", "", ""]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(CLAIM, claim)
            row = cursor.fetchone()
            if row is not None:
                cursor.execute(INSERT_CREDENTIAL, [row[0], *credential])
                cursor.execute(INSERT_EVENT, event)
        return row[0] if row else None
    # Django's cursor sends values inlined in the SQL text, so PostgreSQL would
    # parse and plan this statement on every activation; a cursor of psycopg's own
    # binds them server-side and keeps the statement prepared on the connection
    # (portal/db/postgresql). Django's checks of a reused connection come first,
    # as they would for a cursor of its own.
    with connection.wrap_database_errors:
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(ACTIVATE, [*claim, *credential, *event], prepare=True)
            row = cursor.fetchone()
    return row[0] if row else None


# --- CSV imports (devices.imports, PostgreSQL) ----------------------------------------------

_connector_id, _identity, _tags = columns(Device, "connector", "identity", "tags")
# One array parameter: an IN list of thousands of placeholders costs ten times
# more to build and plan.
WHITELISTED_IDENTITIES = (
    f"SELECT {_identity} FROM {_device} WHERE {_connector_id} = %s AND {_identity} = ANY(%s)"  # noqa: S608
)
# Foreign keys are checked at commit by default: an import checks them with each batch.
CHECK_CONSTRAINTS_NOW = "SET CONSTRAINTS ALL IMMEDIATE"
PINNED_FIELDS = ("certificate_pem", "fingerprint", "serial", "not_before", "not_after")
_STAGE_COLUMNS = (
    "line integer, identity text, tags jsonb, certificate_pem text, fingerprint text,"
    " serial text, not_before timestamptz, not_after timestamptz"
)


def constant_columns(model, template, taken: set[str], connection):
    """(columns, SQL expressions, parameters) for every field of `model` not in `taken`.

    Built from the model's own fields and defaults, so a field added to the
    model later is filled the way `Model.save()` would fill it.
    """
    names, expressions, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname in taken:
            continue
        names.append(connection.ops.quote_name(field.column))
        expressions.append(f"CAST(%s AS {field.cast_db_type(connection)})")
        params.append(field.get_db_prep_save(field.pre_save(template, add=True), connection))
    return names, expressions, params


@dataclass(frozen=True, slots=True)
class ImportStage:
    """The statements of one import's staging table, a temporary table of its connection.

    Rows are staged as (line, identity, tags, then PINNED_FIELDS or NULLs).
    `insert` (with `params`) and `insert_pinned` (with `pinned_params`) move them
    into the devices table, the second with their pinned certificates, and
    return (line, identity) of each row ON CONFLICT skipped: identities
    whitelisted since their batch was checked. `copy_devices` loads rows without
    certificates straight into the devices table: identity, tags, then `params`.
    """

    create: str
    drop: str
    truncate: str
    copy_rows: str
    copy_devices: str
    insert: str
    insert_pinned: str
    params: list
    pinned_params: list


def import_stage(name: str, template: Device, connection) -> ImportStage:
    """The statements of staging table `whitelist_import_<name>`; new devices copy `template`."""
    quote = connection.ops.quote_name
    table = quote(f"whitelist_import_{name}")
    device_table, credential_table = quote(_device), quote(Credential._meta.db_table)
    names, expressions, params = constant_columns(
        Device, template, {"identity", "tags"}, connection
    )
    new = (
        f"new AS (INSERT INTO {device_table} ({_identity}, {_tags}, {', '.join(names)}) "  # noqa: S608
        f"SELECT identity, tags, {', '.join(expressions)} FROM {table} ORDER BY line "
        f"ON CONFLICT ({_connector_id}, {_identity}) DO NOTHING RETURNING id, {_identity})"
    )
    late = (
        f"SELECT staged.line, staged.identity FROM {table} AS staged "  # noqa: S608
        f"LEFT JOIN new ON new.{_identity} = staged.identity WHERE new.id IS NULL "
        "ORDER BY staged.line"
    )
    pinned_names, pinned_expressions, pinned_params = constant_columns(
        Credential,
        Credential(kind=Connector.CERTIFICATE, state=Credential.INACTIVE),
        {"device_id", *PINNED_FIELDS},
        connection,
    )
    pinned_columns = columns(Credential, "device", *PINNED_FIELDS)
    pinned = (
        f"pinned AS (INSERT INTO {credential_table} "  # noqa: S608
        f"({', '.join(pinned_columns + pinned_names)}) "
        f"SELECT new.id, {', '.join(f'staged.{field}' for field in PINNED_FIELDS)}, "
        f"{', '.join(pinned_expressions)} FROM new JOIN {table} AS staged "
        f"ON staged.identity = new.{_identity} WHERE staged.certificate_pem IS NOT NULL)"
    )
    return ImportStage(
        create=f"CREATE TEMPORARY TABLE {table} ({_STAGE_COLUMNS})",
        drop=f"DROP TABLE IF EXISTS {table}",
        truncate=f"TRUNCATE {table}",
        copy_rows=f"COPY {table} FROM STDIN",
        copy_devices=(f"COPY {device_table} ({_identity}, {_tags}, {', '.join(names)}) FROM STDIN"),
        insert=f"WITH {new} {late}",
        insert_pinned=f"WITH {new}, {pinned} {late}",
        params=params,
        pinned_params=params + pinned_params,
    )


# --- the ingest (devices.ingest, PostgreSQL) ---------------------------------------------

COPY_DATA_POINTS = (
    f"COPY {DataPoint._meta.db_table} ({', '.join(columns(DataPoint, *DATA_POINT_FIELDS))}) "
    "FROM STDIN"
)
COPY_EVENTS = f"COPY {Event._meta.db_table} ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
