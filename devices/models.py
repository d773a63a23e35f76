from django.conf import settings
from django.db import connections, models
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from connectors.identity import HEX, MAC, UUID4, InvalidIdentity, normalize_identity
from connectors.models import Connector

# Identity types whose stored form is lower case (connectors.identity.normalize_identity).
LOWER_CASE_TYPES = (HEX, UUID4, MAC)


def identity_names(connector: Connector, raw_identity: str) -> set[str]:
    """The names an identity's log lines are under: refusals are logged as the device
    sent it, everything else under the normalised form, so look for both."""
    names = {raw_identity}
    try:
        names.add(normalize_identity(raw_identity, connector.identity_format))
    except InvalidIdentity:
        pass
    return names


class DeviceQuerySet(models.QuerySet):
    """Filters shared by the portal's Devices tab and the management API."""

    def tagged(self, name: str, value: str | None = None):
        """Devices carrying tag `name` (with `value`, unless None)."""
        if connections[self.db].vendor != "sqlite":
            wanted = {"name": name} if value is None else {"name": name, "value": value}
            # JSON containment, served by the GIN index on PostgreSQL.
            return self.filter(tags__contains=[wanted])
        # SQLite has no JSON containment; look through the list with json_each. Only
        # the model's own table name is spliced in; the tag travels as a parameter.
        table = self.model._meta.db_table
        sql = (
            f'EXISTS (SELECT 1 FROM json_each("{table}"."tags") AS tag '  # noqa: S608
            "WHERE json_extract(tag.value, '$.name') = %s"
        )
        params = [name]
        if value is not None:
            sql += " AND json_extract(tag.value, '$.value') = %s"
            params.append(value)
        tagged = RawSQL(sql + ")", params, output_field=BooleanField())  # noqa: S611
        return self.alias(tagged=tagged).filter(tagged=True)

    def search(self, connector: Connector, text: str):
        """A full identity finds its device by the unique index; anything else
        matches as a case-insensitive substring (a trigram index on PostgreSQL)."""
        try:
            exact = normalize_identity(text, connector.identity_format)
        except InvalidIdentity:
            exact = None
        if exact is not None and self.filter(identity=exact).exists():
            return self.filter(identity=exact)
        return self.filter(identity__icontains=text)

    def prefixed(self, connector: Connector, text: str):
        """Devices whose identity starts with `text`, in the case identities are stored in
        (hexadecimal, UUID and MAC bodies are lower case), served by device_identity_prefix."""
        fmt = connector.identity_format
        if fmt.type in LOWER_CASE_TYPES and text.startswith(fmt.prefix):
            text = fmt.prefix + text[len(fmt.prefix) :].lower()
        return self.filter(identity__startswith=text)


