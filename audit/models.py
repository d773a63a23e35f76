"""The append-only log every app writes: what happened, to whom, why, from where, by whom.

The lowest app of all: every other app records events, so this one imports none
of them (the connector is named by its label, "connectors.Connector").
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class EventQuerySet(models.QuerySet):
    def newest_of(self, connector_id: str):
        """A connector's events, newest first, read from the index event_connector_recent.

        Filtered by equality, the connector drops out of the order, and PostgreSQL may
        walk the primary key backwards instead, skipping every newer event of other
        connectors: hundreds of thousands of rows before a quiet connector's first ten.
        A range of that one value keeps the connector in the order, which only
        event_connector_recent gives. For the newest rows only: a page further back
        (id below a cursor) seeks better by equality.
        """
        return self.filter(connector_id__gte=connector_id, connector_id__lte=connector_id).order_by(
            "connector_id", "-id"
        )

    def delete(self):
        raise TypeError("events are append-only; only retention removes them (purge_old_records)")

    delete.queryset_only = True


class Event(models.Model):
    """One append-only line of the log: what happened, to whom, why, from where, by whom.

    Only retention (devices.services.purge_old_records) removes events. The table keeps
    the name it had when the log belonged to the devices app.
    """

    WHITELIST = "whitelist"
    PROVISION = "provision"
    PROVISION_FAILED = "provision_failed"
    WRITE = "write"
    WRITE_IGNORED = "write_ignored"
    READ = "read"
    EXPIRE = "expire"
    RESET = "reset"
    REVOKE = "revoke"
    DELETE = "delete"
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    IMPORT = "import"
    CERTIFICATE = "certificate"
    REGISTER = "register"
    PAIR = "pair"
    MESSAGE = "message"
    PAIR_FAILED = "pair_failed"
    RENAME = "rename"
    RELEASE = "release"
    CREATE = "create"
    CHANGE = "change"
    COMMAND = "command"
    MQTT_CONNECT = "mqtt_connect"
    MQTT_DISCONNECT = "mqtt_disconnect"
    MQTT_REFUSED = "mqtt_refused"
    MQTT_KICKED = "mqtt_kicked"
    KINDS = [
        (WHITELIST, "Whitelisted"),
        (PROVISION, "Provisioned"),
        (PROVISION_FAILED, "Provisioning failed"),
        (WRITE, "Write"),
        (WRITE_IGNORED, "Write to undefined alias"),
        (READ, "Read"),
        (EXPIRE, "Expired"),
        (RESET, "Reset"),
        (REVOKE, "Revoked"),
        (DELETE, "Deleted"),
        (AUTH_FAILED, "Authentication failed"),
        (RATE_LIMITED, "Rate limited"),
        (IMPORT, "Import"),
        (CERTIFICATE, "Certificate authority or certificate"),
        (REGISTER, "Secure registration"),
        (PAIR, "Paired"),
        (PAIR_FAILED, "Pairing refused"),
        (MESSAGE, "Message"),
        (RENAME, "Renamed by its owner"),
        (RELEASE, "Released by its owner"),
        (CREATE, "Created"),
        (CHANGE, "Changed"),
        (COMMAND, "Command to the device"),
        (MQTT_CONNECT, "Connected over MQTT"),
        (MQTT_DISCONNECT, "Disconnected from MQTT"),
        (MQTT_REFUSED, "MQTT connection refused"),
        (MQTT_KICKED, "MQTT session ended by Gatehouse"),
    ]

    # The log is the audit trail of a connector, so it outlives the connector:
    # no database constraint and nothing done on delete. Connector ids are random
    # and never reused, so the id alone keeps naming a deleted one (its `delete`
    # event says what it was called). Null for actions outside any connector (API
    # tokens). Not indexed on its own: event_connector_recent serves it.
    connector = models.ForeignKey(
        "connectors.Connector",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,
    )
    identity = models.CharField(max_length=160, blank=True)
    # The person behind an admin action; empty for what devices and the system do.
    # The name is a snapshot, so the line still says who once the account is gone
    # (deleting a user only clears `actor`, through the partial index below). No
    # database constraint: adding one would scan the whole table to validate it.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # A database default: device requests insert events with hand-written SQL
    # (audit.events, provisioning, ingest) that has no actor to name.
    actor_name = models.CharField(max_length=150, blank=True, db_default="")
    kind = models.CharField(max_length=20, choices=KINDS)
    reason = models.CharField(max_length=500, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        db_table = "devices_event"
        indexes = [
            models.Index(fields=["connector", "-id"], name="event_connector_recent"),
            models.Index(fields=["connector", "identity", "-id"], name="event_identity_recent"),
            # The overview's counts per kind over a time range, read from the index alone.
            models.Index(fields=["connector", "kind", "created_at"], name="event_kind_time"),
            models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="event_actor"),
        ]

    def __str__(self):
        return f"{self.kind} {self.identity}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("events are append-only; only retention removes them (purge_old_records)")


class EventCount(models.Model):
    """How many events of one kind a connector logged in one hour or day that is over
    (audit.counts): the overview's charts read these instead of every line of the log.
    Kept for audit.counts.KEPT (purge_old_records); like the log, no constraint on the
    connector."""

    connector = models.ForeignKey(
        "connectors.Connector",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        db_index=False,
    )
    kind = models.CharField(max_length=20, choices=Event.KINDS)
    unit = models.CharField(max_length=4, choices=[("hour", "hour"), ("day", "day")])
    start = models.DateTimeField()
    rows = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "unit", "start", "kind"], name="event_count_column"
            )
        ]
        indexes = [models.Index(fields=["start"], name="event_count_start")]

    def __str__(self):
        return f"{self.kind} {self.unit} {self.start:%Y-%m-%d %H:%M}: {self.rows}"
