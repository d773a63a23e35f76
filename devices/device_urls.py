"""Device API paths, served on <connector-id>.<DEVICE_DOMAIN> and under /c/<connector-id>/."""

from django.urls import path

from devices import device_views

urlpatterns = [
    path("provision/activate", device_views.activate, name="device-activate"),
    path("api:v1/stack/alias", device_views.alias, name="device-alias"),
    path("timestamp", device_views.timestamp, name="device-timestamp"),
]
