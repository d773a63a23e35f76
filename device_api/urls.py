"""Device API paths, served on <connector-id>.<DEVICE_DOMAIN> and under /c/<connector-id>/."""

from django.urls import include, path

from device_api import content, views

# Devices get a 503 text during an outage that a middleware met (core.outage).
handler500 = "core.outage.server_error"

urlpatterns = [
    path("provision/activate", views.ActivateView.as_view(), name="device-activate"),
    path("api:v1/stack/alias", views.AliasView.as_view(), name="device-alias"),
    # The One Platform name of the same calls, which Murano's device libraries use.
    path("onep:v1/stack/alias", views.AliasView.as_view(), name="device-onep-alias"),
    path("api:v1/stack/record", views.RecordView.as_view(), name="device-record"),
    path("onep:v1/stack/record", views.RecordView.as_view(), name="device-onep-record"),
    path("timestamp", views.TimestampView.as_view(), name="device-timestamp"),
    # The content area (connectors.content): list, download and describe files.
    path("provision/download", content.DownloadView.as_view(), name="device-download"),
    # Certificate self-provisioning for owner apps; API-token authenticated.
    path("foundry/certificates/", include("certificates.foundry_urls")),
    # Secure registration and messages answer on the device host too.
    path("v1.1/", include("registrations.device_urls")),
]
