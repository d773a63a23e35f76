"""The device API's OpenAPI document, for device makers writing firmware: served at
/api/device/schema/ (docs at /api/device/docs/), apart from the management API's.

Paths are shown under /c/{connector_id}/; the same paths answer on the
connector's device host, <connector-id>.<DEVICE_DOMAIN>, without the prefix.
"""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import csp
from device_api import content, views


def _device_patterns():
    return [
        path(
            "c/<str:connector_id>/",
            include(
                [
                    path("provision/activate", views.ActivateView.as_view()),
                    path("api:v1/stack/alias", views.AliasView.as_view()),
                    path("onep:v1/stack/alias", views.AliasView.as_view()),
                    path("api:v1/stack/record", views.RecordView.as_view()),
                    path("onep:v1/stack/record", views.RecordView.as_view()),
                    path("timestamp", views.TimestampView.as_view()),
                    path("provision/download", content.DownloadView.as_view()),
                ]
            ),
        )
    ]


urlpatterns = [
    path(
        "schema/",
        SpectacularAPIView.as_view(
            patterns=_device_patterns(),
            custom_settings={
                "TITLE": "Gatehouse device API",
                "DESCRIPTION": __doc__,
                "COMPONENT_SPLIT_REQUEST": False,
                "PREPROCESSING_HOOKS": [],
                "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums"],
            },
        ),
        name="device-schema",
    ),
    path(
        "docs/",
        csp.allow(img_src=["data:"])(SpectacularSwaggerSplitView.as_view(url_name="device-schema")),
        name="device-api-docs",
    ),
]
