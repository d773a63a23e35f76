import ipaddress
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

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
