import re
from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import Event
from connectors.api.serializers import MAX_WINDOW_SECONDS
from connectors.models import Connector
from core.fields import StrictCharField, StrictModelSerializer
from devices import services
from devices.models import DataPoint, Device


class TagSerializer(serializers.Serializer):
    """One `{"name", "value"}` tag, as in the CSV Tags column."""

    name = StrictCharField(max_length=64)
    value = StrictCharField(max_length=256, allow_blank=True)

    def validate(self, attrs):
        # A PATCH makes every field optional, nested ones too; a tag still needs both.
        missing = [name for name in ("name", "value") if name not in attrs]
        if missing:
            raise serializers.ValidationError(
                {name: ["This field is required."] for name in missing}
            )
        return attrs


def _tags_or_error(tags):
    try:
        return services.validate_tags(tags)
    except services.InvalidData as exc:
        raise serializers.ValidationError(exc.message) from exc


class DeviceSerializer(serializers.ModelSerializer):
    tags = TagSerializer(many=True, read_only=True)
    # Null until a user pairs the device (secure registration).
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    # Empty until the device is provisioned: the mode it was provisioned with.
    auth_mode = serializers.ChoiceField(
        choices=Connector.AUTH_MODES, allow_blank=True, read_only=True
    )

    class Meta:
        model = Device
        fields = [
            "identity",
            "status",
            "tags",
            "name",
            "owner",
            "activation_expires_at",
            "provisioned_at",
            "last_seen_at",
            "auth_mode",
            "connect_by",
        ]
        read_only_fields = fields


class WhitelistSerializer(serializers.Serializer):
    """Input of "whitelist one device"; the service normalises and checks the identity."""

    identity = StrictCharField(max_length=200, trim_whitespace=False)
    tags = TagSerializer(many=True, required=False)
    name = StrictCharField(max_length=100, allow_blank=True, required=False)
    activation_window_seconds = serializers.IntegerField(
        min_value=60, max_value=MAX_WINDOW_SECONDS, required=False
    )
    certificate = StrictCharField(
        max_length=20_000,
        allow_blank=True,
        required=False,
        trim_whitespace=False,
        help_text="PEM certificate to pin: only it may provision this identity (CN = identity).",
    )

    def validate_identity(self, value):
        try:
            return services.validate_identity(self.context["connector"], value)
        except services.IdentityRejected as exc:
            raise serializers.ValidationError(exc.message) from exc

    def validate_tags(self, value):
        return _tags_or_error(value)


class DeviceUpdateSerializer(StrictModelSerializer):
    """What an admin may change on a device directly; status changes go through actions."""

    tags = TagSerializer(many=True, required=False)

    class Meta:
        model = Device
        fields = ["name", "tags"]

    def validate_tags(self, value):
        return _tags_or_error(value)

    def to_representation(self, instance):
        return DeviceSerializer(instance, context=self.context).data


class ResetSerializer(serializers.Serializer):
    activation_window_seconds = serializers.IntegerField(
        min_value=60,
        max_value=MAX_WINDOW_SECONDS,
        required=False,
        help_text="Length of the fresh activation window; the connector's default if absent.",
    )


class SecretRequestSerializer(serializers.Serializer):
    secret = StrictCharField(
        required=False,
        trim_whitespace=False,
        min_length=services.MIN_PASSWORD_BYTES,
        max_length=services.MAX_PASSWORD_BYTES,
        help_text=(
            "Password mode only: the secret to give the device; Gatehouse makes one "
            "(32 characters) if absent. Token mode always makes the token."
        ),
    )


class IssuedSecretSerializer(serializers.Serializer):
    identity = serializers.CharField()
    auth_mode = serializers.CharField(
        help_text="`token` (sent as `Authorization: Token …`) or `password` (HTTP Basic)."
    )
    secret = serializers.CharField(help_text="Shown this once; Gatehouse keeps only its hash.")
    connect_by = serializers.DateTimeField(
        help_text="The device must be seen (HTTP or MQTT) by then, or its registration ends."
    )


# Unix seconds as devices send them: up to year 5138, at most microseconds.
UNIX_SECONDS = r"[0-9]{1,11}(\.[0-9]{1,6})?"
# A date alone is not a date-time, which the schema promises.
ISO_DATE_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T"


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "pattern": f"^{UNIX_SECONDS}$"},
        ]
    }
)
class SinceField(serializers.Field):
    """A point in time given as ISO 8601 or as unix seconds; naive times are UTC."""

    default_error_messages = {
        "invalid": "Give an ISO 8601 date-time or unix seconds.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            if re.fullmatch(UNIX_SECONDS, data):
                return datetime.fromtimestamp(float(data), tz=UTC)
            # The extended form only: fromisoformat also reads digit runs as dates.
            if not re.match(ISO_DATE_TIME, data):
                self.fail("invalid")
            moment = datetime.fromisoformat(data)
            # In UTC: PostgreSQL refuses offsets past 15:59, which ISO 8601 allows.
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError, OSError):
            self.fail("invalid")

    def to_representation(self, value):
        return value.isoformat()


class DeviceFilterSerializer(serializers.Serializer):
    """Query parameters of the device list."""

    status = serializers.ChoiceField(choices=Device.STATUSES, required=False)
    tag = StrictCharField(
        max_length=330,
        required=False,
        help_text='A tag "name:value", or "name" for any value.',
    )
    search = StrictCharField(max_length=200, required=False, help_text="Part of the identity.")

    def validate_tag(self, value):
        name, _, tag_value = value.partition(":")
        if not name:
            raise serializers.ValidationError('Give a tag as "name:value" or "name".')
        return (name, tag_value if ":" in value else None)


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor_name",
        read_only=True,
        help_text="Username behind an admin action; empty for what devices and the system do.",
    )

    class Meta:
        model = Event
        fields = ["id", "identity", "kind", "reason", "actor", "source_ip", "created_at"]
        read_only_fields = fields


class EventFilterSerializer(serializers.Serializer):
    """Query parameters of the event log."""

    kind = serializers.ChoiceField(choices=Event.KINDS, required=False)
    identity = StrictCharField(max_length=200, required=False, trim_whitespace=False)
    since = SinceField(required=False, help_text="ISO 8601 date-time or unix seconds.")


class DataPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = DataPoint
        fields = ["id", "alias", "value", "created_at"]
        read_only_fields = fields


class DataFilterSerializer(serializers.Serializer):
    """Query parameters of a device's data points."""

    alias = StrictCharField(max_length=64, required=False)
    since = SinceField(required=False, help_text="ISO 8601 date-time or unix seconds.")


class CommandSerializer(serializers.Serializer):
    """A value the maker writes to one of the device's defined aliases."""

    alias = StrictCharField(max_length=64)
    value = StrictCharField(allow_blank=True, trim_whitespace=False)
