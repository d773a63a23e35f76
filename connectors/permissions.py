"""Who may manage which connector: its owner, its managers and superusers."""

from django.db.models import Q, QuerySet

from connectors.models import Connector


def connectors_for(user) -> QuerySet[Connector]:
    """Connectors `user` may see and manage; everyone else's stay invisible (404)."""
    if not user.is_authenticated:
        return Connector.objects.none()
    if user.is_superuser:
        return Connector.objects.all()
    return Connector.objects.filter(Q(owner=user) | Q(managers=user)).distinct()
