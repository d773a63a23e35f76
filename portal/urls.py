from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import csp, health
from device_api import views as device_views
from portal import views as portal_views

# Companion apps are registered and revoked in the portal (accounts/views.py), each
# change logged with its actor; the toolkit's own admin pages would bypass both.
for model in [m for m in admin.site._registry if m._meta.app_label == "oauth2_provider"]:
    admin.site.unregister(model)

# An outage met outside a view is a 503 too (core.outage); other errors Django's 500.
handler500 = "core.outage.server_error"

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("connectors/", include("connectors.urls")),
    path("connectors/<str:connector_id>/", include("devices.urls")),
    path("connectors/<str:connector_id>/certificates/", include("certificates.urls")),
    path("admin/", admin.site.urls),
    path("c/<str:connector_id>/", include(("device_api.urls", "device"), namespace="c")),
    path("timestamp", device_views.TimestampView.as_view()),
    path("pki/<str:connector_id>/", include("certificates.pki_urls")),
    path("v1.1/", include("registrations.device_urls")),
    path("", include("registrations.urls")),
    path("", include("accounts.urls")),
    path("oauth/", include("accounts.oauth_urls")),
    # Before the device paths, whose <path:identity> would swallow ".../messages/".
    path("api/v1/", include("registrations.api.urls")),
    path("api/v1/connectors/<str:connector_id>/", include("certificates.api.urls")),
    # Only literal paths (imports/…, devices.csv), so listing them first shadows nothing.
    path("api/v1/connectors/<str:connector_id>/", include("devices.api.import_urls")),
    path("api/v1/", include("connectors.api.urls")),
    path("api/v1/", include("accounts.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The device API's own document, for firmware writers.
    path("api/device/", include("device_api.docs_urls")),
    # Swagger UI's start-up script comes from the same URL (?script), not inline, so
    # the page keeps the Content-Security-Policy of every other page, plus the data:
    # images (icons) Swagger UI draws with.
    path(
        "api/docs/",
        csp.allow(img_src=["data:"])(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="api-docs",
    ),
]

# The management API answers an unknown path or a request Django refuses before any
# view (too many form fields) with JSON, like every other refusal it gives.
handler400 = "core.handlers.bad_request"
handler404 = "core.handlers.not_found"
