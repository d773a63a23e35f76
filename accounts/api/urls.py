from django.urls import path

# Imported for its side effect: registers the bearer-token scheme with the
# OpenAPI generator, which always loads the URL configuration first.
from accounts.api import schema, views  # noqa: F401

urlpatterns = [
    path(
        "tokens/",
        views.ApiTokenViewSet.as_view({"get": "list", "post": "create"}),
        name="api-token-list",
    ),
    path(
        "tokens/<int:pk>/",
        views.ApiTokenViewSet.as_view({"delete": "destroy"}),
        name="api-token-detail",
    ),
]
