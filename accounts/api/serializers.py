from rest_framework import serializers

from accounts.models import ApiToken
from core.fields import StrictModelSerializer


class ApiTokenSerializer(StrictModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at"]


class IssuedApiTokenSerializer(ApiTokenSerializer):
    """A token just issued: the only answer that ever carries the clear token."""

    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
