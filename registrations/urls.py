"""Portal paths for users: pairing and "My devices"."""

from django.urls import path

from registrations import views

app_name = "registrations"

urlpatterns = [
    path("pair/", views.pair, name="pair"),
    path("pair/confirm/", views.pair_confirm, name="pair-confirm"),
    path("pair/confirm/status/", views.pair_status, name="pair-status"),
    path("my/devices/", views.my_devices, name="my-devices"),
    path("my/devices/feed/", views.my_devices_feed, name="my-devices-feed"),
    path("my/devices/<int:device_id>/", views.my_device, name="my-device"),
    path("my/devices/<int:device_id>/release/", views.release, name="my-device-release"),
    path("my/devices/<int:device_id>/sharing/", views.sharing, name="my-device-sharing"),
]
