"""Self-provisioning paths, included under each prefix that serves them."""

from django.urls import path

from certificates import foundry

urlpatterns = [
    path("generate", foundry.GenerateView.as_view(), name="foundry-generate"),
    path("provision", foundry.ProvisionView.as_view(), name="foundry-provision"),
    path("revoke", foundry.RevokeView.as_view(), name="foundry-revoke"),
]
