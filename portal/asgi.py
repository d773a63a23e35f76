"""ASGI entry point: Django for HTTP, the secure device channel for WebSockets.

Serve it with `uvicorn portal.asgi:application --no-proxy-headers` behind nginx
(docs/secure-registration.md): Gatehouse judges proxy headers itself (core/net.py).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Set Django up before importing anything that touches models.
django_application = get_asgi_application()

from portal.checks import refuse_unsafe_proxy_settings  # noqa: E402

# A web process that would trust proxies it cannot recognise does not start.
refuse_unsafe_proxy_settings()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from registrations.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {"http": django_application, "websocket": URLRouter(websocket_urlpatterns)}
)
