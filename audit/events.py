"""Writing the log, and who is behind the lines people cause."""

from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.utils import timezone

from audit.models import Event
from core import inputs
from core.sql import columns, insert

EVENT_FIELDS = (
    "connector",
    "identity",
    "kind",
    "reason",
    "source_ip",
    "created_at",
    "actor",
    "actor_name",
)
EVENT_COLUMNS = tuple(columns(Event, *EVENT_FIELDS))
INSERT_EVENT = insert(Event, EVENT_FIELDS)


@dataclass(frozen=True)
class Actor:
    """A person behind an admin action and the door they came through.

    `via` names the door: "portal", "API", "admin", or a management command
    (which has no signed-in user, so `user` is None).
    """

    user: Any
    via: str

    @classmethod
    def of(cls, request, via: str) -> "Actor":
        return cls(request.user, via)

    @property
    def name(self) -> str:
        return self.user.get_username() if self.user is not None else ""

    def __str__(self) -> str:
        return f"{self.name} via {self.via}" if self.name else self.via


def record_event(
    connector_id: str | None,
    identity: str,
    kind: str,
    reason: str = "",
    ip=None,
    *,
    actor: Actor | None = None,
) -> None:
    """Append one line to the log (a plain INSERT: it runs on every device request)."""
    connection = connections[Event.objects.db]
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_EVENT,
            event_row(connection, connector_id, identity, kind, reason, ip, actor=actor),
        )


def event_row(connection, connector_id, identity, kind, reason, ip, now=None, actor=None) -> list:
    """Values for EVENT_COLUMNS, in their order."""
    ops = connection.ops
    user = actor.user if actor is not None else None
    return [
        connector_id,
        _storable(identity[:160]),
        kind,
        _storable(reason[:500]),
        # A validated address as text (core.net.client_ip) or None: the column
        # reads it as it is, so it is not parsed again on every event.
        ip,
        ops.adapt_datetimefield_value(now or timezone.now()),
        user.pk if user is not None else None,
        actor.name[:150] if actor is not None else "",
    ]


def _storable(text: str) -> str:
    """`text` as PostgreSQL stores it: reasons quote what a caller presented, and the
    log must record a refusal even when that held NUL characters or lone surrogates."""
    if inputs.text_problem(text) is None:
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
