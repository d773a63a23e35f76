"""The append-only event log."""

from django.db import connections
from django.utils import timezone

from devices.models import Event


def record_event(connector_id: str, identity: str, kind: str, reason: str = "", ip=None) -> None:
    """Append one line to a connector's log (a plain INSERT: it runs on every device request)."""
    connection = connections[Event.objects.db]
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_EVENT, event_row(connection, connector_id, identity, kind, reason, ip)
        )


def event_row(connection, connector_id, identity, kind, reason, ip, now=None) -> list:
    ops = connection.ops
    return [
        connector_id,
        identity[:160],
        kind,
        reason[:500],
        # A validated address as text (portal.net.client_ip) or None: the column
        # reads it as it is, so it is not parsed again on every event.
        ip,
        ops.adapt_datetimefield_value(now or timezone.now()),
    ]


INSERT_EVENT = (
    f"INSERT INTO {Event._meta.db_table} "  # noqa: S608  (table name from the model)
    "(connector_id, identity, kind, reason, source_ip, created_at) VALUES (%s, %s, %s, %s, %s, %s)"
)
