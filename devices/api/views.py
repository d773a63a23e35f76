"""Management API for a connector's devices, its event log and device data.

Views parse input, call one service and let `STATUS_BY_ERROR` turn the
service's refusal into a status code.
"""

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.response import Response

from audit.models import Event
from connectors.api.views import CONNECTOR_ID, METHODS, ConnectorScopedMixin
from connectors.identity import InvalidIdentity, normalize_identity
from core.errors import Refused
from core.net import client_ip
from core.pagination import IdCursorPagination
from devices import services
from devices.api.serializers import (
    CommandSerializer,
    DataFilterSerializer,
    DataPointSerializer,
    DeviceFilterSerializer,
    DeviceSerializer,
    DeviceUpdateSerializer,
    EventFilterSerializer,
    EventSerializer,
    IssuedSecretSerializer,
    ResetSerializer,
    SecretRequestSerializer,
    WhitelistSerializer,
)
from devices.models import DataPoint, Device, identity_names

STATUS_BY_ERROR = {
    services.IdentityRejected: status.HTTP_400_BAD_REQUEST,
    services.InvalidData: status.HTTP_400_BAD_REQUEST,
    services.AlreadyWhitelisted: status.HTTP_409_CONFLICT,
    services.AlreadyProvisioned: status.HTTP_409_CONFLICT,
    services.InvalidTransition: status.HTTP_409_CONFLICT,
    services.UnsupportedAuth: status.HTTP_409_CONFLICT,
    services.WindowExpired: status.HTTP_409_CONFLICT,
    services.DeviceError: status.HTTP_400_BAD_REQUEST,
}
IDENTITY = OpenApiParameter(
    "identity",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Device identity in any form the identity format accepts (MAC digits in any case).",
)


class DeviceScopedMixin(ConnectorScopedMixin):
    """Finds the device named in the URL, after normalising its identity."""

    def handle_exception(self, exc):
        if isinstance(exc, services.DeviceError):
            exc = Refused(exc, STATUS_BY_ERROR)
        return super().handle_exception(exc)

    def get_device(self) -> Device:
        connector = self.get_connector()
        try:
            identity = normalize_identity(self.kwargs["identity"], connector.identity_format)
        except InvalidIdentity as exc:
            raise exceptions.NotFound("No device with that identity.") from exc
        device = (
            Device.objects.select_related("owner", "connector")
            .filter(connector=connector, identity=identity)
            .first()
        )
        if device is None:
            raise exceptions.NotFound("No device with that identity.")
        return device


