import ipaddress
import re
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.validators import RegexValidator
from django.db import models, transaction

from connectors import identity
from core import generations


def new_connector_id() -> str:
    """`dt` + 32 lowercase hex: a DNS label and a valid deviceTypeId."""
    return "dt" + secrets.token_hex(16)


CONNECTOR_ID_PATTERN = r"dt[0-9a-f]{32}"


def validate_ip_allowlist(value):
    if not isinstance(value, list):
        raise ValidationError("IP allow-list must be a list of CIDRs.")
    for entry in value:
        try:
            ipaddress.ip_network(str(entry), strict=False)
        except ValueError as exc:
            raise ValidationError(f"{entry!r} is not an IPv4 or IPv6 address or CIDR.") from exc


class Connector(models.Model):
    """One product line: its identity format, auth mode and provisioning rules."""

    TOKEN = "token"
    PASSWORD = "password"
    CERTIFICATE = "certificate"
    AUTH_MODES = [
        (TOKEN, "Token"),
        (PASSWORD, "Password"),
        (CERTIFICATE, "TLS client certificate"),
    ]

    id = models.CharField(primary_key=True, max_length=34, default=new_connector_id, editable=False)
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="connectors"
    )
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="managed_connectors"
    )
    identity_prefix = models.CharField(max_length=32, blank=True)
    identity_type = models.CharField(
        max_length=10, choices=identity.IDENTITY_TYPES, default=identity.OPAQUE
    )
    identity_mac_style = models.CharField(
        max_length=5, choices=identity.MAC_STYLES, default=identity.MAC_COLON
    )
    identity_length = models.PositiveSmallIntegerField(null=True, blank=True)
    auth_mode = models.CharField(max_length=11, choices=AUTH_MODES, default=TOKEN)
    self_registration = models.BooleanField(
        default=False, help_text="Allow devices to register their own identity."
    )
    ip_allowlist = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_ip_allowlist],
        help_text="CIDRs allowed to provision; empty allows every address.",
    )
    activation_window_seconds = models.PositiveIntegerField(default=24 * 3600)
    # Bumped whenever a resource changes, so web processes can keep the alias
    # table in memory and still never use a stale one (see devices.services).
    resources_revision = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(activation_window_seconds__gte=60),
                name="connector_window_at_least_a_minute",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"

    @property
    def identity_format(self) -> identity.IdentityFormat:
        return identity.IdentityFormat(
            type=self.identity_type,
            prefix=self.identity_prefix,
            mac_style=self.identity_mac_style,
            length=self.identity_length,
        )

    @property
    def device_host(self) -> str:
        return f"{self.id}.{settings.DEVICE_DOMAIN}"

    def allows_ip(self, address: str | None) -> bool:
        if not self.ip_allowlist:
            return True
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(
            ip in ipaddress.ip_network(str(cidr), strict=False) for cidr in self.ip_allowlist
        )


class Resource(models.Model):
    """An alias devices write to; only defined aliases are stored as data points."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    JSON = "json"
    FORMATS = [(STRING, "String"), (NUMBER, "Number"), (BOOLEAN, "Boolean"), (JSON, "JSON")]

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="resources")
    alias = models.CharField(
        max_length=64,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9_.-]{1,64}$",
                "Aliases use letters, digits, '_', '.' and '-' (at most 64).",
            )
        ],
    )
    format = models.CharField(max_length=7, choices=FORMATS, default=STRING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["alias"]
        constraints = [
            models.UniqueConstraint(fields=["connector", "alias"], name="resource_alias_unique"),
        ]

    def __str__(self):
        return self.alias


def _bump_resources_revision(sender, instance, **kwargs):
    Connector.objects.filter(pk=instance.connector_id).update(
        resources_revision=models.F("resources_revision") + 1
    )
    generations.bump(generations.connector_key(instance.connector_id))


def _connector_changed(sender, instance, **kwargs):
    # Web processes keep connectors in memory (devices.services); this tells them.
    generations.bump(generations.connector_key(instance.pk))


models.signals.post_save.connect(_bump_resources_revision, sender=Resource)
models.signals.post_delete.connect(_bump_resources_revision, sender=Resource)
models.signals.post_save.connect(_connector_changed, sender=Connector)
models.signals.post_delete.connect(_connector_changed, sender=Connector)


# --- The content area: files a connector's devices download (/provision/download) ---

CONTENT_NAME_MAX = 200
CONTENT_TYPE_MAX = 100
CONTENT_DESCRIPTION_MAX = 200
# type/subtype with optional parameters, printable ASCII only: it is sent back as a
# header, and the info line (type,size,time,description) is comma-separated.
CONTENT_TYPE_PATTERN = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
    r"(?:[ \t]*;[ \t]*[A-Za-z0-9!#$&^_.+-]+=(?:[A-Za-z0-9!#$&^_.+-]+|\"[^\"\\\r\n,]*\"))*"
)
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def content_name_problem(name: str) -> str | None:
    """Why `name` cannot name a content file, or None.

    Devices send the name in a query string and list names one a line, and a
    name never becomes a path (the bytes are stored under a random one), but
    names that look like paths are refused all the same, so no storage backend
    or tool downstream is ever tempted to read one as a path.
    """
    if not name:
        return "a name is required"
    if len(name) > CONTENT_NAME_MAX:
        return f"a name is at most {CONTENT_NAME_MAX} characters"
    if _CONTROL.search(name):
        return "a name holds no control characters (NUL, line breaks, tabs)"
    if "/" in name or "\\" in name:
        return "a name holds no slashes"
    if name in (".", ".."):
        return "a name is not . or .."
    if name != name.strip():
        return "a name does not start or end with spaces"
    return None


def validate_content_name(name: str) -> None:
    problem = content_name_problem(name)
    if problem:
        raise ValidationError(problem)


def content_storage():
    """The storage backend content bytes live in: the STORAGES alias CONTENT_STORAGE."""
    return storages[settings.CONTENT_STORAGE]


def content_path(instance, filename: str) -> str:
    # A random name: what the maker called the file never reaches the storage.
    return f"content/{instance.connector_id}/{uuid.uuid4().hex}"


class ContentFile(models.Model):
    """A file in a connector's content area (firmware, configuration) that its devices
    list and download with their own credentials; the bytes are in `content_storage`."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="content_files")
    name = models.CharField(max_length=CONTENT_NAME_MAX, validators=[validate_content_name])
    content_type = models.CharField(max_length=CONTENT_TYPE_MAX)
    description = models.CharField(max_length=CONTENT_DESCRIPTION_MAX, blank=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(storage=content_storage, upload_to=content_path, max_length=200)
    uploaded_at = models.DateTimeField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["connector", "name"], name="content_name_unique"),
        ]

    def __str__(self):
        return self.name

    @property
    def etag(self) -> str:
        """A strong validator: the same bytes always have the same one."""
        return f'"{self.sha256}"'


def _content_deleted(sender, instance, **kwargs):
    # The row is gone (alone, or with its connector): its bytes go once that commits.
    stored = instance.file.name
    if stored:
        transaction.on_commit(lambda: content_storage().delete(stored))


models.signals.post_delete.connect(_content_deleted, sender=ContentFile)
