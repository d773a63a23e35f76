"""Management API for connectors and their resources."""

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets

from accounts.permissions import IsDeviceMaker
from audit.events import Actor
from connectors import services
from connectors.api.serializers import ConnectorSerializer, ResourceSerializer
from connectors.models import Connector, Resource
from connectors.permissions import connectors_for, visible_connector
from core.net import client_ip
from core.pagination import AliasPagination, NamePagination

# Changes are PATCH only: a PUT would have to restate every field.
METHODS = ["get", "post", "patch", "delete", "head", "options"]
CONNECTOR_ID = OpenApiParameter(
    "connector_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Connector id (dt…)."
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class AuditMixin:
    def actor(self) -> Actor:
        """Who events name for an admin's API action."""
        return Actor.of(self.request, "API")

    def audit(self) -> dict:
        """Who and from where, for the log line an admin's action leaves."""
        return {"actor": self.actor(), "ip": client_ip(self.request)}


class ConnectorScopedMixin(AuditMixin):
    """For views under /connectors/<connector_id>/: the connector, or 404 if not visible."""

    permission_classes = [IsDeviceMaker]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Path values go into queries; PostgreSQL cannot even compare text holding NUL.
        if any("\x00" in str(value) for value in kwargs.values()):
            raise exceptions.NotFound()

    def get_connector(self) -> Connector:
        if not hasattr(self, "_connector"):
            self._connector = visible_connector(self.request.user, self.kwargs["connector_id"])
        return self._connector

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["connector"] = self.get_connector()
        return context


@extend_schema_view(
    retrieve=extend_schema(parameters=[CONNECTOR_ID]),
    partial_update=extend_schema(parameters=[CONNECTOR_ID]),
    destroy=extend_schema(parameters=[CONNECTOR_ID]),
)
class ConnectorViewSet(
    AuditMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Connectors the caller owns or manages; others' are 404."""

    serializer_class = ConnectorSerializer
    permission_classes = [IsDeviceMaker]
    http_method_names = METHODS
    pagination_class = NamePagination
    lookup_url_kwarg = "connector_id"

    def get_queryset(self):
        return connectors_for(self.request.user).select_related("owner")

    def get_object(self):
        connector = visible_connector(self.request.user, self.kwargs["connector_id"])
        self.check_object_permissions(self.request, connector)
        return connector

    @transaction.atomic
    def perform_create(self, serializer):
        connector = serializer.save(owner=self.request.user)
        services.log_connector_created(connector, **self.audit())

    @transaction.atomic
    def perform_update(self, serializer):
        before = services.settings_of(serializer.instance)
        connector = serializer.save()
        services.log_connector_changed(connector, before, **self.audit())

    def perform_destroy(self, instance):
        try:
            services.delete_connector(instance, **self.audit())
        except ProtectedError as exc:
            raise Conflict("Other records still depend on this connector.") from exc


@extend_schema_view(
    list=extend_schema(parameters=[CONNECTOR_ID]),
    create=extend_schema(parameters=[CONNECTOR_ID]),
    retrieve=extend_schema(parameters=[CONNECTOR_ID]),
    partial_update=extend_schema(parameters=[CONNECTOR_ID]),
    destroy=extend_schema(parameters=[CONNECTOR_ID]),
)
class ResourceViewSet(
    ConnectorScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Aliases devices write to; writes to defined aliases are stored as data points."""

    serializer_class = ResourceSerializer
    http_method_names = METHODS
    pagination_class = AliasPagination
    lookup_field = "alias"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Resource.objects.none()
        return Resource.objects.filter(connector=self.get_connector())

    @transaction.atomic
    def perform_create(self, serializer):
        resource = self._save(serializer, connector=self.get_connector())
        services.log_resource_defined(resource, **self.audit())

    @transaction.atomic
    def perform_update(self, serializer):
        before = (serializer.instance.alias, serializer.instance.format)
        resource = self._save(serializer)
        services.log_resource_changed(resource, before, **self.audit())

    def perform_destroy(self, instance):
        services.delete_resource(instance, **self.audit())

    def _save(self, serializer, **fields) -> Resource:
        # A conflict with what is stored, not bad input: 409, as for the race below.
        alias = serializer.validated_data.get("alias")
        taken = Resource.objects.filter(connector=self.get_connector(), alias=alias)
        if serializer.instance is not None:
            taken = taken.exclude(pk=serializer.instance.pk)
        if alias is not None and taken.exists():
            raise Conflict("This connector already defines that alias.")
        try:
            with transaction.atomic():
                return serializer.save(**fields)
        except IntegrityError as exc:
            # Two requests defined the same alias at once; the constraint kept one.
            raise Conflict("This connector already defines that alias.") from exc
