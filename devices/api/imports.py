"""Management API for CSV whitelist imports and the CSV export.

Views parse the request, call `devices.imports` and map its refusals through
`STATUS_BY_ERROR`; progress is read back from the import row.
"""

from django.conf import settings
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from connectors.api.views import CONNECTOR_ID, ConnectorScopedMixin
from core.errors import Refused
from core.fields import StrictBooleanField
from devices import imports, services, tasks
from devices.models import WhitelistImport

STATUS_BY_ERROR = {
    imports.ImportTooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    imports.InvalidImportFile: status.HTTP_400_BAD_REQUEST,
    services.DeviceError: status.HTTP_400_BAD_REQUEST,
}
# Multipart framing around the file: boundaries, part headers, the other fields.
_MULTIPART_SLACK = 64 * 1024
IMPORT_ID = OpenApiParameter("import_id", OpenApiTypes.INT, OpenApiParameter.PATH)
CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="text/csv")


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True)
    identity = serializers.CharField()
    message = serializers.CharField()


class WhitelistImportSerializer(serializers.ModelSerializer):
    errors = ImportErrorSerializer(
        many=True, read_only=True, help_text="The first errors, in line order."
    )
    file_name = serializers.CharField(
        source="original_name", read_only=True, help_text="The uploaded file's own name."
    )

    class Meta:
        model = WhitelistImport
        fields = [
            "id",
            "status",
            "dry_run",
            "on_error",
            "file_name",
            "phase",
            "phase_started_at",
            "phase_done",
            "total",
            "processed",
            "created",
            "error_count",
            "errors",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV with the header ID,TLS Client Certificate,Tags.")
    dry_run = StrictBooleanField(default=False, help_text="Validate and report only.")
    on_error = serializers.ChoiceField(
        choices=WhitelistImport.ON_ERROR,
        default=WhitelistImport.ABORT,
        help_text="abort: write nothing unless every row is good; skip: write the good rows.",
    )


class JsonForErrorsNegotiation(BaseContentNegotiation):
    """JSON for errors whatever the Accept header; the CSV bodies bypass renderers."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ImportCreateView(ConnectorScopedMixin, APIView):
    """Upload a CSV file of identities to whitelist."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Import a CSV whitelist",
        parameters=[CONNECTOR_ID],
        request={"multipart/form-data": ImportRequestSerializer},
        responses={202: WhitelistImportSerializer},
    )
    def post(self, request, connector_id):
        connector = self.get_connector()
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.IMPORT_MAX_BYTES + _MULTIPART_SLACK:
            # Refused before the body is read, so a huge upload costs nothing.
            too_large = f"the file is larger than {settings.IMPORT_MAX_BYTES} bytes"
            raise Refused(imports.ImportTooLarge(too_large), STATUS_BY_ERROR)
        form = ImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            record = imports.start_import(
                connector,
                form.validated_data["file"],
                dry_run=form.validated_data["dry_run"],
                on_error=form.validated_data["on_error"],
                **self.audit(),
                run_later=tasks.run_whitelist_import.delay,
            )
        except services.DeviceError as exc:
            raise Refused(exc, STATUS_BY_ERROR) from exc
        return Response(WhitelistImportSerializer(record).data, status=status.HTTP_202_ACCEPTED)


class ImportScopedMixin(ConnectorScopedMixin):
    def get_import(self) -> WhitelistImport:
        return get_object_or_404(
            WhitelistImport, pk=self.kwargs["import_id"], connector=self.get_connector()
        )


class ImportDetailView(ImportScopedMixin, APIView):
    """Progress and result of one import; poll it while `status` is pending or running.

    `phase` is its step (checking, writing, finishing) as last committed, with
    `phase_done` rows done since `phase_started_at`; while it writes, the
    console's page has the finer count.
    """

    @extend_schema(
        summary="Progress and result of an import",
        parameters=[CONNECTOR_ID, IMPORT_ID],
        responses=WhitelistImportSerializer,
    )
    def get(self, request, connector_id, import_id):
        return Response(WhitelistImportSerializer(self.get_import()).data)


class ImportErrorReportView(ImportScopedMixin, APIView):
    """Every error of a finished import as CSV: line, identity, message."""

    content_negotiation_class = JsonForErrorsNegotiation

    @extend_schema(
        summary="Full error report of an import",
        operation_id="api_v1_connectors_imports_errors_csv",
        parameters=[CONNECTOR_ID, IMPORT_ID],
        responses={(200, "text/csv"): CSV_RESPONSE},
    )
    def get(self, request, connector_id, import_id):
        record = self.get_import()
        if record.status in (WhitelistImport.PENDING, WhitelistImport.RUNNING):
            return Response(
                {"detail": "The import is still running; the report is ready when it ends."},
                status=status.HTTP_409_CONFLICT,
            )
        return _csv_response(imports.error_report_chunks(record), f"import-{record.pk}-errors.csv")


class DeviceExportView(ConnectorScopedMixin, APIView):
    """The connector's devices in the import format; re-imports into another connector."""

    content_negotiation_class = JsonForErrorsNegotiation

    @extend_schema(
        summary="Export devices as CSV",
        operation_id="api_v1_connectors_devices_csv",
        parameters=[CONNECTOR_ID],
        responses={(200, "text/csv"): CSV_RESPONSE},
    )
    def get(self, request, connector_id):
        connector = self.get_connector()
        chunks = (text.encode() for text in imports.export_devices_csv(connector))
        return _csv_response(chunks, f"{connector.pk}-devices.csv")


def _csv_response(chunks, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
