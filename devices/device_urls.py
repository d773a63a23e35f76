"""Device API paths, served on <connector-id>.<DEVICE_DOMAIN> and under /c/<connector-id>/."""

from django.urls import include, path

from devices import device_views

# Devices get a 503 text during an outage that a middleware met (portal.outage).
handler500 = "portal.outage.server_error"

urlpatterns = [
    path("provision/activate", device_views.activate, name="device-activate"),
    path("api:v1/stack/alias", device_views.alias, name="device-alias"),
    path("timestamp", device_views.timestamp, name="device-timestamp"),
    # Certificate self-provisioning for owner apps; API-token authenticated.
    path("foundry/certificates/", include("certificates.foundry_urls")),
    # Secure registration and messages answer on the device host too.
    path("v1.1/", include("registrations.device_urls")),
]
