"""WebSocket paths, mounted by portal/asgi.py."""

from django.urls import path, re_path

from registrations.consumers import NoSuchSocket, SecureDeviceConsumer

websocket_urlpatterns = [
    path("v1.1/websocket", SecureDeviceConsumer.as_asgi()),
    re_path(r"", NoSuchSocket.as_asgi()),
]
