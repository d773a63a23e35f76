"""The portal's home page: a device maker's connectors and what happened in them lately.

Everyone else lands on their own devices, the only part of the portal that is theirs.
"""

from heapq import nlargest

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from accounts.services import is_device_maker
from audit.models import Event
from connectors.permissions import connectors_for
from devices.views import event_row

SHOWN_CONNECTORS = 12
RECENT_EVENTS = 10


@login_required
@require_GET
def home(request):
    if not is_device_maker(request.user):
        return redirect("registrations:my-devices")
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
