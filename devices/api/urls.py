"""Paths under /api/v1/connectors/<connector_id>/ for devices, events and data.

Identities use the `path` converter: an opaque identity may hold "/". The
action paths come first so that ".../reset" is never read as an identity.
"""

from django.urls import path

from devices.api import views

device_list = views.DeviceViewSet.as_view({"get": "list", "post": "create"})
device_detail = views.DeviceViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    path("devices/", device_list, name="api-device-list"),
    path(
        "devices/<path:identity>/reset",
        views.DeviceViewSet.as_view({"post": "reset"}),
        name="api-device-reset",
    ),
    path(
        "devices/<path:identity>/revoke",
        views.DeviceViewSet.as_view({"post": "revoke"}),
        name="api-device-revoke",
    ),
    path(
        "devices/<path:identity>/secret",
        views.DeviceViewSet.as_view({"post": "secret"}),
        name="api-device-secret",
    ),
    path("devices/<path:identity>/data/", views.DeviceDataView.as_view(), name="api-device-data"),
    path("devices/<path:identity>/", device_detail, name="api-device-detail"),
    path("events/", views.EventListView.as_view(), name="api-event-list"),
]
