"""The OAuth 2.0 endpoints, served under /oauth/ (docs/apps-and-hubs.md)."""

from django.urls import path

from accounts import oauth_views

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", oauth_views.authorize, name="authorize"),
    path("token/", oauth_views.token, name="token"),
    path("revoke_token/", oauth_views.revoke_token, name="revoke-token"),
]
