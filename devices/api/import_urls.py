"""Paths under /api/v1/connectors/<connector_id>/ for CSV imports and the CSV export."""

from django.urls import path

from devices.api import imports

urlpatterns = [
    path("imports/", imports.ImportCreateView.as_view(), name="api-import-create"),
    path("imports/<int:import_id>/", imports.ImportDetailView.as_view(), name="api-import-detail"),
    path(
        "imports/<int:import_id>/errors.csv",
        imports.ImportErrorReportView.as_view(),
        name="api-import-errors",
    ),
    path("devices.csv", imports.DeviceExportView.as_view(), name="api-device-export"),
]
