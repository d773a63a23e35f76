"""Portal paths for companion apps: a maker's registered apps, a user's granted apps."""

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("apps/", views.apps, name="apps"),
    path("apps/new/", views.app_new, name="app-new"),
    path("apps/<int:app_id>/delete/", views.app_delete, name="app-delete"),
    path("my/apps/", views.granted, name="granted"),
    path("my/apps/<int:app_id>/revoke/", views.revoke, name="revoke"),
]
