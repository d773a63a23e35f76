"""Management API paths under /api/v1/connectors/<connector_id>/ for certificates."""

from django.urls import include, path

from certificates.api import views

urlpatterns = [
    path("ca/", views.AuthorityView.as_view(), name="api-ca"),
    path("ca/issue", views.IssueView.as_view(), name="api-ca-issue"),
    path("ca/certificates/", views.IssuedListView.as_view(), name="api-ca-certificates"),
    path("certificates/", include("certificates.foundry_urls")),
    path(
        "certificates/<str:fingerprint>/revoke",
        views.RevokeView.as_view(),
        name="api-certificate-revoke",
    ),
    path("trust-anchors/", views.TrustAnchorListView.as_view(), name="api-trust-anchors"),
    path(
        "trust-anchors/<int:anchor_id>/",
        views.TrustAnchorDetailView.as_view(),
        name="api-trust-anchor",
    ),
    path(
        "trust-anchors/<int:anchor_id>/verify",
        views.VerifyTrustAnchorView.as_view(),
        name="api-trust-anchor-verify",
    ),
]
