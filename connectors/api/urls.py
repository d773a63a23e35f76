"""Management API paths under /api/v1/ for connectors and everything inside one."""

from django.urls import include, path

from connectors.api import content, views

resource_list = views.ResourceViewSet.as_view({"get": "list", "post": "create"})
resource_detail = views.ResourceViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)

inside_connector = [
    path(
        "",
        views.ConnectorViewSet.as_view(
            {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
        ),
        name="api-connector-detail",
    ),
    path("resources/", resource_list, name="api-resource-list"),
    path("resources/<str:alias>/", resource_detail, name="api-resource-detail"),
    path("content/", content.ContentListView.as_view(), name="api-content-list"),
    path("content/<str:name>/", content.ContentDetailView.as_view(), name="api-content-detail"),
    path("", include("devices.api.urls")),
]

urlpatterns = [
    path(
        "connectors/",
        views.ConnectorViewSet.as_view({"get": "list", "post": "create"}),
        name="api-connector-list",
    ),
    path("connectors/<str:connector_id>/", include(inside_connector)),
]
