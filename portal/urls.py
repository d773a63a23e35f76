from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from devices import device_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("c/<str:connector_id>/", include(("devices.device_urls", "device"), namespace="c")),
    path("timestamp", device_views.timestamp),
    path("pki/<str:connector_id>/", include("certificates.pki_urls")),
    path("connectors/<str:connector_id>/certificates/", include("certificates.urls")),
    path("api/v1/connectors/<str:connector_id>/", include("certificates.api.urls")),
    path("api/v1/", include("connectors.api.urls")),
    path("api/v1/", include("accounts.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
