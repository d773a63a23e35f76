"""The ARTIK device API's paths, served under /v1.1/ (docs/artik.md)."""

from django.urls import path, re_path

from registrations.artik import views

urlpatterns = [
    path("cert/devices/registrations", views.RegistrationsView.as_view()),
    path(
        "cert/devices/registrations/<str:rid>/status",
        views.RegistrationStatusView.as_view(),
    ),
    path("cert/devices/registrations/<str:rid>", views.RegistrationView.as_view()),
    path("message", views.MessagesView.as_view()),
    path("messages", views.MessagesView.as_view()),
    path("messages/last", views.LastMessagesView.as_view()),
    path("devices", views.EndNodesView.as_view()),
    path("devices/<str:did>", views.DeviceDetailView.as_view()),
    path("devicetypes/<str:dtid>", views.DeviceTypeView.as_view()),
    # Last: every other path under /v1.1/ is ARTIK's JSON 404, never a page.
    re_path(r"", views.NotFoundView.as_view()),
]