class Device(models.Model):
    """A whitelisted identity of a connector and, once provisioned, a device."""

    WHITELISTED = "whitelisted"
    PROVISIONED = "provisioned"
    EXPIRED = "expired"
    REVOKED = "revoked"
    STATUSES = [
        (WHITELISTED, "Whitelisted"),
        (PROVISIONED, "Provisioned"),
        (EXPIRED, "Expired"),
        (REVOKED, "Revoked"),
    ]

    # Not indexed on its own: the unique (connector, identity) index serves it.
    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="devices", db_index=False
    )
    identity = models.CharField(max_length=160)
    status = models.CharField(max_length=11, choices=STATUSES, default=WHITELISTED)
    tags = models.JSONField(default=list, blank=True)
    name = models.CharField(max_length=100, blank=True)
    # Owner and parent are indexed only where set (see Meta): a million
    # whitelisted devices have neither, and bulk imports skip two index inserts.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="devices",
        db_index=False,
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        db_index=False,
    )
    # The auth mode the device was provisioned with; a later change of the
    # connector's mode does not affect already-provisioned devices.
    auth_mode = models.CharField(max_length=11, choices=Connector.AUTH_MODES, blank=True)
    activation_expires_at = models.DateTimeField(null=True, blank=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)
    # Given a secret by Gatehouse (devices.services.secrets): first seen by this time,
    # or its registration ends (expired, credentials dropped).
    connect_by = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    # Bumped on every reset/revoke: cached password verifications carry the
    # version they were made under and stop counting once it changes.
    credential_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DeviceQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "identity"], name="device_identity_unique_per_connector"
            ),
        ]
        indexes = [
            models.Index(fields=["connector", "status", "id"], name="device_connector_status"),
            # The Devices tab sorted by last seen, a page at a time from a cursor.
            models.Index(fields=["connector", "last_seen_at", "id"], name="device_last_seen"),
            # The Devices tab in creation (id) order, however many other connectors there are.
            models.Index(fields=["connector", "id"], name="device_connector_order"),
            # Identity prefix search (LIKE 'abc%') under any collation; PostgreSQL
            # only, elsewhere the opclasses are ignored and it is a plain index.
            models.Index(
                fields=["connector", "identity"],
                opclasses=["varchar_pattern_ops", "varchar_pattern_ops"],
                name="device_identity_prefix",
            ),
            models.Index(fields=["owner"], condition=Q(owner__isnull=False), name="device_owner"),
            models.Index(
                fields=["parent"], condition=Q(parent__isnull=False), name="device_parent"
            ),
            # The expiry sweep's scan: whitelisted entries ordered by deadline.
            models.Index(
                fields=["activation_expires_at"],
                condition=Q(status="whitelisted"),
                name="device_pending_expiry",
            ),
        ]

    def __str__(self):
        return self.identity


class Credential(models.Model):
    """A device's secret or certificate; only hashes and public parts are kept."""

    INACTIVE = "inactive"
    ACTIVE = "active"
    REVOKED = "revoked"
    STATES = [(INACTIVE, "Inactive"), (ACTIVE, "Active"), (REVOKED, "Revoked")]

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=11, choices=Connector.AUTH_MODES)
    state = models.CharField(max_length=8, choices=STATES, default=ACTIVE)
    # Tokens: SHA-256 hex of the token (160+ random bits need no slow hash), unique
    # so authentication is one indexed lookup. Passwords: a salted slow hash.
    # Unique and indexed through Meta, not unique=/db_index=, which on PostgreSQL
    # would add a second (pattern-matching) index to each that no query uses.
    token_hash = models.CharField(max_length=64, null=True, blank=True)
    password_hash = models.CharField(max_length=256, blank=True)
    certificate_pem = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    serial = models.CharField(max_length=64, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    # A certificate accepted because it chains to the connector's CA or a trust
    # anchor names that issuer here; the issuer must still be trusted on every
    # request, so disabling an anchor cuts its devices off. Blank when pinned.
    issuer_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "kind"],
                condition=Q(state="active"),
                name="one_active_credential_per_kind",
            ),
            models.UniqueConstraint(fields=["token_hash"], name="credential_token_hash_unique"),
        ]
        indexes = [models.Index(fields=["fingerprint"], name="credential_fingerprint")]

    def __str__(self):
        return f"{self.kind} credential of {self.device_id} ({self.state})"


class DataPoint(models.Model):
    """One value a device wrote to a defined alias, at the time the write arrived or
    (a record) at the device's own timestamp."""

    # Not indexed on its own: datapoint_latest serves it.
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="data_points", db_index=False
    )
    alias = models.CharField(max_length=64)
    value = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The latest value is the newest by time: records arrive in any order.
            models.Index(fields=["device", "alias", "-created_at", "-id"], name="datapoint_latest"),
        ]

    def __str__(self):
        return f"{self.alias}={self.value}"


