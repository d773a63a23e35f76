"""Public PKI files of a connector's CA: its certificate and its CRL, at stable URLs."""

from django.urls import path

from certificates import views

urlpatterns = [
    path("ca.pem", views.ca_certificate, name="pki-ca"),
    path("crl", views.crl, name="pki-crl"),
    path("crl.pem", views.crl, {"as_pem": True}, name="pki-crl-pem"),
]
