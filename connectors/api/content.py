"""Management API for a connector's content area: list, upload (multipart), show, delete.

Devices download these files from /provision/download (docs/device-api.md).
"""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from connectors import content
from connectors.api.views import CONNECTOR_ID, ConnectorScopedMixin
from connectors.models import CONTENT_DESCRIPTION_MAX, CONTENT_NAME_MAX, ContentFile
from core.errors import Refused
from core.fields import StrictCharField
from core.pagination import NamePagination

STATUS_BY_ERROR = {
    content.ContentTooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    content.InvalidContent: status.HTTP_400_BAD_REQUEST,
    content.ContentNotFound: status.HTTP_404_NOT_FOUND,
}
# Multipart framing around the file: boundaries, part headers, the other fields.
_MULTIPART_SLACK = 64 * 1024
CONTENT_NAME = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The file's name (its id)."
)


class ContentFileSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ContentFile
        fields = [
            "name",
            "content_type",
            "description",
            "size",
            "sha256",
            "uploaded_at",
            "uploaded_by",
        ]
        read_only_fields = fields


class ContentPageSerializer(serializers.Serializer):
    """One page of the content area, as NamePagination answers it."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ContentFileSerializer(many=True)


class ContentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The file's bytes.")
    name = StrictCharField(
        max_length=CONTENT_NAME_MAX,
        required=False,
        allow_blank=True,
        help_text="The id devices ask for; the uploaded file's name when left out or empty. "
        "No slashes, control characters or NUL.",
    )
    content_type = StrictCharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="Sent with every download; the upload's own type (or one guessed from "
        "the name) when left out or empty.",
    )
    description = StrictCharField(
        max_length=CONTENT_DESCRIPTION_MAX,
        required=False,
        allow_blank=True,
        help_text="One line, shown in the device's info answer.",
    )


class ContentListView(ConnectorScopedMixin, GenericAPIView):
    """The files this connector's devices may download."""

    serializer_class = ContentFileSerializer
    pagination_class = NamePagination
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ContentFile.objects.none()
        return ContentFile.objects.filter(connector=self.get_connector()).select_related(
            "uploaded_by"
        )

    @extend_schema(
        summary="List the content area",
        operation_id="api_v1_connectors_content_list",
        parameters=[CONNECTOR_ID],
        responses={200: ContentPageSerializer},
    )
    def get(self, request, connector_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Upload a file to the content area",
        description="A file of the same name is replaced (200); a new one is 201. "
        "Files larger than CONTENT_MAX_BYTES are refused with 413.",
        parameters=[CONNECTOR_ID],
        request={"multipart/form-data": ContentUploadSerializer},
        responses={
            200: ContentFileSerializer,
            201: ContentFileSerializer,
            413: OpenApiResponse(description="The file is larger than CONTENT_MAX_BYTES."),
        },
    )
    def post(self, request, connector_id):
        connector = self.get_connector()
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.CONTENT_MAX_BYTES + _MULTIPART_SLACK:
            # Refused before the body is read, so a huge upload costs nothing.
            raise Refused(content.ContentTooLarge(content.too_large_message()), STATUS_BY_ERROR)
        handler = content.limit_uploads(request._request)
        form = ContentUploadSerializer(data=request.data)
        if handler.exceeded:
            raise Refused(content.ContentTooLarge(content.too_large_message()), STATUS_BY_ERROR)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            stored, created = content.upload(
                connector,
                data["file"],
                name=data.get("name"),
                content_type=data.get("content_type"),
                description=data.get("description", ""),
                **self.audit(),
            )
        except content.ContentError as exc:
            raise Refused(exc, STATUS_BY_ERROR) from exc
        return Response(
            ContentFileSerializer(stored).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ContentDetailView(ConnectorScopedMixin, GenericAPIView):
    """One file of the content area."""

    serializer_class = ContentFileSerializer

    def get_object(self) -> ContentFile:
        try:
            return content.find(self.get_connector().pk, self.kwargs["name"])
        except content.ContentNotFound as exc:
            raise Refused(exc, STATUS_BY_ERROR) from exc

    @extend_schema(
        summary="A file's details",
        operation_id="api_v1_connectors_content_retrieve",
        parameters=[CONNECTOR_ID, CONTENT_NAME],
    )
    def get(self, request, connector_id, name):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Delete a file from the content area",
        parameters=[CONNECTOR_ID, CONTENT_NAME],
        responses={204: None},
    )
    def delete(self, request, connector_id, name):
        content.delete(self.get_object(), **self.audit())
        return Response(status=status.HTTP_204_NO_CONTENT)
