"""The portal's home page: the admin's connectors and what happened in them lately."""

from heapq import nlargest

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from connectors.permissions import connectors_for
from devices.models import Event
from devices.views import event_row

SHOWN_CONNECTORS = 12
RECENT_EVENTS = 10


@login_required
@require_GET
def home(request):
    connectors = list(connectors_for(request.user)[: SHOWN_CONNECTORS + 1])
    shown = connectors[:SHOWN_CONNECTORS]
    # One indexed (connector, -id) lookup per connector, merged here, stays fast
    # however many events other connectors hold.
    candidates = [
        event
        for connector in shown
        for event in Event.objects.filter(connector=connector).order_by("-id")[:RECENT_EVENTS]
    ]
    names = {connector.pk: connector for connector in shown}
    events = [
        {**event_row(event), "connector": names[event.connector_id]}
        for event in nlargest(RECENT_EVENTS, candidates, key=lambda event: event.pk)
    ]
    context = {
        "connectors": shown,
        "more_connectors": len(connectors) > SHOWN_CONNECTORS,
        "events": events,
    }
    return render(request, "portal/home.html", context)
