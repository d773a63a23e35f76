"""Who may manage which connector: device makers who own or manage it, and superusers."""

import re

from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.services import is_device_maker
from connectors.models import CONNECTOR_ID_PATTERN, Connector


def connectors_for(user) -> QuerySet[Connector]:
    """Connectors `user` may see and manage; everyone else's stay invisible (404)."""
    # Views refuse plain users before they get here; this keeps a forgotten check harmless.
    if not is_device_maker(user):
        return Connector.objects.none()
    if user.is_superuser:
        return Connector.objects.all()
    return Connector.objects.filter(Q(owner=user) | Q(managers=user)).distinct()


def visible_connector(user, connector_id: str) -> Connector:
    """The connector `user` may manage, or 404: someone else's looks like a missing one."""
    # A malformed id (say with a NUL byte, which PostgreSQL refuses) never reaches the query.
    if not re.fullmatch(CONNECTOR_ID_PATTERN, connector_id):
        raise Http404("No such connector.")
    return get_object_or_404(connectors_for(user), pk=connector_id)
