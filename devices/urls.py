"""Portal paths inside one connector: overview/, devices/, imports/, logs/."""

from django.urls import path

from devices import edit_views, import_views, list_views, overview_views, views

app_name = "devices"

urlpatterns = [
    path("overview/", overview_views.overview_page, name="overview"),
    path("overview/live", overview_views.overview_live, name="overview-live"),
    path("devices/", list_views.device_list, name="list"),
    path("devices/bulk/", list_views.bulk_action, name="bulk-action"),
    path("devices/bulk/<int:job_id>/", list_views.bulk_detail, name="bulk"),
    path("devices/bulk/<int:job_id>/progress", list_views.bulk_progress, name="bulk-progress"),
    path("devices/new/", views.device_add, name="add"),
    path("devices/<int:device_id>/", views.device_detail, name="detail"),
    path("devices/<int:device_id>/edit/", edit_views.device_edit, name="edit"),
    path(
        "devices/<int:device_id>/<str:action>/",
        views.device_action,
        name="action",
    ),
    path("imports/new/", import_views.import_new, name="import-new"),
    path("imports/<int:import_id>/", import_views.import_detail, name="import"),
    path("imports/<int:import_id>/cancel/", import_views.import_cancel, name="import-cancel"),
    path(
        "imports/<int:import_id>/good-rows/",
        import_views.import_good_rows,
        name="import-good-rows",
    ),
    path("imports/<int:import_id>/progress", import_views.import_progress, name="import-progress"),
    path("logs/", views.logs, name="logs"),
    path("logs/feed", views.log_feed, name="log-feed"),
]
