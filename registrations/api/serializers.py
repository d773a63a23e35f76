from rest_framework import serializers

from devices.api.serializers import SinceField
from registrations.models import Message


class MessageSerializer(serializers.ModelSerializer):
    """One message a secure device sent; `data` is the JSON it sent."""

    class Meta:
        model = Message
        fields = ["mid", "data", "channel", "source_ip", "created_at"]
        read_only_fields = fields


class MessageFilterSerializer(serializers.Serializer):
    """Query parameters of a device's messages."""

    since = SinceField(required=False, help_text="ISO 8601 date-time or unix seconds.")