def validated_query(serializer_class, request) -> dict:
    """Validated query parameters; unknown values are a 400 naming the parameter."""
    serializer = serializer_class(data=request.query_params)
    # DRF reads an empty optional parameter as absent; the schema says it holds a value.
    empty = [name for name in serializer.fields if request.query_params.get(name) == ""]
    if empty:
        raise exceptions.ValidationError(
            {name: ["Give a value or leave the parameter out."] for name in empty}
        )
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema_view(
    list=extend_schema(
        summary="List devices",
        parameters=[CONNECTOR_ID, DeviceFilterSerializer],
    ),
    create=extend_schema(
        summary="Whitelist one device",
        parameters=[CONNECTOR_ID],
        request=WhitelistSerializer,
        responses={201: DeviceSerializer},
    ),
    retrieve=extend_schema(parameters=[CONNECTOR_ID, IDENTITY]),
    partial_update=extend_schema(
        parameters=[CONNECTOR_ID, IDENTITY],
        request=DeviceUpdateSerializer,
        responses=DeviceSerializer,
    ),
    destroy=extend_schema(parameters=[CONNECTOR_ID, IDENTITY]),
)
class DeviceViewSet(
    DeviceScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """A connector's whitelist and devices."""

    serializer_class = DeviceSerializer
    pagination_class = IdCursorPagination
    http_method_names = METHODS

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Device.objects.none()
        devices = Device.objects.filter(connector=self.get_connector()).select_related("owner")
        if self.action != "list":
            return devices
        filters = validated_query(DeviceFilterSerializer, self.request)
        if "status" in filters:
            devices = devices.filter(status=filters["status"])
        if "tag" in filters:
            devices = devices.tagged(*filters["tag"])
        if "search" in filters:
            devices = devices.search(self.get_connector(), filters["search"])
        return devices

    def get_serializer_class(self):
        if self.action == "partial_update":
            return DeviceUpdateSerializer
        return DeviceSerializer

    def get_object(self):
        return self.get_device()

    @transaction.atomic
    def perform_update(self, serializer):
        before = {name: getattr(serializer.instance, name) for name in serializer.validated_data}
        device = serializer.save()
        services.log_device_changed(device, before, **self.audit())

    def create(self, request, *args, **kwargs):
        serializer = WhitelistSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        # One transaction: a certificate that cannot be pinned leaves no entry behind.
        with transaction.atomic():
            device = services.whitelist_device(
                self.get_connector(),
                fields["identity"],
                tags=fields.get("tags"),
                name=fields.get("name", ""),
                window_seconds=fields.get("activation_window_seconds"),
                actor=self.actor(),
                ip=client_ip(request),
            )
            if fields.get("certificate"):
                try:
                    services.pin_certificate(device, fields["certificate"])
                except services.DeviceError as exc:
                    raise exceptions.ValidationError({"certificate": [str(exc)]}) from exc
        return Response(DeviceSerializer(device).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.delete_device(self.get_device(), actor=self.actor(), ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Back to whitelisted with a fresh window and no credentials",
        parameters=[CONNECTOR_ID, IDENTITY],
        request=ResetSerializer,
        responses=DeviceSerializer,
    )
    def reset(self, request, *args, **kwargs):
        serializer = ResetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = services.reset_device(
            self.get_device(),
            window_seconds=serializer.validated_data.get("activation_window_seconds"),
            actor=self.actor(),
            ip=client_ip(request),
        )
        return Response(DeviceSerializer(device).data)

    @extend_schema(
        summary="Provision the whitelisted device now with a secret it is given (shown once)",
        description=(
            "For firmware given its credential at the factory: the device is provisioned "
            "as its activation would provision it and must then be seen, over HTTP or "
            "MQTT, within the connector's activation window (`connect_by`), or its "
            "registration ends."
        ),
        parameters=[CONNECTOR_ID, IDENTITY],
        request=SecretRequestSerializer,
        responses={201: IssuedSecretSerializer},
    )
    def secret(self, request, *args, **kwargs):
        serializer = SecretRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = self.get_device()
        secret, connect_by = services.issue_secret(
            device,
            secret=serializer.validated_data.get("secret"),
            actor=self.actor(),
            ip=client_ip(request),
        )
        issued = {
            "identity": device.identity,
            "auth_mode": device.connector.auth_mode,
            "secret": secret,
            "connect_by": connect_by,
        }
        return Response(
            IssuedSecretSerializer(issued).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )

    @extend_schema(
        summary="Revoke every credential of the device",
        parameters=[CONNECTOR_ID, IDENTITY],
        request=None,
        responses=DeviceSerializer,
    )
    def revoke(self, request, *args, **kwargs):
        device = services.revoke_device(
            self.get_device(), actor=self.actor(), ip=client_ip(request)
        )
        return Response(DeviceSerializer(device).data)


@extend_schema_view(get=extend_schema(parameters=[CONNECTOR_ID, EventFilterSerializer]))
class EventListView(ConnectorScopedMixin, generics.ListAPIView):
    """The connector's log, newest first."""

    serializer_class = EventSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Event.objects.none()
        connector = self.get_connector()
        filters = validated_query(EventFilterSerializer, self.request)
        events = Event.objects.filter(connector=connector)
        if "kind" in filters:
            events = events.filter(kind=filters["kind"])
        if "identity" in filters:
            events = events.filter(identity__in=identity_names(connector, filters["identity"]))
        if "since" in filters:
            events = events.filter(created_at__gte=filters["since"])
        return events


@extend_schema_view(
    get=extend_schema(parameters=[CONNECTOR_ID, IDENTITY, DataFilterSerializer]),
    post=extend_schema(
        summary="Write a value to one of the device's aliases (a command to the device)",
        parameters=[CONNECTOR_ID, IDENTITY],
        request=CommandSerializer,
        responses={201: DataPointSerializer},
    ),
)
class DeviceDataView(DeviceScopedMixin, generics.ListAPIView):
    """Values written to the device's defined aliases, newest first; POST writes one as
    its maker: stored, logged with the actor and, over MQTT, published to the device."""

    serializer_class = DataPointSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DataPoint.objects.none()
        filters = validated_query(DataFilterSerializer, self.request)
        points = DataPoint.objects.filter(device=self.get_device())
        if "alias" in filters:
            points = points.filter(alias=filters["alias"])
        if "since" in filters:
            points = points.filter(created_at__gte=filters["since"])
        return points

    def post(self, request, *args, **kwargs):
        serializer = CommandSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        point = services.send_command(
            self.get_device(),
            serializer.validated_data["alias"],
            serializer.validated_data["value"],
            **self.audit(),
        )
        return Response(DataPointSerializer(point).data, status=status.HTTP_201_CREATED)
