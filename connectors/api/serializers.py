from rest_framework import serializers

from connectors import identity
from connectors.models import Connector, Resource, validate_ip_allowlist
from core.fields import StrictCharField, StrictModelSerializer

MAX_WINDOW_SECONDS = 366 * 24 * 3600


class IdentityFormatSerializer(serializers.Serializer):
    """The identity format as one object; stored as the connector's identity_* columns."""

    prefix = StrictCharField(
        source="identity_prefix", max_length=32, allow_blank=True, required=False
    )
    type = serializers.ChoiceField(
        source="identity_type", choices=identity.IDENTITY_TYPES, required=False
    )
    mac_style = serializers.ChoiceField(
        source="identity_mac_style", choices=identity.MAC_STYLES, required=False
    )
    length = serializers.IntegerField(
        source="identity_length",
        min_value=1,
        max_value=identity.MAX_IDENTITY_LENGTH,
        allow_null=True,
        required=False,
    )


class ConnectorSerializer(StrictModelSerializer):
    identity_format = IdentityFormatSerializer(source="*", required=False)
    ip_allowlist = serializers.ListField(
        child=StrictCharField(max_length=64),
        max_length=1000,
        required=False,
        validators=[validate_ip_allowlist],
        help_text="CIDRs (IPv4 or IPv6) allowed to provision; empty allows every address.",
    )
    activation_window_seconds = serializers.IntegerField(
        min_value=60, max_value=MAX_WINDOW_SECONDS, required=False
    )
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    device_host = serializers.CharField(read_only=True)

    class Meta:
        model = Connector
        fields = [
            "id",
            "name",
            "owner",
            "identity_format",
            "auth_mode",
            "self_registration",
            "ip_allowlist",
            "activation_window_seconds",
            "device_host",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def validate(self, attrs):
        # A PATCH may name only part of the format; check the format it will have.
        current = self.instance or Connector()
        fmt = identity.IdentityFormat(
            type=attrs.get("identity_type", current.identity_type),
            prefix=attrs.get("identity_prefix", current.identity_prefix),
            mac_style=attrs.get("identity_mac_style", current.identity_mac_style),
            length=attrs.get("identity_length", current.identity_length),
        )
        try:
            fmt.validate_definition()
        except identity.InvalidIdentity as exc:
            raise serializers.ValidationError({"identity_format": [str(exc)]}) from exc
        return attrs


class ResourceSerializer(StrictModelSerializer):
    class Meta:
        model = Resource
        fields = ["alias", "format", "created_at"]
        read_only_fields = ["created_at"]
