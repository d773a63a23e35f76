"""Secure device API paths, served under /v1.1/ (seed 000's secure endpoints)."""

from django.urls import path

from registrations import device_views

urlpatterns = [
    path(
        "cert/devices/registrations",
        device_views.registrations,
        name="secure-registrations",
    ),
    path(
        "cert/devices/registrations/<str:rid>/status",
        device_views.registration_status,
        name="secure-registration-status",
    ),
    path(
        "cert/devices/registrations/<str:rid>",
        device_views.complete_registration,
        name="secure-registration",
    ),
    path("message", device_views.message, name="secure-message"),
]
