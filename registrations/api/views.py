"""Management API for secure devices' messages.

Lives beside the device API of `devices.api` and reuses its lookup of the
connector and device, so visibility follows the one rule of `connectors_for`.
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics

from connectors.api.views import CONNECTOR_ID
from core.pagination import IdCursorPagination
from devices.api.views import IDENTITY, DeviceScopedMixin, validated_query
from registrations.api.serializers import MessageFilterSerializer, MessageSerializer
from registrations.models import Message


@extend_schema_view(
    get=extend_schema(
        summary="Messages a secure device sent",
        parameters=[CONNECTOR_ID, IDENTITY, MessageFilterSerializer],
    )
)
class DeviceMessageListView(DeviceScopedMixin, generics.ListAPIView):
    """Messages the device sent over HTTPS or its WebSocket, newest first."""

    serializer_class = MessageSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        filters = validated_query(MessageFilterSerializer, self.request)
        messages = Message.objects.filter(device=self.get_device())
        if "since" in filters:
            messages = messages.filter(created_at__gte=filters["since"])
        return messages
