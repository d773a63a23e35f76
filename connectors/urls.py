"""Portal paths under /connectors/."""

from django.urls import path

from connectors import content_views, views

app_name = "connectors"

urlpatterns = [
    path("", views.connector_list, name="list"),
    path("new/", views.connector_create, name="create"),
    path("identity-check", views.identity_check, name="identity-check-unsaved"),
    path("<str:connector_id>/", views.connector_detail, name="detail"),
    path("<str:connector_id>/settings/", views.connector_settings, name="settings"),
    path("<str:connector_id>/delete/", views.connector_delete, name="delete"),
    path("<str:connector_id>/identity-check", views.identity_check, name="identity-check"),
    path("<str:connector_id>/resources/", views.resource_list, name="resources"),
    path(
        "<str:connector_id>/resources/<int:resource_id>/delete",
        views.resource_delete,
        name="resource-delete",
    ),
    path("<str:connector_id>/content/", content_views.content_list, name="content"),
    path(
        "<str:connector_id>/content/<str:name>/delete",
        content_views.content_delete,
        name="content-delete",
    ),
]
