"""Portal paths under /connectors/<connector_id>/certificates/."""

from django.urls import path

from certificates import files, views

app_name = "certificates"

urlpatterns = [
    path("", views.connector_certificates, name="connector"),
    path("ca/create", views.authority_create, name="ca-create"),
    path("issue", views.issue, name="issue"),
    path("ca.pem", files.authority_file, name="ca-file"),
    path("issued/<int:certificate_id>/", files.issued_page, name="issued"),
    path("issued/<int:certificate_id>/cert.pem", files.certificate_file, name="issued-file"),
    path("issued/<int:certificate_id>/bundle.zip", files.bundle_file, name="issued-bundle"),
    path("<str:fingerprint>/revoke", views.revoke, name="revoke"),
    path("devices/<int:device_id>/", views.device_certificates, name="device"),
    path("trust-anchors/add", views.anchor_add, name="anchor-add"),
    path("trust-anchors/<int:anchor_id>/verify", views.anchor_verify, name="anchor-verify"),
    path("trust-anchors/<int:anchor_id>/<str:action>", views.anchor_action, name="anchor-action"),
]