class WhitelistImport(models.Model):
    """A CSV whitelist import: its options, progress and per-row errors."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    # Its maker stopped it before it wrote: nothing was written (devices.imports.cancel).
    CANCELLED = "cancelled"
    STATUSES = [
        (PENDING, "Pending"),
        (RUNNING, "Running"),
        (DONE, "Done"),
        (FAILED, "Failed"),
        (CANCELLED, "Cancelled"),
    ]
    ENDED = (DONE, FAILED, CANCELLED)
    ABORT = "abort"
    SKIP = "skip"
    ON_ERROR = [(ABORT, "Abort on any bad row"), (SKIP, "Skip bad rows")]
    # The steps of a run, in order (devices.imports.run). Writing and finishing
    # happen inside the one transaction that commits the devices.
    WAITING = ""
    CHECKING = "checking"
    WRITING = "writing"
    FINISHING = "finishing"
    PHASES = [
        (WAITING, "Waiting to start"),
        (CHECKING, "Checking rows"),
        (WRITING, "Adding devices"),
        (FINISHING, "Saving the result"),
    ]

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="imports/", blank=True)
    dry_run = models.BooleanField(default=False)
    on_error = models.CharField(max_length=5, choices=ON_ERROR, default=ABORT)
    status = models.CharField(max_length=9, choices=STATUSES, default=PENDING)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Counted up by every run that takes the import; a run writes only while
    # it is still the latest (devices.imports.records).
    attempts = models.PositiveSmallIntegerField(default=0)
    # Moved with every progress update: an import running without progress for
    # IMPORT_STALL_SECONDS lost its worker (devices.imports.sweep).
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The uploaded file's own name, for people to recognise it: cleaned for
    # display and never used as a path (the upload is stored under `file`).
    original_name = models.CharField(max_length=120, blank=True)
    # The step the run is in, when it started, and how far it got: rows checked,
    # devices added. Moved with each progress update, so pollers show a rate.
    phase = models.CharField(max_length=9, choices=PHASES, default=WAITING, blank=True)
    phase_started_at = models.DateTimeField(null=True, blank=True)
    phase_done = models.PositiveIntegerField(default=0)
    phase_total = models.PositiveIntegerField(default=0)
    # The import this one restarts with its good rows only: at most one restart each.
    retry_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retry"
    )

    def __str__(self):
        return f"import {self.pk} into {self.connector_id} ({self.status})"


class IngestMark(models.Model):
    """The last batch an ingest (`manage.py ingest`) stored from the write stream.

    One row per ingest, written in the transaction that stores its batch, so an
    entry delivered again after an ingest stopped between its commit and its
    acknowledgement to Redis is recognised and stored once (devices.ingest).
    The row whose consumer is "" holds no batch: every storing transaction
    locks it first.
    """

    consumer = models.CharField(max_length=200, unique=True)
    # The batch's stream entry ids, space-separated, in stream order.
    entries = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"ingest {self.consumer or '(lock)'}: {len(self.entries.split())} entries stored"


class BulkAction(models.Model):
    """A change to every device a filter of the Devices tab matched, run by a worker.

    `filters` are the Devices tab's (status, tag, q) as the maker confirmed
    them; only devices with an id up to `ceiling_id` take part, so devices
    added meanwhile are left alone. `last_id` is how far the run got: a run
    handed to another worker carries on from there.
    """

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STATUSES = [(PENDING, "Waiting"), (RUNNING, "Running"), (DONE, "Done"), (FAILED, "Failed")]
    ACTIONS = [
        ("revoke", "Revoke"),
        ("reset", "Reset"),
        ("delete", "Delete"),
        ("tag", "Add a tag"),
        ("untag", "Remove a tag"),
    ]

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="bulk_actions")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=6, choices=ACTIONS)
    # For tag / untag: {"name", "value"}; value None removes the name whatever its value.
    tag = models.JSONField(null=True, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    ceiling_id = models.BigIntegerField(default=0)
    last_id = models.BigIntegerField(default=0)
    status = models.CharField(max_length=7, choices=STATUSES, default=PENDING)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.action} on {self.connector_id} ({self.status})"
