"""Management API paths of secure devices, mounted by portal/urls.py before the
device paths (whose `<path:identity>` would otherwise swallow ".../messages/")."""

from django.urls import path

from registrations.api import views

urlpatterns = [
    path(
        "connectors/<str:connector_id>/devices/<path:identity>/messages/",
        views.DeviceMessageListView.as_view(),
        name="api-device-messages",
    ),
]
