"""The ARTIK API's paths, served under /v1.1/ (docs/artik.md): the device side, and
the calls of companion apps with a user's OAuth 2.0 token (docs/apps-and-hubs.md).
A path both call goes to the device's view or the app's by the kind of token
(`api.by_token`)."""

from django.urls import path, re_path

from registrations.artik import user_views, views
from registrations.artik.api import by_token

urlpatterns = [
    path("cert/devices/registrations", views.RegistrationsView.as_view()),
    path(
        "cert/devices/registrations/<str:rid>/status",
        views.RegistrationStatusView.as_view(),
    ),
    path("cert/devices/registrations/<str:rid>", views.RegistrationView.as_view()),
    path("message", by_token(views.MessagesView, user_views.AppMessagesView)),
    path("messages", by_token(views.MessagesView, user_views.AppMessagesView)),
    path("messages/last", by_token(views.LastMessagesView, user_views.AppLastMessagesView)),
    path("devices", views.EndNodesView.as_view()),
    path("devices/registrations/pin", user_views.PinPairingView.as_view()),
    path("devices/<str:did>", by_token(views.DeviceDetailView, user_views.AppDeviceView)),
    path("devicetypes/<str:dtid>", by_token(views.DeviceTypeView, user_views.AppDeviceTypeView)),
    path("users/self", user_views.SelfView.as_view()),
    path("users/<str:uid>/devices", user_views.UserDevicesView.as_view()),
    # Last: every other path under /v1.1/ is ARTIK's JSON 404, never a page.
    re_path(r"", views.NotFoundView.as_view()),
]
